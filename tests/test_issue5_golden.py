"""Issue 5 golden reports: geriatric reference prescriptions against independently derived expectations.

Each ``tests/golden_geriatric/prescriptions/NN_name.json`` is an ordonnance for an older French patient
(BDPM product names as a GP writes them, with the patient fields the checks need). The matching
``tests/golden_geriatric/expected/NN_name.yaml`` lists what a reader of the sources expects, each item
with a one-line ``why``: STOPP/START v2 findings (criterion text and the Huibers XML), duplicates, the
ACB total (Boustani 2008, ACBcalc where Boustani is silent), the Tisdale QT score, the renal table, the
transcribed vaccine calendar and the Iatroprev / Optimedoc / BPM doors. They were derived from those
sources, not from the engine's output.

Expected file keys:

- ``alerts``: alerts that must be present: ``type``, optional ``rule`` (a STOPP/START criterion, found
  in ``rule_id`` or ``related_rules``; a renal or duplicate rule id; a vaccine rule of the CSV), the
  ``substances`` the alert must name (others may be named too), and optionally ``severity``,
  ``vaccine``, ``message_contains``.
- ``absent``: the same selectors, for alerts that must not be there (without ``rule``: no alert of
  that type, with those substances when given).
- ``scores``: ``anticholinergic`` (``total``, ``by_substance``, ``other_scales``) and ``qt`` (``score``,
  ``level``); values compared for the keys listed.
- ``eligibility``: the booleans (``null`` = undecided) of the keys listed.
- ``missing_inputs`` / ``missing_inputs_absent``: an entry of the report's ``missing_inputs`` must (must
  not) contain every substring of ``contains`` (case-insensitive), or be ``equals``.

Alerts of other types, and other alerts of a listed type, are allowed unless listed under ``absent``.
Each (prescription, family of checks) is its own test, so that a disagreement of the engine on one
check is an ``xfail(strict=True)`` in :data:`ENGINE_DISAGREES` without hiding the others; a fix in the
engine then shows as an XPASS failure and the mark has to be removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from iatro.analysis import Engine, parse_prescription
from iatro.model.report import Alert, Report
from iatro.text import fold_words

GOLDEN = Path(__file__).resolve().parent / "golden_geriatric"
PRESCRIPTIONS = GOLDEN / "prescriptions"
EXPECTED = GOLDEN / "expected"
NAMES = sorted(path.stem for path in PRESCRIPTIONS.glob("*.json"))

ALERT_TYPES = ("pim", "omission", "duplicate", "anticholinergic", "qt", "renal", "vaccine")
FAMILIES = (*ALERT_TYPES, "eligibility", "missing_inputs")
SCORE_FAMILY = {"anticholinergic": "anticholinergic", "qt": "qt"}
ELIGIBILITY_KEYS = ("iatroprev", "optimedoc", "bilan_partage_medication")
SELECTOR_KEYS = {"type", "rule", "substances", "severity", "vaccine", "message_contains", "why"}

# (prescription::family) -> what the engine reports instead of the expectation (strict xfail).
ENGINE_DISAGREES: dict[str, str] = {
    "26_vaccins_hors_campagne::vaccine": (
        "engine: COVID_AUTUMN due on 2026-03-15: the autumn 2025 campaign, whose end the CSV does not "
        "give, is kept open 12 months (Iatro's staleness guard) although the CSV says '1 dose à l'automne'"
    ),
}


# -- reading the expectations ------------------------------------------------------------------------


def _expected(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((EXPECTED / f"{name}.yaml").read_text(encoding="utf-8"))
    return data


def _families(expected: Mapping[str, Any]) -> list[str]:
    """The families of checks a prescription's expectations speak about, in FAMILIES order."""
    found = {item["type"] for key in ("alerts", "absent") for item in expected.get(key) or ()}
    found |= {SCORE_FAMILY[key] for key in expected.get("scores") or {}}
    if expected.get("eligibility"):
        found.add("eligibility")
    if expected.get("missing_inputs") or expected.get("missing_inputs_absent"):
        found.add("missing_inputs")
    return [family for family in FAMILIES if family in found]


def _params() -> list[Any]:
    params = []
    for name in NAMES:
        for family in _families(_expected(name)):
            key = f"{name}::{family}"
            reason = ENGINE_DISAGREES.get(key)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            params.append(pytest.param(name, family, marks=marks, id=key))
    return params


# -- matching ---------------------------------------------------------------------------------------


def _same_name(reported: str, expected: str) -> bool:
    """Equal once folded, tolerating a salt or qualifier after the name ("dabigatran étexilate")."""
    r, e = fold_words(reported), fold_words(expected)
    return r == e or r.startswith(e + " ") or e.startswith(r + " ")


