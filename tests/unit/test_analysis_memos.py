"""Issue 6: the alerts the checks remember (``AlertMemo``: vaccines, ACB, QT, renal, class duplicates;
CYP alerts; interaction alerts per exposure pair), each built once and copied onto other lines, and
the vaccine rules' outcomes, are those the checks would build afresh, on real KB data.

An engine whose memos remember nothing (``limit=0``) and the shared engine, warmed on other
prescriptions in another order (so that every remembered alert was built by another prescription,
usually on other lines), give identical reports. ``replaced``, the cheap copy the memos and the
interaction check use, is ``model_copy`` field for field.
"""

from __future__ import annotations

import random
from functools import partial
from typing import Any

import pytest

from benchmarks.generator import prescriptions
from iatro.analysis import CHECKS, Engine
from iatro.checks.explicit_criteria import evaluate_all
from iatro.checks.result import AlertMemo
from iatro.kb.store import KnowledgeBase
from iatro.model.prescription import Prescription
from iatro.model.report import Alert, LineReport, Posology, SubstanceRef, replaced

WITHOUT_ALTERNATIVES = frozenset(CHECKS) - {"alternatives"}
POSOLOGIES = (None, "1 cp le matin", "2 cp 3 fois par jour", "1 cp si besoin", "500 mg matin et soir")
ROUTES = ("orale", "injectable", "cutanee", "ophtalmique", "inhalee")


def _batch(count: int, seed: int) -> list[Prescription]:
    """Varied prescriptions and patients: every fact an alert is built from varies somewhere."""
    rng = random.Random(seed)
    out = []
    for item in prescriptions(count, seed=seed, lines=(3, 18)):
        lines: list[dict[str, Any]] = list(item["lines"])  # type: ignore[call-overload]
        rng.shuffle(lines)  # the same drugs on other lines
        for line in lines:
            posology = rng.choice(POSOLOGIES)
            if posology:
                line["posology"] = posology
            if rng.random() < 0.05:
                line["duration_days"] = rng.choice((10, 400))
            if rng.random() < 0.1:
                line["route"] = rng.choice(ROUTES)
            if rng.random() < 0.1:
                line["dose_mg_per_day"] = rng.choice((5, 100, 1000, 3000))
        if rng.random() < 0.2:
            lines.append({"substance": lines[0]["substance"]})  # a duplicate of one substance
        patient: dict[str, Any] = {
            "age": rng.choice((None, 64, 66, 75, 80, 86, 93, 101)),
            "sex": rng.choice(("F", "M", None)),
            "weight_kg": rng.choice((45, 60, 85)),
            "creatinine_umol_l": rng.choice((None, 60, 110, 190, 320)),
            "conditions": rng.choice((["I48", "I10"], ["I50", "N18"], ["F03"], [], ["K25", "E11", "G20"])),
            "labs": {"potassium_mmol_l": rng.choice((3.1, 4.2, 5.6)), "qtc_ms": rng.choice((None, 430, 490))},
        }
        if rng.random() < 0.4:
            patient["egfr_ml_min"] = rng.choice((12, 25, 40, 70))
        if rng.random() < 0.3:
            patient["vaccinations"] = [
                {"vaccine": v, "date": rng.choice(("2019-05-02", "2025-10-20", "2026-10-01"))}
                for v in rng.sample(["grippe", "covid-19", "pneumocoque", "zona", "dtp"], 2)
            ]
        document: dict[str, Any] = {"lines": lines, "patient": {k: v for k, v in patient.items() if v}}
        if rng.random() < 0.9:
            document["date"] = rng.choice(("2026-11-24", "2026-06-15", "2027-01-10"))
        out.append(Prescription.model_validate(document))
    return out


def _memos(engine: Engine) -> list[AlertMemo]:
    checks = [check for _, check in engine.geriatric]
    return [value for check in checks for value in vars(check).values() if isinstance(value, AlertMemo)]


class _Forget(dict[Any, Any]):
    """A memo table that keeps nothing: every lookup misses."""

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


@pytest.fixture(scope="module")
def forgetful(kb: KnowledgeBase) -> Engine:
    engine = Engine(kb)
    for memo in _memos(engine):
        memo.limit = 0
    vaccines = dict(engine.geriatric)["vaccine"]
    vaccines._outcomes = _Forget()  # type: ignore[attr-defined]
    engine.cyp._alerts = _Forget()  # remembered without their lines, like AlertMemo's
    engine.interactions._pair_alerts = _Forget()
    return engine


