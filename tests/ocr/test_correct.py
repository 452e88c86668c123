"""OCR confusions undone on drug lines and posologies."""

from __future__ import annotations

from ocr.correct import Fix, NameFixer, fix_posology, fix_strengths, strip_bullet
from ocr.layout import zone_heading
from ocr.pipeline import OcrPipeline, _rpps_of, header_hints


def test_strength_confusions():
    fixes: list[Fix] = []
    assert fix_strengths(["S", "mg"], fixes) == ["5", "mg"]
    assert fix_strengths(["l0", "m9"], fixes) == ["10", "mg"]
    assert fix_strengths(["2,", "5", "mg"], fixes) == ["2,5", "mg"]
    assert fix_strengths(["75", "pg"], fixes) == ["75", "µg"]
    assert fix_strengths(["10mgcp"], fixes) == ["10", "mg", "cp"]
    assert fix_strengths(["KRKA5", "mg"], fixes) == ["KRKA", "5", "mg"]
    assert fixes


def test_name_and_posology_words(pipeline: OcrPipeline):
    fixer: NameFixer = pipeline.fixer
    assert fixer.fix_words(["AMLODlPlNE", "BIOGARAN"], []) == ["AMLODIPINE", "BIOGARAN"]
    assert fixer.fix_words(["0MEPRAZOLE"], []) == ["OMEPRAZOLE"]
    assert fixer.fix_words(["comprimé"], []) == ["comprimé"]  # a form word is left alone
    assert fix_posology([".2cplesoir"], []) == ["2 cp le soir"]
    assert fix_posology(["l", "cp", "le", "rnatin"], []) == ["1", "cp", "le", "matin"]
    assert fix_posology(["1-O-l"], []) == ["1-0-1"]
    assert strip_bullet("1) AMLODIPINE") == "AMLODIPINE"


def test_zone_headings():
    assert zone_heading("Prescriptions relatives au traitement de l'affection de longue durée") == "ald"
    assert zone_heading("Prescriptions SANS RAPPORT avec l'affection de Longue durée") == "hors_ald"
    assert zone_heading("(MALADIES INTERCURRENTES)") == "hors_ald"
    assert zone_heading("1 cp le matin") is None


def test_rpps_with_a_glyph_too_many():
    assert _rpps_of("100977276939") == "10977276939"
    assert _rpps_of("10977276939") == "10977276939"


def test_header_hints_from_rows():
    from ocr.layout import Row
    from ocr.tesseract import Word

    def row(text: str) -> Row:
        return Row([Word(t, 95, i * 10, 0, i * 10 + 8, 10, 1) for i, t in enumerate(text.split())])

    rows = [row("RPPS : 10977276939"), row("Mme DURAND Jeanne, 84 ans"), row("Poids : 52,5 kg"),
            row("Née le 03/04/1941"), row("Lyon, le 25 juillet 2026")]  # fmt: skip
    hints = header_hints(rows, rows)
    assert hints.prescriber_rpps == "10977276939" and hints.rpps_checksum_ok
    assert hints.patient_age == 84 and hints.patient_weight_kg == 52.5
    assert hints.date is not None and hints.date.isoformat() == "2026-07-25"
