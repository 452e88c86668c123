"""A strength that does not exist for the product is snapped to one that does, and always flagged."""

from __future__ import annotations

from iatro.kb.strength import Strength
from ocr import strength
from ocr.generator import png, simple_page, text_pdf
from ocr.pipeline import OcrPipeline


def _mg(*values: float) -> tuple[Strength, ...]:
    return tuple(Strength(v, "mg") for v in values)


def test_nearest_is_the_nearest_misreading():
    options = [_mg(2.5), _mg(5), _mg(10)]
    assert strength.nearest(_mg(25), options) == _mg(2.5)  # a lost decimal comma
    assert strength.nearest(_mg(6), options) == _mg(5)  # one look-alike digit
    assert strength.nearest(_mg(16), options) == _mg(10)
    assert strength.nearest(_mg(740), options) is None  # nothing close: not snapped at all
    micro = [(Strength(75, "µg"),), (Strength(100, "µg"),)]
    assert strength.nearest(_mg(75), micro) == (Strength(75, "µg"),)  # µg misread as mg


def test_confusable_strengths():
    options = [_mg(5), _mg(10), _mg(40)]
    assert strength.confusable(_mg(10), options) == [_mg(40)]  # 1 and 4 look alike
    assert strength.confusable(_mg(5), options) == []


def test_wrong_strength_in_an_image_is_snapped_and_flagged(pipeline: OcrPipeline):
    page = simple_page(["Docteur Jean MARTIN", "ELIQUIS 6 mg, comprimé pelliculé", "1 cp matin et soir"])
    result = pipeline.read_bytes(png(page))
    [line] = result.lines
    assert line.status == "resolved"
    assert line.product is not None and line.product.name.startswith("ELIQUIS 5 mg")
    assert line.strength == "5 mg" and line.strength_read == "6 mg"
    assert line.needs_review
    assert any("snapped to 5 mg" in reason for reason in line.reasons)
    assert line.posology is not None and line.posology.intakes_per_day == 2


def test_wrong_strength_in_a_text_layer_is_flagged_too(pipeline: OcrPipeline):
    from ocr.generator import TextRun

    runs = [
        TextRun(160, 160, "AMLODIPINE 7 mg gélule", 32, False),
        TextRun(220, 215, "1 gél le matin", 32, False),
    ]
    result = pipeline.read_bytes(text_pdf([runs]))
    [line] = result.lines
    assert result.pages[0].source == "text-layer"
    assert line.confidence == 1.0
    assert line.needs_review and line.strength_read == "7 mg"
    assert line.strength in ("5 mg", "10 mg")


def test_far_strength_is_not_snapped_but_flagged(pipeline: OcrPipeline):
    from ocr.generator import TextRun

    runs = [TextRun(160, 160, "ELIQUIS 730 mg cp", 32, False), TextRun(220, 215, "1 cp le soir", 32, False)]
    [line] = pipeline.read_bytes(text_pdf([runs])).lines
    assert line.needs_review
    assert line.product is None and line.strength is None
    assert any("not a likely misreading" in reason for reason in line.reasons)
