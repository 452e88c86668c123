"""`iatro analyze FILE.jpg|.png|.pdf|.tif`: OCR, then the analysis; the report says which lines to check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ocr.generator import png, simple_page

ROOT = Path(__file__).resolve().parents[2]


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "analyze", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def test_analyze_an_image(tmp_path: Path):
    path = tmp_path / "ordonnance.png"
    path.write_bytes(png(simple_page(["Docteur Jean MARTIN", "Mme DURAND Jeanne, 84 ans",
                                      "ELIQUIS 6 mg, comprimé pelliculé", "1 cp matin et soir",
                                      "AMIODARONE 200 mg cp", "1 cp le matin"])))  # fmt: skip
    done = _analyze(str(path), "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [line["status"] for line in report["lines"]] == ["resolved", "resolved"]
    assert report["lines"][0]["product"]["name"].startswith("ELIQUIS 5 mg")
    ocr = report["ocr"]
    assert ocr["source"] == "ocr" and ocr["pages"] == 1
    assert ocr["lines_to_review"] == [0]  # the strength read (6 mg) does not exist: snapped, flagged
    assert ocr["lines"][0]["strength_read"] == "6 mg" and ocr["lines"][0]["strength"] == "5 mg"
    assert all(0 < note["confidence"] <= 1 for note in ocr["lines"])
    assert ocr["header_hints"]["patient_age"] == 84
    text = _analyze(str(path))
    assert text.returncode == 0, text.stderr
    assert "Lu par OCR : 2 ligne(s) sur 1 page(s), 1 à vérifier" in text.stdout
    assert "[À VÉRIFIER]" in text.stdout and "snapped to 5 mg" in text.stdout


def test_analyze_a_bad_file_exits_2(tmp_path: Path):
    fake = tmp_path / "ordonnance.jpg"
    fake.write_text("pas une image")
    done = _analyze(str(fake))
    assert done.returncode == 2
    assert "FILE" in done.stderr and "not an image" in done.stderr
    empty = tmp_path / "vide.png"
    empty.write_bytes(png(simple_page(["Docteur Jean MARTIN", "Médecin généraliste"])))
    done = _analyze(str(empty))
    assert done.returncode == 2
    assert "no drug line" in done.stderr