def _rule_matches(alert: Alert, rule: str) -> bool:
    ids = (alert.rule_id, *alert.related_rules)
    return any(rid == rule or rid.endswith(":" + rule) for rid in ids)


def _selects(alert: Alert, item: Mapping[str, Any]) -> bool:
    """Type, rule and substances of an expectation (the identity of the finding)."""
    if alert.type != item["type"]:
        return False
    rule = item.get("rule")
    if rule is not None and not _rule_matches(alert, rule):
        return False
    names = [s.name for s in alert.substances]
    return all(any(_same_name(n, wanted) for n in names) for wanted in item.get("substances") or ())


def _details(alert: Alert, item: Mapping[str, Any]) -> list[str]:
    """What differs in the attributes an expectation fixes beyond its identity."""
    wrong = []
    if "severity" in item and alert.severity != item["severity"]:
        wrong.append(f"severity {alert.severity!r}, expected {item['severity']!r}")
    if "vaccine" in item and alert.vaccine != item["vaccine"]:
        wrong.append(f"vaccine {alert.vaccine!r}, expected {item['vaccine']!r}")
    if "message_contains" in item and str(item["message_contains"]) not in alert.message:
        wrong.append(f"message {alert.message!r} lacks {item['message_contains']!r}")
    return wrong


def _identity(item: Mapping[str, Any]) -> tuple[str, str, tuple[str, ...]]:
    names = tuple(sorted(fold_words(n) for n in item.get("substances") or ()))
    return item["type"], item.get("rule") or "", names


def _describe(item: Mapping[str, Any]) -> str:
    parts = [item["type"], item.get("rule") or "", ",".join(item.get("substances") or ())]
    return " ".join(p for p in parts if p) + f" ({item['why']})"


def _show(alert: Alert) -> str:
    names = ", ".join(s.name for s in alert.substances)
    related = f" +{list(alert.related_rules)}" if alert.related_rules else ""
    return f"{alert.type} {alert.rule_id}{related} [{names}] {alert.severity}"


def _alert_problems(report: Report, expected: Mapping[str, Any], family: str) -> list[str]:
    problems = []
    alerts = [a for a in report.alerts if a.type == family]
    for item in expected.get("alerts") or ():
        if item["type"] != family:
            continue
        candidates = [a for a in alerts if _selects(a, item)]
        if not candidates:
            seen = "; ".join(_show(a) for a in alerts) or "none"
            problems.append(f"missing {_describe(item)}; engine {family} alerts: {seen}")
            continue
        mismatches = [_details(a, item) for a in candidates]
        if all(mismatches):
            problems.append(f"{_describe(item)}: {'; '.join(mismatches[0])}")
    for item in expected.get("absent") or ():
        if item["type"] != family:
            continue
        unwanted = [a for a in alerts if _selects(a, item)]
        if unwanted:
            problems.append(f"unexpected {_show(unwanted[0])}; expected absent: {_describe(item)}")
    return problems


def _by_name(values: Mapping[str, Any], wanted: Mapping[str, Any], what: str) -> list[str]:
    problems = []
    for name, value in wanted.items():
        found = [v for reported, v in values.items() if _same_name(reported, name)]
        if not found:
            problems.append(f"{what}: {name} not scored (engine: {dict(values)})")
        elif found[0] != value:
            problems.append(f"{what}: {name} = {found[0]}, expected {value}")
    return problems


def _score_problems(report: Report, expected: Mapping[str, Any], family: str) -> list[str]:
    wanted = (expected.get("scores") or {}).get(family)
    if wanted is None:
        return []
    reported = report.scores.get(family)
    if not isinstance(reported, dict):
        return [f"no {family} score in the report"]
    why = wanted["why"]
    problems = []
    for key in ("total", "score", "level"):
        if key in wanted and reported.get(key) != wanted[key]:
            problems.append(f"{family} {key} = {reported.get(key)!r}, expected {wanted[key]!r} ({why})")
    if "by_substance" in wanted:
        problems += _by_name(reported.get("by_substance") or {}, wanted["by_substance"], f"{family} ACB")
    for scale, scale_wanted in (wanted.get("other_scales") or {}).items():
        scale_reported = (reported.get("other_scales") or {}).get(scale) or {}
        if "total" in scale_wanted and scale_reported.get("total") != scale_wanted["total"]:
            problems.append(
                f"{scale} total = {scale_reported.get('total')!r}, expected {scale_wanted['total']}"
            )
        problems += _by_name(
            scale_reported.get("by_substance") or {}, scale_wanted.get("by_substance") or {}, scale
        )
    return problems


