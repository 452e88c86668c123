"""Issue 3: `iatro analyze` keeps the contract: exit codes, field-naming errors, empty prescriptions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, cwd=ROOT)


def test_example_report_json(kb, tmp_path):
    result = _run("analyze", "examples/prescription.json", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["kb_version"] == kb.version
    assert report["complete"] is False  # MIRACLOR is not a product
    assert [line["index"] for line in report["lines"]] == list(range(7))
    statuses = {line["input"]: line["status"] for line in report["lines"]}
    assert statuses["MIRACLOR 5 mg"] == "unresolved"
    assert statuses["PREVISCAN 20 mg, 3/4 cp le soir"] == "resolved"
    for key in ("alerts", "scores", "eligibility"):
        assert key in report


def test_text_format(kb):
    result = _run("analyze", "examples/prescription.json")
    assert result.returncode == 0, result.stderr
    assert "INCOMPLETE" in result.stdout and "fluindione" in result.stdout


def test_malformed_json_exits_2(kb, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"lines": [', encoding="utf-8")
    result = _run("analyze", str(bad))
    assert result.returncode == 2
    assert "not valid JSON" in result.stderr


def test_wrong_field_type_names_the_field(kb, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"patient": {"age": "old"}, "lines": []}), encoding="utf-8")
    result = _run("analyze", str(bad))
    assert result.returncode == 2
    assert "patient.age" in result.stderr


def test_unknown_field_names_the_field(kb, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"lines": [{"text": "DOLIPRANE 1000", "cip_13": "1"}]}), encoding="utf-8")
    result = _run("analyze", str(bad))
    assert result.returncode == 2
    assert "lines.0.cip_13" in result.stderr


def test_empty_line_object_is_refused(kb, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"lines": [{"posology": "1 cp"}]}), encoding="utf-8")
    result = _run("analyze", str(bad))
    assert result.returncode == 2
    assert "lines.0" in result.stderr


def test_empty_prescription_is_an_empty_report(kb, tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("{}", encoding="utf-8")
    result = _run("analyze", str(empty), "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["lines"] == [] and report["alerts"] == [] and report["complete"] is True


def test_missing_file_exits_2(kb):
    result = _run("analyze", "does-not-exist.json")
    assert result.returncode == 2
    assert "FILE" in result.stderr


def test_batch_streams_reports_and_error_records(kb, tmp_path):
    batch = tmp_path / "batch.jsonl"
    batch.write_text(
        "\n".join(
            [
                json.dumps({"lines": [{"text": "SIMVASTATINE 20 mg"}, {"text": "clarithromycine 500 mg"}]}),
                json.dumps({"lines": [{"cip_13": "1"}]}),
                "{}",
            ]
        ),
        encoding="utf-8",
    )
    result = _run("analyze", "--batch", str(batch), "--checks", "interactions")
    assert result.returncode == 2  # one line was invalid; the others were still analysed
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 3
    assert records[0]["alerts"][0]["severity"] == "contre-indication"
    assert records[1] == {
        "error": {"line": 2, "field": "lines.0.cip_13", "reason": "Extra inputs are not permitted"}
    }
    assert records[2]["lines"] == []


def test_unknown_check_is_refused(kb):
    result = _run("analyze", "examples/prescription.json", "--checks", "astrology")
    assert result.returncode == 2 and "--checks" in result.stderr


def test_example_report_carries_every_check(kb):
    result = _run("analyze", "examples/prescription.json", "--format", "json")
    report = json.loads(result.stdout)
    types = {alert["type"] for alert in report["alerts"]}
    assert {"interaction", "anticholinergic", "qt", "vaccine"} <= types
    assert report["scores"]["anticholinergic"]["scale"] == "ACB"
    assert report["scores"]["qt"]["level"] in ("low", "moderate", "high")
    assert set(report["eligibility"]) >= {"iatroprev", "optimedoc", "bilan_partage_medication"}
    # The unresolved line is named wherever it could change a result.
    assert any("unresolved line(s) 6" in item for item in report["missing_inputs"])
