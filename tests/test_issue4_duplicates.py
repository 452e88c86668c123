"""Issue 4: duplications through several products and within a duplicated class."""

from __future__ import annotations

import json

from iatro.analysis import parse_prescription


def _dups(engine, lines):
    document = {"lines": [{"text": t} for t in lines]}
    report = engine.analyze(parse_prescription(json.dumps(document)), checks=frozenset({"duplicate"}))
    return {a.rule_id: a for a in report.alerts}


def test_paracetamol_three_times_with_total_dose(engine):
    found = _dups(
        engine,
        [
            "DOLIPRANE 1000 mg 1 cp 3 fois par jour",
            "DAFALGAN 500 mg 2 gél matin et soir",
            "IXPRIM 37,5 mg/325 mg 1 cp/j",
        ],
    )
    alert = found["duplicate:substance"]
    assert alert.lines == (0, 1, 2)
    assert alert.substances[0].name == "paracetamol"
    assert "5325 mg/j" in alert.message


def test_two_benzodiazepines_and_two_ppis(engine):
    found = _dups(
        engine,
        [
            "SERESTA 10 mg 1 cp le soir",
            "STILNOX 10 mg 1 cp au coucher",
            "INEXIUM 20 mg 1 cp/j",
            "MOPRAL 20 mg 1 gél/j",
        ],
    )
    assert {"duplicate:class:benzodiazepines", "duplicate:class:ppi"} <= set(found)
    assert "STOPP A3" in found["duplicate:class:ppi"].source


def test_no_duplicate_for_different_classes_or_a_single_line(engine):
    found = _dups(engine, ["SERESTA 10 mg 1 cp le soir", "INEXIUM 20 mg 1 cp/j", "DOLIPRANE 1000 mg 1 cp/j"])
    assert found == {}


def test_lithium_is_not_an_antipsychotic_duplicate(engine):
    found = _dups(engine, ["TERALITHE 250 mg 1 cp matin et soir", "HALDOL 5 mg 1 cp/j"])
    assert "duplicate:class:antipsychotics" not in found