def _eligibility_problems(report: Report, expected: Mapping[str, Any]) -> list[str]:
    wanted = expected.get("eligibility") or {}
    reasons = report.eligibility.get("reasons")
    reasons = reasons if isinstance(reasons, dict) else {}
    return [
        f"{key} = {report.eligibility.get(key)!r}, expected {wanted[key]!r} ({wanted['why']}); "
        f"engine reasons: {reasons.get(key)}"
        for key in ELIGIBILITY_KEYS
        if key in wanted and report.eligibility.get(key) is not wanted[key]
    ]


def _fits(entry: str, item: Mapping[str, Any]) -> bool:
    if "equals" in item:
        return entry == str(item["equals"])
    text = entry.casefold()
    return all(part.casefold() in text for part in item["contains"])


def _missing_problems(report: Report, expected: Mapping[str, Any]) -> list[str]:
    entries = report.missing_inputs
    problems = [
        f"no missing input fits {item.get('contains') or item.get('equals')!r} ({item['why']}); "
        f"engine: {list(entries)}"
        for item in expected.get("missing_inputs") or ()
        if not any(_fits(entry, item) for entry in entries)
    ]
    for item in expected.get("missing_inputs_absent") or ():
        hits = [entry for entry in entries if _fits(entry, item)]
        if hits:
            problems.append(f"unexpected missing input {hits[0]!r} ({item['why']})")
    return problems


# -- tests ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reports(engine: Engine) -> dict[str, Report]:
    return {
        name: engine.analyze(parse_prescription((PRESCRIPTIONS / f"{name}.json").read_bytes()))
        for name in NAMES
    }


def _items(expected: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    yield from expected.get("alerts") or ()
    yield from expected.get("absent") or ()
    yield from expected.get("missing_inputs") or ()
    yield from expected.get("missing_inputs_absent") or ()
    yield from (expected.get("scores") or {}).values()
    if expected.get("eligibility"):
        yield expected["eligibility"]


def test_golden_set_is_complete_and_well_formed() -> None:
    assert len(NAMES) >= 30
    assert sorted(path.stem for path in EXPECTED.glob("*.yaml")) == NAMES
    keys = {f"{name}::{family}" for name in NAMES for family in _families(_expected(name))}
    assert set(ENGINE_DISAGREES) <= keys, set(ENGINE_DISAGREES) - keys
    for name in NAMES:
        expected = _expected(name)
        assert expected["prescription"] == f"{name}.json"
        for item in _items(expected):
            assert str(item.get("why") or "").strip(), f"{name}: an expectation has no why: {item}"
        for item in [*(expected.get("alerts") or ()), *(expected.get("absent") or ())]:
            assert item["type"] in ALERT_TYPES, f"{name}: {item}"
            assert set(item) <= SELECTOR_KEYS, f"{name}: unknown keys in {item}"
        wanted = {_identity(item) for item in expected.get("alerts") or ()}
        clash = wanted & {_identity(item) for item in expected.get("absent") or ()}
        assert not clash, f"{name}: {clash} both expected and absent"
        assert set(expected.get("scores") or {}) <= set(SCORE_FAMILY), name
        assert set(expected.get("eligibility") or {}) <= {*ELIGIBILITY_KEYS, "why"}, name


def test_every_check_has_positive_and_negative_cases() -> None:
    present: set[str] = set()
    absent: set[str] = set()
    for name in NAMES:
        expected = _expected(name)
        present |= {item["type"] for item in expected.get("alerts") or ()}
        absent |= {item["type"] for item in expected.get("absent") or ()}
    assert present >= set(ALERT_TYPES), set(ALERT_TYPES) - present
    assert absent >= set(ALERT_TYPES), set(ALERT_TYPES) - absent
    doors = [_expected(name).get("eligibility") or {} for name in NAMES]
    for key in ELIGIBILITY_KEYS:
        assert {True, False} <= {door[key] for door in doors if key in door}, key


@pytest.mark.parametrize("name", NAMES)
def test_golden_lines_resolve(name: str, reports: dict[str, Report]) -> None:
    report = reports[name]
    unresolved = [(line.index, line.input, line.reason) for line in report.lines if line.status != "resolved"]
    assert report.complete is _expected(name).get("complete", True), unresolved


@pytest.mark.parametrize(("name", "family"), _params())
def test_golden_findings(name: str, family: str, reports: dict[str, Report]) -> None:
    expected = _expected(name)
    report = reports[name]
    if family == "eligibility":
        problems = _eligibility_problems(report, expected)
    elif family == "missing_inputs":
        problems = _missing_problems(report, expected)
    else:
        problems = _alert_problems(report, expected, family) + _score_problems(report, expected, family)
    assert not problems, f"{name} [{family}]:\n  " + "\n  ".join(problems)
