"""Issue 4 golden reports: reference prescriptions against hand-derived ANSM interaction expectations.

Each ``tests/golden/prescriptions/NN_name.json`` is a realistic ordonnance for an older patient; the
matching ``tests/golden/expected/NN_name.yaml`` lists, pair by pair, the interaction alerts a reader of
the ANSM thésaurus 2020-10 expects for this patient (level, optionally the rule relied on and whether a
condition could not be resolved), the line statuses and ``complete``. The expectations were derived from
the thesaurus text, not from the engine: where the engine disagrees the test is an ``xfail(strict=True)``
listed in ``ENGINE_DISAGREES`` with the reason, so a fix in the engine turns it into an XPASS failure and
the mark has to be removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from iatro.analysis import Engine, parse_prescription
from iatro.model.report import Alert, Report
from iatro.text import fold_words

GOLDEN = Path(__file__).resolve().parent / "golden"
PRESCRIPTIONS = GOLDEN / "prescriptions"
EXPECTED = GOLDEN / "expected"
NAMES = sorted(path.stem for path in PRESCRIPTIONS.glob("*.json"))

LEVELS = {"contre-indication", "association-deconseillee", "precaution-emploi", "a-prendre-en-compte"}

# Prescriptions whose expected alerts the engine does not meet yet (strict xfail): none left; the
# 13 found when the set was written were fixed (see git history).
ENGINE_DISAGREES: dict[str, str] = {}

Pair = tuple[str, ...]


def _expected(name: str) -> dict[str, Any]:
    return yaml.safe_load((EXPECTED / f"{name}.yaml").read_text(encoding="utf-8"))


def _same_name(reported: str, expected: str) -> bool:
    """ANSM index name vs reported name, tolerating a salt/qualifier suffix ("dabigatran étexilate")."""
    r, e = fold_words(reported), fold_words(expected)
    return r == e or r.startswith(e + " ") or e.startswith(r + " ")


def _pair(alert: Alert, known: Iterable[str]) -> Pair:
    """The alert's substances as expected-file names when they match one, else folded as reported."""
    names = []
    for substance in alert.substances:
        match = next((k for k in known if _same_name(substance.name, k)), None)
        names.append(match if match is not None else fold_words(substance.name))
    return tuple(sorted(names, key=fold_words))


def _key(names: Iterable[str]) -> Pair:
    return tuple(sorted(names, key=fold_words))


@pytest.fixture(scope="module")
def reports(engine: Engine) -> dict[str, Report]:
    cache: dict[str, Report] = {}
    for name in NAMES:
        document = (PRESCRIPTIONS / f"{name}.json").read_bytes()
        cache[name] = engine.analyze(parse_prescription(document))
    return cache


def _params() -> list[Any]:
    params = []
    for name in NAMES:
        reason = ENGINE_DISAGREES.get(name)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def test_golden_set_is_complete_and_well_formed() -> None:
    assert len(NAMES) >= 40
    assert sorted(path.stem for path in EXPECTED.glob("*.yaml")) == NAMES
    assert set(ENGINE_DISAGREES) <= set(NAMES)
    for name in NAMES:
        expected = _expected(name)
        assert expected["prescription"] == f"{name}.json"
        assert 4 <= len(expected["lines"]) <= 15
        pairs = [_key(item["substances"]) for item in expected["interactions"]]
        assert len(pairs) == len(set(pairs)), f"{name}: a pair is listed twice"
        for item in expected["interactions"]:
            assert len(item["substances"]) == 2 and item["level"] in LEVELS, f"{name}: {item}"
            assert item["why"].strip(), f"{name}: {item['substances']} has no why"
        for item in expected.get("absent", []):
            both = f"{name}: {item['substances']} both expected and absent"
            assert _key(item["substances"]) not in pairs, both


@pytest.mark.parametrize("name", NAMES)
def test_golden_lines_and_completeness(name: str, reports: dict[str, Report]) -> None:
    expected = _expected(name)
    report = reports[name]
    assert [(line.index, line.status) for line in report.lines] == [
        (line["index"], line["status"]) for line in expected["lines"]
    ]
    assert report.complete is expected["complete"]


@pytest.mark.parametrize("name", _params())
def test_golden_interactions(name: str, reports: dict[str, Report]) -> None:
    expected = _expected(name)
    known = {n for item in expected["interactions"] for n in item["substances"]}
    known |= {n for item in expected.get("absent", []) for n in item["substances"]}
    alerts = {}
    for alert in reports[name].alerts:
        if alert.type == "interaction":
            pair = _pair(alert, known)
            assert pair not in alerts, f"{name}: two interaction alerts for {pair}"
            alerts[pair] = alert
    wanted = {_key(item["substances"]): item for item in expected["interactions"]}

    problems = []
    for pair, item in wanted.items():
        alert = alerts.get(pair)
        if alert is None:
            problems.append(f"missing {pair} {item['level']} ({item['why']})")
        elif alert.severity != item["level"]:
            problems.append(
                f"{pair}: engine {alert.severity}, expected {item['level']}; engine why: {alert.why}"
            )
    for pair, alert in alerts.items():
        if pair not in wanted:
            problems.append(f"unexpected {pair} {alert.severity}; engine why: {alert.why}")
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)

    for pair, item in wanted.items():
        alert = alerts[pair]
        if "rule_id" in item:
            assert item["rule_id"] in {alert.rule_id, *alert.related_rules}, f"{name} {pair}: {alert.rule_id}"
        if "unresolved" in item:
            assert bool(alert.unresolved_conditions) is item["unresolved"], (
                f"{name} {pair}: unresolved_conditions={alert.unresolved_conditions}"
            )
