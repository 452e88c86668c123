"""Files as they come: PDF with or without text, TIFF with several pages, and bad input."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from iatro.analysis import Engine
from iatro.errors import FieldError
from ocr.generator import DrugPool, decode, generate_page, image_pdf, png, simple_page, text_pdf
from ocr.model import OcrLine, OcrResult
from ocr.pipeline import OcrPipeline

ROOT = Path(__file__).resolve().parents[2]


def test_text_layer_pdf_is_read_without_ocr(pipeline: OcrPipeline, pool: DrugPool):
    page = generate_page(pool, 7100, "bizone", "clean")
    result = pipeline.read_bytes(text_pdf([page.runs]))
    assert [p.source for p in result.pages] == ["text-layer"]
    got = [(line.product.cis if line.product else None, line.zone) for line in result.lines]
    want = [(item.expected.product.cis if item.expected.product else None, item.zone) for item in page.items]
    assert got == want
    assert result.header_hints.prescriber_rpps == page.header.rpps
    assert result.header_hints.rpps_checksum_ok


def test_scanned_pdf_and_multipage_tiff(pipeline: OcrPipeline, pool: DrugPool):
    first = generate_page(pool, 7101, "gp", "clean")
    second = generate_page(pool, 7102, "hospital", "clean")
    # Fresh images: the PNG's own metadata is not for a TIFF.
    images = [Image.fromarray(np.asarray(decode(page.data).convert("L"))) for page in (first, second)]
    pdf = pipeline.read_bytes(image_pdf(images))
    assert [p.source for p in pdf.pages] == ["ocr", "ocr"]
    assert {line.page for line in pdf.lines} == {1, 2}
    assert pdf.pages[1].layout == "table"
    tiff = io.BytesIO()
    frames = [Image.fromarray(np.asarray(image)) for image in images]  # saving as PDF marked the others
    frames[0].save(tiff, format="TIFF", save_all=True, append_images=[frames[1]])
    result = pipeline.read_bytes(tiff.getvalue())
    assert len(result.pages) == 2

    def summary(lines: tuple[OcrLine, ...]) -> list[tuple[object, ...]]:
        return [(x.product.cis if x.product else None, x.strength, x.posology) for x in lines]

    assert summary(result.lines) == summary(pdf.lines)


def test_result_feeds_the_analysis(pipeline: OcrPipeline, pool: DrugPool, engine: Engine):
    page = generate_page(pool, 7103, "gp", "clean")
    result = pipeline.read_bytes(page.data)
    prescription = result.to_prescription()
    assert prescription.patient.age == page.header.patient_age
    report = engine.analyze(prescription)
    assert len(report.lines) == len(result.lines)
    for line in result.lines:
        assert 0 <= line.bbox.x0 < line.bbox.x1 <= 1 and 0 <= line.bbox.y0 < line.bbox.y1 <= 1


def test_page_without_a_drug_line_says_so(pipeline: OcrPipeline):
    page = simple_page(["Docteur Jean MARTIN", "Médecin généraliste", "Le 12/03/2026"])
    result = pipeline.read_bytes(png(page))
    assert result.lines == ()
    assert "page 1: no drug line found" in result.warnings
    assert result.header_hints.date is not None and result.header_hints.date.isoformat() == "2026-03-12"
    blank = pipeline.read_bytes(png(Image.new("L", (800, 1100), 255)))
    assert "page 1: no drug line found" in blank.warnings


def _png_header_only() -> bytes:
    data = io.BytesIO()
    Image.new("L", (50, 50), 255).save(data, format="PNG")
    return data.getvalue()[:60]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"AMLODIPINE 5 mg 1 cp le matin\n", "not an image"),
        (_png_header_only(), "cannot be decoded"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "cannot be decoded"),
        (b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n", "PDF"),
    ],
)
def test_bad_input_is_a_field_error(pipeline: OcrPipeline, data: bytes, message: str):
    with pytest.raises(FieldError) as caught:
        pipeline.read_bytes(data)
    assert caught.value.field == "FILE"
    assert message in caught.value.reason


def test_unreadable_path(pipeline: OcrPipeline, tmp_path: Path):
    with pytest.raises(FieldError, match="cannot read"):
        pipeline.read_file(tmp_path / "missing.jpg")
    with pytest.raises(FieldError, match="directory"):
        pipeline.read_file(tmp_path)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "ocr", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def test_cli(tmp_path: Path, pool: DrugPool):
    import json

    page = generate_page(pool, 7104, "gp", "scan")
    path = tmp_path / f"ordonnance{page.suffix}"
    path.write_bytes(page.data)
    done = _cli(str(path), "--format", "json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert len(body["lines"]) == len(page.items)
    assert {"confidence", "needs_review", "reasons", "page", "bbox", "status", "input"} <= set(
        body["lines"][0]
    )
    text = tmp_path / "note.txt"
    text.write_text("pas une image")
    bad = _cli(str(text), "--format", "json")
    assert bad.returncode == 2
    assert "not an image" in bad.stderr
    assert _cli(str(tmp_path / "absent.png")).returncode == 2


def test_heic_photograph_is_read(pipeline: OcrPipeline):
    import pillow_heif

    page = simple_page(["Docteur Jean MARTIN", "AMLODIPINE 5 mg gélule", "1 gél le matin"])
    heif = pillow_heif.from_pillow(page.convert("RGB"))
    out = io.BytesIO()
    heif.save(out, quality=90)
    result = pipeline.read_bytes(out.getvalue())
    [line] = result.lines
    assert [s.name for s in line.substances] == ["amlodipine"]
    assert line.posology is not None and line.posology.intakes_per_day == 1


def test_page_timeout_stops_the_page_and_says_so(engine: Engine, pool: DrugPool):
    page = generate_page(pool, 7105, "hospital", "photo")
    hasty = OcrPipeline(engine, workers=1, page_timeout=0.05)
    result = hasty.read_bytes(page.data)
    assert result.lines == ()
    assert any("took more than 0.05 s" in w and "not read" in w for w in result.warnings)
    assert result.pages[0].seconds < 5


def test_pages_in_processes_and_in_threads_read_the_same(engine: Engine, pool: DrugPool):
    pages = [generate_page(pool, 7106 + i, "gp", "clean") for i in range(2)]
    pdf = image_pdf([decode(p.data).convert("L") for p in pages])
    by_process = OcrPipeline(engine, workers=2, pool="process").read_bytes(pdf)
    by_thread = OcrPipeline(engine, workers=2, pool="thread").read_bytes(pdf)

    def lines(result: OcrResult) -> list[dict[str, object]]:
        return [line.model_dump(exclude={"confidence"}) for line in result.lines]

    assert lines(by_process) == lines(by_thread)
    assert [p.number for p in by_process.pages] == [1, 2]
    assert {line.page for line in by_process.lines} == {1, 2}
