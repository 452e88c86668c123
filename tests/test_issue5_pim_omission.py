"""Issue 5: STOPP/START v2 findings in the report, with real BDPM lines."""

from __future__ import annotations

import json

from iatro.analysis import parse_prescription


def _run(engine, lines, **patient):
    document = {"date": "2026-11-24", "patient": patient, "lines": lines}
    report = engine.analyze(parse_prescription(json.dumps(document)), checks=frozenset({"pim", "omission"}))
    return report, {(a.type, a.rule_id) for a in report.alerts}


def test_benzodiazepine_over_four_weeks_is_a_pim(engine):
    _, found = _run(engine, [{"text": "SERESTA 10 mg 1 cp au coucher", "duration_days": 90}], age=82)
    assert ("pim", "STOPP D5") in found


def test_short_benzodiazepine_course_is_not(engine):
    _, found = _run(engine, [{"text": "SERESTA 10 mg 1 cp au coucher", "duration_days": 10}], age=82)
    assert ("pim", "STOPP D5") not in found


def test_atrial_fibrillation_without_anticoagulant_is_an_omission(engine):
    _, found = _run(engine, [{"text": "AMLODIPINE 5 mg 1 cp/j"}], age=82, conditions=["I48"])
    assert ("omission", "START A1") in found
    # START A2 (aspirin where anticoagulants are contraindicated) is not computable: never proposed.
    assert ("omission", "START A2") not in found


def test_anticoagulated_atrial_fibrillation_is_not(engine):
    _, found = _run(engine, [{"text": "ELIQUIS 5 mg 1 cp matin et soir"}], age=82, conditions=["I48"])
    assert ("omission", "START A1") not in found


def test_alert_cites_list_and_edition(engine):
    report, _ = _run(engine, [{"text": "SERESTA 10 mg 1 cp au coucher", "duration_days": 90}], age=82)
    [alert] = [a for a in report.alerts if a.rule_id == "STOPP D5"]
    assert "STOPP" in alert.source and alert.edition
    assert alert.substances[0].name == "oxazepam" and alert.lines == (0,)
