"""Issue 4: substitutes proposed for serious alerts, each proven by re-running the analysis."""

from __future__ import annotations

import json

from iatro.analysis import parse_prescription

LINES = ["SIMVASTATINE 20 mg 1 cp le soir", "clarithromycine 500 mg 1 cp matin et soir"]


def _analyze(engine, lines, checks=None):
    document = {"patient": {"age": 80}, "lines": [{"text": t} if isinstance(t, str) else t for t in lines]}
    return engine.analyze(parse_prescription(json.dumps(document)), checks=checks)


def test_statin_alternatives_for_a_cyp3a4_contre_indication(engine):
    report = _analyze(engine, LINES)
    [alert] = [a for a in report.alerts if a.type == "interaction"]
    names = [alt.name for alt in alert.alternatives]
    assert names, "a contre-indication gets substitutes"
    assert "simvastatine" not in names and "clarithromycine" not in names
    assert "rosuvastatine" in names  # same ATC level 4 (C10AA), no interaction with clarithromycine
    assert all(alt.reason and "remplace" in alt.reason for alt in alert.alternatives)


def test_every_alternative_removes_the_alert_without_a_worse_one(engine):
    report = _analyze(engine, LINES)
    [alert] = [a for a in report.alerts if a.type == "interaction"]
    for alt in alert.alternatives:
        replaced = "simvastatine" if "simvastatine" in (alt.reason or "") else "clarithromycine"
        lines = [{"substance": alt.name} if replaced in line.lower() else line for line in LINES]
        again = _analyze(engine, lines, checks=frozenset({"interactions", "cyp"}))
        assert all(a.rule_id != alert.rule_id for a in again.alerts), alt.name
        assert all(a.severity != "contre-indication" for a in again.alerts), alt.name


def test_no_alternatives_when_not_asked(engine):
    report = _analyze(engine, LINES, checks=frozenset({"interactions"}))
    assert all(a.alternatives == () for a in report.alerts)


def test_minor_alerts_get_no_alternatives(engine):
    report = _analyze(engine, ["OXYCONTIN LP 10 mg 1 cp matin et soir", "SERESTA 10 mg 1 cp le soir"])
    minor = [a for a in report.alerts if a.type == "interaction" and a.severity == "a-prendre-en-compte"]
    assert minor and all(a.alternatives == () for a in minor)