def test_remembered_alerts_are_the_alerts_built_afresh(engine: Engine, forgetful: Engine) -> None:
    batch = _batch(400, seed=606)
    for p in _batch(200, seed=607)[::-1]:  # warm the shared engine on other prescriptions first
        engine.analyze(p, WITHOUT_ALTERNATIVES)
    # The session's engine has served other tests: count what this batch adds to its memos.
    before = sum(len(m._alerts) for m in _memos(engine))
    warm = [engine.analyze(p, WITHOUT_ALTERNATIVES) for p in batch]
    fresh = [forgetful.analyze(p, WITHOUT_ALTERNATIVES) for p in batch]
    assert [r.model_dump_json() for r in warm] == [r.model_dump_json() for r in fresh]
    kinds = {a.type for r in warm for a in r.alerts}
    assert {"vaccine", "anticholinergic", "qt", "renal", "duplicate", "cyp", "interaction"} <= kinds
    # The memos were used: many more of these alerts than distinct ones, copied onto other lines.
    memos = _memos(engine)
    assert all(len(m._alerts) > 0 for m in memos) and not any(m._alerts for m in _memos(forgetful))
    remembered = sum(len(m._alerts) for m in memos) - before
    served = sum(
        a.type in {"vaccine", "anticholinergic", "qt", "renal", "duplicate"} for r in warm for a in r.alerts
    )
    assert served > 2 * remembered


def test_interaction_alerts_pair_by_pair_are_those_of_the_findings(engine: Engine) -> None:
    """``check`` builds each pair's alert from its exposure pair, and remembers those of unqualified
    rules; the general path groups every finding by substance pair. Same alerts, in the same order
    (before the final sort, so that alerts it ranks equal keep the same order too)."""
    index = engine.interactions
    compared = qualified = 0
    for p in [*_batch(300, seed=608), *_batch(100, seed=608)]:  # the second time from the memo
        lines = tuple(engine.resolver.resolve(line, i) for i, line in enumerate(p.lines))
        ctx = engine.context(p, lines)
        by_pair = index._by_exposure_pair(ctx)
        if by_pair is None:  # a substance on two exposures: the general path
            continue
        assert by_pair == index._by_substance_pair(ctx)
        compared += 1
        qualified += any(
            f.rule.rule_id in index.qualifications for fs in index.findings(ctx).values() for f in fs
        )
    assert compared > 300 and qualified > 50
    assert index._pair_alerts


def test_unexplained_unknowns_name_what_the_explained_ones_do(engine: Engine) -> None:
    """The engine's explicit-criteria check asks for not-assessed criteria without explanations
    (``explain_unknown=False``): the same criteria, the same missing inputs, the same hits."""
    lists = engine.criteria.lists
    unknowns = 0
    for p in _batch(150, seed=609):
        lines = tuple(engine.resolver.resolve(line, i) for i, line in enumerate(p.lines))
        ctx = engine.context(p, lines)
        full, brief = evaluate_all(lists, ctx), evaluate_all(lists, ctx, explain_unknown=False)
        assert brief.hits == full.hits
        assert [(h.criterion_id, h.kind, h.missing_inputs) for h in brief.not_assessed] == [
            (h.criterion_id, h.kind, h.missing_inputs) for h in full.not_assessed
        ]
        unknowns += len(full.not_assessed)
    assert unknowns > 150


def _same(alert: Alert) -> Alert:
    return alert


def test_a_full_memo_starts_afresh() -> None:
    memo = AlertMemo(limit=3)
    built = [Alert(type="qt", severity="low", source="s", rule_id=f"r{n}", message="m") for n in range(5)]
    for n, alert in enumerate(built):
        assert memo.get(n, (), partial(_same, alert)) is alert
    assert len(memo._alerts) <= 3


def test_a_remembered_alert_is_copied_onto_the_lines_asked_for() -> None:
    memo = AlertMemo()
    first = memo.get(
        "k",
        (1, 4),
        lambda: Alert(type="qt", severity="low", source="s", rule_id="r", message="m", lines=(1, 4)),
    )
    again = memo.get("k", (2, 7), lambda: pytest.fail("built twice"))
    assert again.lines == (2, 7) and again.model_dump(exclude={"lines"}) == first.model_dump(
        exclude={"lines"}
    )
    assert memo.get("k", (1, 4), lambda: pytest.fail("built twice")) is first


@pytest.mark.parametrize(
    ("item", "changes"),
    [
        (
            Alert(
                type="interaction",
                severity="precaution-emploi",
                substances=(SubstanceRef(name="amiodarone", atc="C01BD01"),),
                lines=(0, 3),
                source="ANSM",
                rule_id="r",
                message="m",
                auc_ratio=2.5,
            ),
            {"lines": (1, 2)},
        ),
        (
            LineReport(index=0, input="x", status="resolved", posology=Posology(text="1 cp", parsed=True)),
            {"index": 4},
        ),
        (Posology(text="1 cp", parsed=True), {"mg_per_day": 5.0, "unit": "mg"}),
    ],
)
def test_replaced_is_model_copy(item: Alert | LineReport | Posology, changes: dict[str, Any]) -> None:
    mine, theirs = replaced(item, **changes), item.model_copy(update=changes)
    assert type(mine) is type(theirs)
    assert mine == theirs and hash(mine) == hash(theirs)
    assert mine.model_fields_set == theirs.model_fields_set
    assert mine.model_dump_json() == theirs.model_dump_json()
    assert mine.__pydantic_extra__ == theirs.__pydantic_extra__
    assert mine.__pydantic_private__ == theirs.__pydantic_private__
    assert item.model_dump() != mine.model_dump()  # the original is untouched
