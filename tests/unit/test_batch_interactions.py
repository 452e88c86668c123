"""Issue 4 (performance): the fast interaction paths give exactly the engine's interaction alerts.

Three comparisons on seeded generated prescriptions, real KB:

* ``InteractionIndex.findings`` (pair candidates cached per (substance, route)) against the plain
  detection loop kept in ``tests/unit/interactions_reference.py``: same findings, same order;
* the batch kernel (``iatro.batch``) against ``Engine.analyze(..., {"interactions"})`` on 10,000
  prescriptions: per prescription, the same alerts (substances, level, rule, unresolved flag);
* the kernel's single-prescription path against its numpy path.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import cast

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.generator import COMMON, prescriptions
from iatro.analysis import Engine
from iatro.batch import BatchInteractions, PairHits
from iatro.batch.interactions import LEVEL_CODES
from iatro.errors import FieldError
from iatro.kb.store import KnowledgeBase
from iatro.kb.thesaurus import LEVEL_RANK
from iatro.model.prescription import LineInput, Patient, Prescription
from tests.unit.interactions_reference import reference_findings

ONLY = frozenset({"interactions"})
# Patients whose facts reach the curated conditions: history (ulcer, heart failure, renal disease),
# eGFR, potassium, age, sex; None fields leave conditions unresolved.
CONDITIONS = ((), ("K25",), ("I50",), ("N18",), ("K25", "I50"), ("E11", "I10"))


def _patient(rng: random.Random) -> Patient:
    return Patient(
        age=rng.choice((None, 70, 84, 92)),
        sex=rng.choice((None, "F", "M")),
        conditions=rng.choice(CONDITIONS),
        egfr_ml_min=rng.choice((None, 20.0, 45.0, 80.0)),
        labs={"potassium_mmol_l": rng.choice((None, 3.2, 4.5, 5.6))},
    )


@pytest.fixture(scope="module")
def kernel(engine: Engine) -> BatchInteractions:
    return BatchInteractions(engine.interactions, engine.resolver)


def _engine_rows(engine: Engine, prescription: Prescription) -> list[tuple[str, ...]]:
    report = engine.analyze(prescription, ONLY)
    return sorted(
        (
            *(s.name for s in alert.substances),
            alert.severity,
            alert.rule_id,
            str(bool(alert.unresolved_conditions)),
        )
        for alert in report.alerts
    )


def _kernel_rows(
    kb: KnowledgeBase, kernel: BatchInteractions, hits: PairHits, p: int
) -> list[tuple[str, ...]]:
    rows = np.flatnonzero(hits.prescription == p)
    return sorted(
        (
            kb.substances[int(hits.substance_a[i])].name,
            kb.substances[int(hits.substance_b[i])].name,
            str(LEVEL_CODES[int(hits.level[i])]),
            kernel.rules[int(hits.rule[i])].rule_id,
            str(bool(hits.unresolved[i])),
        )
        for i in rows
    )


def _substances(item: dict[str, object]) -> list[str]:
    return [line["substance"] for line in cast(list[dict[str, str]], item["lines"])]


def _offsets(sizes: list[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def test_fast_findings_equal_the_reference_loop(engine: Engine) -> None:
    rng = random.Random(4)
    index = engine.interactions
    checked = 0
    for item in prescriptions(2000, seed=41):
        item["patient"] = _patient(rng).model_dump()
        prescription = Prescription.model_validate(item)
        lines = tuple(engine.resolver.resolve(line, i) for i, line in enumerate(prescription.lines))
        ctx = engine.context(prescription, lines)
        assert list(index.findings(ctx).items()) == list(reference_findings(index, ctx).items())
        line = rng.randrange(len(prescription.lines))
        assert list(index.findings(ctx, line).items()) == list(reference_findings(index, ctx, line).items())
        checked += 1
    assert checked == 2000


def test_batch_agrees_with_the_engine_on_10000_prescriptions(
    engine: Engine, kb: KnowledgeBase, kernel: BatchInteractions
) -> None:
    rng = random.Random(10)
    items = list(prescriptions(10_000, seed=20261125))
    patients = [_patient(rng) if i % 2 else Patient(age=85, sex="F") for i in range(len(items))]
    names = [name for item in items for name in _substances(item)]
    ids = kernel.encode_lines(names)
    offsets = _offsets([len(item["lines"]) for item in items])  # type: ignore[arg-type]
    hits = kernel.run(offsets, ids, patients)
    counts = hits.counts_by_level(len(items))
    levels: Counter[int] = Counter()
    for p, item in enumerate(items):
        item["patient"] = patients[p].model_dump()
        prescription = Prescription.model_validate(item)
        expected = _engine_rows(engine, prescription)
        assert _kernel_rows(kb, kernel, hits, p) == expected, f"prescription {p}"
        by_level = Counter(LEVEL_RANK[row[2]] for row in expected)  # type: ignore[index]
        assert [counts[p, k] for k in range(1, 5)] == [by_level[k] for k in range(1, 5)]
        levels.update(by_level)
    # The comparison covered every level and both resolved and unresolved qualifications.
    assert all(levels[k] > 0 for k in range(1, 5))
    assert hits.unresolved.any() and not hits.unresolved.all()


def _product_prescriptions(kb: KnowledgeBase, count: int, seed: int) -> list[list[str]]:
    """CIS lines of marketed products (combinations included), some substances on two lines."""
    rng = random.Random(seed)
    common = {name for name, _ in COMMON}
    pool = [p.cis for p in kb.products if p.marketed and p.components and not p.homeopathic]
    frequent = [
        p.cis
        for p in kb.products
        if p.marketed
        and p.components
        and any(kb.substances[c.substance_id].name in common for c in p.components)
    ]
    out = []
    for _ in range(count):
        lines = [rng.choice(frequent if rng.random() < 0.7 else pool) for _ in range(rng.randint(3, 14))]
        if rng.random() < 0.2:
            lines.append(rng.choice(lines))  # the same product twice: one alert over several lines
        out.append(lines)
    return out


def test_batch_agrees_with_the_engine_on_products_by_cis(
    engine: Engine, kb: KnowledgeBase, kernel: BatchInteractions
) -> None:
    rng = random.Random(7)
    cis_lists = _product_prescriptions(kb, 1500, seed=99)
    patients = [_patient(rng) for _ in cis_lists]
    ids = kernel.encode_lines([cis for lines in cis_lists for cis in lines], kind="cis")
    hits = kernel.run(_offsets([len(lines) for lines in cis_lists]), ids, patients)
    merged = 0
    for p, lines in enumerate(cis_lists):
        prescription = Prescription(lines=tuple(LineInput(cis=c) for c in lines), patient=patients[p])
        assert _kernel_rows(kb, kernel, hits, p) == _engine_rows(engine, prescription), f"prescription {p}"
        merged += len(lines) != len(set(lines))
    assert merged > 100


def test_batch_agrees_with_the_engine_with_doses_and_routes(
    engine: Engine, kb: KnowledgeBase, kernel: BatchInteractions
) -> None:
    """Dose- and route-dependent levels (aspirin, methotrexate, IV forms), as the engine reads them."""
    rng = random.Random(3)
    variants = [
        LineInput(substance="acide acetylsalicylique", dose_mg_per_day=dose) for dose in (75, 160, 500, 3000)
    ] + [
        LineInput(substance="methotrexate", dose_mg_per_day=dose) for dose in (2.5, 10, 20)
    ] + [
        LineInput(substance=name, route=route)
        for name in ("erythromycine", "diltiazem", "fer", "amiodarone")
        for route in ("orale", "injectable")
    ]  # fmt: skip
    base = [LineInput(substance=name) for name, weight in COMMON if weight > 0]
    batch: list[list[LineInput]] = []
    for _ in range(1500):
        lines = rng.sample(base, rng.randint(3, 10)) + rng.sample(variants, rng.randint(1, 3))
        rng.shuffle(lines)
        batch.append(lines)
    patients = [_patient(rng) for _ in batch]
    ids = kernel.encode_line_inputs(line for lines in batch for line in lines)
    hits = kernel.run(_offsets([len(lines) for lines in batch]), ids, patients)
    for p, lines in enumerate(batch):
        prescription = Prescription(lines=tuple(lines), patient=patients[p])
        assert _kernel_rows(kb, kernel, hits, p) == _engine_rows(engine, prescription), f"prescription {p}"


def test_single_prescription_path_equals_the_numpy_path(kernel: BatchInteractions) -> None:
    rng = random.Random(5)
    items = list(prescriptions(1000, seed=8))
    lists = [kernel.encode_lines(_substances(item)) for item in items]
    patients = [_patient(rng) for _ in items]
    hits = kernel.run(_offsets([len(ids) for ids in lists]), np.concatenate(lists), patients)
    for p, ids in enumerate(lists):
        rows = np.flatnonzero(hits.prescription == p)
        expected = sorted(
            (
                int(hits.line_a[i]),
                int(hits.line_b[i]),
                int(hits.substance_a[i]),
                int(hits.substance_b[i]),
                int(hits.level[i]),
                bool(hits.unresolved[i]),
                int(hits.rule[i]),
            )
            for i in rows
        )
        assert sorted(tuple(hit) for hit in kernel.check_lines(ids.tolist(), patients[p])) == expected


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_line_order_does_not_change_the_alerts(kernel: BatchInteractions, data: st.DataObject) -> None:
    names = data.draw(st.lists(st.sampled_from([n for n, w in COMMON if w > 0]), min_size=2, max_size=20))
    ids = kernel.encode_lines(names)
    shuffled = data.draw(st.permutations(list(range(len(ids)))))
    first = kernel.run([0, len(ids)], ids)
    second = kernel.run([0, len(ids)], ids[list(shuffled)])

    def alerts(hits: PairHits) -> list[tuple[int, ...]]:
        return sorted(
            zip(
                hits.substance_a.tolist(),
                hits.substance_b.tolist(),
                hits.level.tolist(),
                hits.rule.tolist(),
                strict=True,
            )
        )

    assert alerts(first) == alerts(second)


def test_unresolved_keys_take_no_part(engine: Engine, kernel: BatchInteractions) -> None:
    names = ["clarithromycine", "zzz not a drug", "simvastatine"]
    ids = kernel.encode_lines(names)
    assert ids[1] == 0 and ids[0] > 0 and ids[2] > 0
    hits = kernel.run([0, 3], ids)
    assert len(hits) == 1
    assert (hits.line_a[0], hits.line_b[0]) == (0, 2)
    report = engine.analyze(Prescription(lines=tuple(LineInput(substance=n) for n in names)), ONLY)
    assert report.lines[1].status == "unresolved"
    assert [a.severity for a in report.alerts] == [LEVEL_CODES[int(hits.level[0])]] == ["contre-indication"]


def test_empty_batch_and_prescriptions_without_pairs(kernel: BatchInteractions) -> None:
    assert len(kernel.run([0], np.zeros(0, dtype=np.int32))) == 0
    ids = kernel.encode_lines(["paracetamol", "amiodarone"])
    hits = kernel.run([0, 1, 1, 2], ids)
    assert len(hits) == 0
    assert hits.counts_by_level(3).shape == (3, 5)


def test_bad_input_names_the_field(kernel: BatchInteractions) -> None:
    ids = kernel.encode_lines(["amiodarone", "simvastatine"])
    with pytest.raises(FieldError) as offsets:
        kernel.run([0, 3], ids)
    assert offsets.value.field == "offsets"
    with pytest.raises(FieldError) as line_ids:
        kernel.run([0, 2], np.array([1, 10**6], dtype=np.int32))
    assert line_ids.value.field == "line_ids"
    with pytest.raises(FieldError) as patients:
        kernel.run([0, 1, 2], ids, [Patient()])
    assert patients.value.field == "patients"
    with pytest.raises(FieldError) as key:
        kernel.encode_lines(["12345"], kind="cis")
    assert key.value.field == "keys.0"
    with pytest.raises(FieldError):
        kernel.encode_lines(["x"], kind="atc")  # type: ignore[arg-type]


def test_offsets_are_csr(kernel: BatchInteractions) -> None:
    ids = kernel.encode_lines(["amiodarone", "simvastatine", "clarithromycine", "simvastatine"])
    hits = kernel.run([0, 2, 4], ids)
    assert hits.prescription.tolist() == sorted(hits.prescription.tolist())
    assert set(hits.prescription.tolist()) == {0, 1}
