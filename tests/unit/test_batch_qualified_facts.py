"""Issues 10 and 6: the kernel keys a qualified pair's outcome on the facts its qualification reads.

``iatro.batch.qualified`` memoises the outcome of a pair of exposures on the patient's answers to the
questions of the pair's curated qualifications (``iatro.checks.qualify.patient_questions``), so that
patients who differ only in facts the rules ignore share one evaluation. These tests hold it to the
engine on many distinct patients (ages across the 18 and 65 thresholds, both sexes and none, coded
histories with and without the hepatic, cardiac, ulcer, coronary and sickle-cell prefixes the
curation reads, eGFR and potassium on both sides of their thresholds, labs missing):

* ``qualify`` gives the same level, candidates, case and unresolved inputs to every patient who
  answers a qualification's questions alike (real KB qualifications, real substances and doses);
* the batch kernel, its single-prescription path, and ``Engine.analyze`` agree row for row on
  prescriptions built around the qualified pairs, with one distinct patient per prescription;
* the same with memo bounds small enough to be cleared many times during one run;
* the engine's qualification runs once per (pair, answers), not once per patient.
"""

from __future__ import annotations

import random
from collections import defaultdict
from operator import attrgetter
from typing import Any, get_args

import numpy as np
import pytest

from benchmarks.generator import COMMON
from iatro.analysis import Engine
from iatro.batch import BatchInteractions, PairHits, PatientColumns
from iatro.batch import answers as answers_module
from iatro.batch import qualified as qualified_module
from iatro.batch.factorize import factorize, factorize_pairs
from iatro.batch.hits import I64
from iatro.batch.interactions import LEVEL_CODES
from iatro.batch.patients import distinct
from iatro.checks.context import Exposure
from iatro.checks.qualify import (
    PATIENT_CASE_FIELDS,
    PatientField,
    PatientQuestion,
    PatientValue,
    patient_questions,
    qualify,
)
from iatro.errors import FieldError
from iatro.kb.qualifications import Case
from iatro.kb.store import KnowledgeBase
from iatro.model.prescription import LineInput, Patient, Prescription
from tests.unit.test_batch_interactions import _engine_rows

ONLY = frozenset({"interactions"})
# CIM-10 codes around the prefixes the curation reads (K25-K28 ulcer, I50 heart failure, I20.0/I21/
# I22/I24 coronary syndrome, K70.3/K70.4/K71.1/K72/K74.6 hepatic, D57.0-D57.8 sickle cell), their
# sub-codes, near misses that must not match (I20, K70, D57) and codes no rule reads.
CODES = (
    "K25", "K260", "K27", "K284", "I50", "I501", "I20", "I200", "I21", "I210", "I22", "I24",
    "K70", "K703", "K704", "K711", "K72", "K721", "K746", "D57", "D570", "D571", "D578",
    "N18", "N184", "E11", "I10", "F03", "I48",
)  # fmt: skip


def _patient(rng: random.Random) -> Patient:
    """A patient drawn so that nearly every one in a batch is distinct."""
    return Patient(
        age=rng.choice((None, 17, 18, 64, 65, rng.randint(0, 110), rng.randint(60, 100))),
        sex=rng.choice((None, "F", "M")),
        weight_kg=rng.choice((None, 48.0, 80.0)),
        conditions=() if rng.random() < 0.2 else tuple(rng.sample(CODES, rng.randint(1, 4))),
        egfr_ml_min=rng.choice((None, 59.9, 60.0, 89.9, 90.0, round(rng.uniform(5, 130), 1))),
        labs={"potassium_mmol_l": rng.choice((None, 3.49, 3.5, round(rng.uniform(2.8, 6.2), 2)))},
    )


def _facts(patient: Patient) -> tuple[object, ...]:
    return (patient.conditions, patient.sex, patient.age, patient.egfr_ml_min, patient.labs.potassium_mmol_l)


def _rules_with_questions(engine: Engine) -> list[int]:
    index = engine.interactions
    return [
        r for r, rule in enumerate(index.rules) if patient_questions(index.qualifications.get(rule.rule_id))
    ]


def _side_members(engine: Engine) -> dict[tuple[int, int], list[int]]:
    """(rule, side) -> KB substance ids on that side (through their ANSM entries and classes)."""
    out: dict[tuple[int, int], list[int]] = defaultdict(list)
    for substance_id, memberships in enumerate(engine.interactions.memberships):
        for rule, side, _name in memberships:
            out[rule, side].append(substance_id)
    return out


def test_every_case_field_is_known() -> None:
    """A new patient field in the curation model must become a question, or the memo would be wrong."""
    sides = {
        f"{name}_{side}"
        for name in ("substances", "not_substances", "route", "mg_per_intake", "mg_per_day", "mg_per_week")
        for side in "ab"
    }
    assert set(Case.model_fields) == {"level", "quote", "either_side"} | sides | set(PATIENT_CASE_FIELDS)


def test_the_curation_asks_the_expected_questions(engine: Engine) -> None:
    questions = {
        q
        for rule in engine.interactions.rules
        for q in patient_questions(engine.interactions.qualifications.get(rule.rule_id))
    }
    fields = {q.field for q in questions}
    assert fields == {"conditions", "sex", "age", "egfr_ml_min", "labs.potassium_mmol_l"}
    hepatic = PatientQuestion("conditions", prefixes=("K703", "K704", "K711", "K72", "K746"))
    assert hepatic in questions
    assert hepatic.answer(Patient(conditions=("K7030",))) is True
    assert hepatic.answer(Patient(conditions=("K70", "N18"))) is False  # K70 alone is not K70.3
    assert hepatic.answer(Patient()) is None  # no coded history: undecidable, not "no history"
    age = next(q for q in questions if q.field == "age" and q.bound and q.bound.ge == 65)
    assert (age.answer(Patient(age=65)), age.answer(Patient(age=64)), age.answer(Patient())) == (
        True,
        False,
        None,
    )


def test_qualify_depends_on_the_patient_only_through_its_questions(engine: Engine, kb: KnowledgeBase) -> None:
    index = engine.interactions
    members = _side_members(engine)
    rng = random.Random(61)
    patients = [_patient(rng) for _ in range(150)]
    pooled = distinguished = 0
    for r in _rules_with_questions(engine):
        rule = index.rules[r]
        qualification = index.qualifications[rule.rule_id]
        questions = patient_questions(qualification)
        doses: set[float | None] = {None}
        for case in qualification.cases:
            for bound in (case.mg_per_day_a, case.mg_per_day_b, case.mg_per_intake_a, case.mg_per_intake_b):
                if bound is not None:
                    doses |= {v for v in (bound.ge, bound.gt, bound.le, bound.lt) if v is not None}
        for a_id in members[r, 0][:3]:
            for b_id in members[r, 1][:3]:
                for dose in sorted(doses, key=lambda d: -1.0 if d is None else d):
                    a, b = (
                        Exposure(
                            line=line,
                            substance_id=s,
                            name=kb.substances[s].name,
                            atc=(),
                            mg_per_day=dose,
                            aliases=kb.substances[s].ansm,
                        )
                        for line, s in ((0, a_id), (1, b_id))
                    )
                    groups: dict[tuple[bool | None, ...], set[tuple[object, ...]]] = defaultdict(set)
                    for patient in patients:
                        level = qualify(rule, qualification, a, b, patient)
                        outcome = (
                            level.level,
                            level.unresolved_conditions,
                            level.candidates,
                            level.lowest_possible,
                            level.case_index,
                        )
                        groups[tuple(q.answer(patient) for q in questions)].add(outcome)
                    assert all(len(found) == 1 for found in groups.values()), rule.rule_id
                    pooled += len(groups) < len(patients)
                    distinguished += len({next(iter(found)) for found in groups.values()}) > 1
    # The test is not vacuous: patients were pooled, and the answers did change levels.
    assert pooled > 50 and distinguished > 20


def _targeted(kernel: BatchInteractions, engine: Engine, count: int, seed: int) -> list[list[LineInput]]:
    """Prescriptions of 4-16 lines around one to three pairs of rules whose level reads the patient."""
    rng = random.Random(seed)
    kb = engine.kb
    members = _side_members(engine)
    pools = []
    for r in _rules_with_questions(engine):
        sides = []
        for side in (0, 1):
            names = [kb.substances[s].name for s in members[r, side][:8]]
            ids = kernel.encode_line_inputs(LineInput(substance=n) for n in names)
            sides.append([n for n, i in zip(names, ids.tolist(), strict=True) if i])
        if all(sides):
            pools.append(sides)
    assert len(pools) > 25
    common = [name for name, weight in COMMON if weight > 0]
    doses = {"acide acetylsalicylique": (75, 160, 500, 1000, 3000), "cimetidine": (400, 800, 1600)}
    out = []
    for _ in range(count):
        lines = []
        for _ in range(rng.randint(1, 3)):
            side_a, side_b = rng.choice(pools)
            lines += [LineInput(substance=rng.choice(side_a)), LineInput(substance=rng.choice(side_b))]
        lines += [LineInput(substance=n) for n in rng.sample(common, rng.randint(2, 8))]
        for name, values in doses.items():
            if rng.random() < 0.3:
                lines.append(LineInput(substance=name, dose_mg_per_day=rng.choice(values)))
        rng.shuffle(lines)
        out.append(lines)
    return out


def _kernel_rows(kernel: BatchInteractions, hits: PairHits, rows: np.ndarray) -> list[tuple[str, ...]]:
    substances = kernel.kb.substances
    return sorted(
        (
            substances[int(hits.substance_a[i])].name,
            substances[int(hits.substance_b[i])].name,
            str(LEVEL_CODES[int(hits.level[i])]),
            kernel.rules[int(hits.rule[i])].rule_id,
            str(bool(hits.unresolved[i])),
        )
        for i in rows
    )


def _hit_tuples(hits: PairHits, rows: np.ndarray) -> list[tuple[int | bool, ...]]:
    columns = (hits.line_a, hits.line_b, hits.substance_a, hits.substance_b, hits.level, hits.unresolved)
    return sorted((*(c[i].item() for c in columns), int(hits.rule[i])) for i in rows)


def _agree(
    engine: Engine, kernel: BatchInteractions, count: int, seed: int
) -> tuple[PairHits, list[Patient]]:
    batch = _targeted(kernel, engine, count, seed)
    rng = random.Random(seed + 1)
    patients = [_patient(rng) for _ in batch]
    assert len({_facts(p) for p in patients}) > 0.95 * count  # nearly every patient is distinct
    ids = kernel.encode_line_inputs(line for lines in batch for line in lines)
    offsets = np.concatenate([[0], np.cumsum([len(lines) for lines in batch])]).astype(np.int64)
    hits = kernel.run(offsets, ids, patients)
    by_prescription = np.split(np.arange(len(hits)), np.searchsorted(hits.prescription, np.arange(1, count)))
    for p, lines in enumerate(batch):
        rows = by_prescription[p]
        prescription = Prescription(lines=tuple(lines), patient=patients[p])
        assert _kernel_rows(kernel, hits, rows) == _engine_rows(engine, prescription), f"prescription {p}"
        single = kernel.check_lines(ids[offsets[p] : offsets[p + 1]].tolist(), patients[p])
        assert sorted(tuple(hit) for hit in single) == _hit_tuples(hits, rows), f"prescription {p}"
    return hits, patients


def test_kernel_agrees_with_the_engine_for_3000_distinct_patients(engine: Engine) -> None:
    kernel = BatchInteractions(engine.interactions, engine.resolver)
    hits, _ = _agree(engine, kernel, 3000, seed=106)
    # Every level, resolved and unresolved qualifications, and patients on both sides of them.
    assert set(hits.level.tolist()) == {1, 2, 3, 4}
    assert hits.unresolved.any() and not hits.unresolved.all()


def test_a_second_run_reads_the_memo_and_gives_the_same_rows(engine: Engine) -> None:
    kernel = BatchInteractions(engine.interactions, engine.resolver)
    batch = _targeted(kernel, engine, 500, seed=7)
    rng = random.Random(8)
    patients = [_patient(rng) for _ in batch]
    ids = kernel.encode_line_inputs(line for lines in batch for line in lines)
    offsets = np.concatenate([[0], np.cumsum([len(lines) for lines in batch])]).astype(np.int64)
    first = kernel.run(offsets, ids, patients)
    reversed_patients = patients[::-1]
    other = kernel.run(offsets, ids, reversed_patients)  # other pairings of patients and pairs
    again = kernel.run(offsets, ids, patients)
    for name in PairHits.__dataclass_fields__:
        assert np.array_equal(getattr(first, name), getattr(again, name)), name
    fresh = BatchInteractions(engine.interactions, engine.resolver)
    fresh_ids = fresh.encode_line_inputs(line for lines in batch for line in lines)
    from_scratch = fresh.run(offsets, fresh_ids, reversed_patients)
    for name in PairHits.__dataclass_fields__:
        assert np.array_equal(getattr(other, name), getattr(from_scratch, name)), name


def test_a_small_memo_bound_changes_nothing(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qualified_module, "_MEMO_LIMIT", 7)
    monkeypatch.setattr(answers_module, "_ANSWER_LIMIT", 5)  # answers by field value, across batches
    monkeypatch.setattr(qualified_module, "_RECENT_PATIENTS", 3)  # the single-prescription front cache
    monkeypatch.setattr(qualified_module, "_RECENT_LIMIT", 5)
    kernel = BatchInteractions(engine.interactions, engine.resolver)
    _agree(engine, kernel, 400, seed=21)
    _agree(engine, kernel, 400, seed=22)  # a second batch meets answers remembered, then cleared


def test_one_patient_for_all_prescriptions(engine: Engine) -> None:
    """The dense path (one patient, few exposures) against the engine, for a few very different patients."""
    kernel = BatchInteractions(engine.interactions, engine.resolver)
    batch = _targeted(kernel, engine, 300, seed=33)
    ids = kernel.encode_line_inputs(line for lines in batch for line in lines)
    offsets = np.concatenate([[0], np.cumsum([len(lines) for lines in batch])]).astype(np.int64)
    rng = random.Random(34)
    for patient in [Patient(), Patient(age=85, sex="M", conditions=("I50", "K703"), egfr_ml_min=40.0)] + [
        _patient(rng) for _ in range(3)
    ]:
        hits = kernel.run(offsets, ids, patient)
        for p, lines in enumerate(batch):
            rows = np.flatnonzero(hits.prescription == p)
            prescription = Prescription(lines=tuple(lines), patient=patient)
            assert _kernel_rows(kernel, hits, rows) == _engine_rows(engine, prescription), f"prescription {p}"


def test_the_engine_qualifies_a_pair_once_per_answer_not_once_per_patient(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Diltiazem + esmolol reads only the heart-failure history: 400 distinct patients, three outcomes."""
    kernel = BatchInteractions(engine.interactions, engine.resolver)
    ids = kernel.encode_lines(["diltiazem", "esmolol"])
    assert kernel.pair_questions(*ids.tolist()) == (PatientQuestion("conditions", prefixes=("I50",)),)
    assert kernel.pair_questions(*kernel.encode_lines(["amiodarone", "simvastatine"]).tolist()) == ()
    calls = 0
    findings = engine.interactions.findings

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return findings(*args, **kwargs)

    monkeypatch.setattr(kernel.index, "findings", counted)
    rng = random.Random(400)
    patients = [_patient(rng) for _ in range(400)]
    hits = kernel.run(np.arange(0, 801, 2), np.tile(ids, 400), patients)
    assert len({_facts(p) for p in patients}) > 390
    assert calls == 3  # history missing, without I50, with I50
    for p, patient in enumerate(patients):
        expected = _engine_rows(
            engine,
            Prescription(
                lines=(LineInput(substance="diltiazem"), LineInput(substance="esmolol")), patient=patient
            ),
        )
        assert _kernel_rows(kernel, hits, np.flatnonzero(hits.prescription == p)) == expected


class _Columns:
    """Patients as per-field columns (each field's distinct values and a code per patient), as a caller
    that keeps its patients in arrays would give them; counts the Patients it is asked for."""

    def __init__(self, patients: list[Patient]) -> None:
        self._patients = patients
        self._columns: dict[str, tuple[list[PatientValue], I64]] = {}
        for field in get_args(PatientField):
            values, codes = distinct([attrgetter(field)(p) for p in patients])
            self._columns[field] = (values, codes)
        self.reads = 0

    def __len__(self) -> int:
        return len(self._patients)

    def __getitem__(self, index: int) -> Patient:
        self.reads += 1
        return self._patients[index]

    def distinct_values(
        self, field: PatientField, people: np.ndarray
    ) -> tuple[list[PatientValue], np.ndarray]:
        values, codes = self._columns[field]
        used, index = np.unique(codes[people], return_inverse=True)
        return [values[i] for i in used.tolist()], index


def test_patients_as_columns_give_the_rows_of_built_patients(engine: Engine) -> None:
    """The 3000 distinct patients of the agreement test (every field the curation reads) as columns."""
    fresh, warm = (BatchInteractions(engine.interactions, engine.resolver) for _ in range(2))
    batch = _targeted(fresh, engine, 3000, seed=106)
    rng = random.Random(107)
    patients = [_patient(rng) for _ in batch]
    offsets = np.concatenate([[0], np.cumsum([len(lines) for lines in batch])]).astype(np.int64)
    ids = {id(k): k.encode_line_inputs(line for lines in batch for line in lines) for k in (fresh, warm)}
    columns = _Columns(patients)
    assert isinstance(columns, PatientColumns)
    reference = warm.run(offsets, ids[id(warm)], patients)
    # Looked up in a memo filled from the built patients' answers: a wrong answer reads another outcome.
    looked_up = warm.run(offsets, ids[id(warm)], columns)
    assert columns.reads == 0
    before = fresh.qualified_pairs._memo_size
    computed = fresh.run(offsets, ids[id(fresh)], columns)
    # A Patient is read once per (pair, answers) key evaluated, not once per patient.
    assert 0 < columns.reads == fresh.qualified_pairs._memo_size - before
    for name in PairHits.__dataclass_fields__:
        assert np.array_equal(getattr(looked_up, name), getattr(reference, name)), name
        assert np.array_equal(getattr(computed, name), getattr(reference, name)), name


def test_columns_that_do_not_index_their_values_are_refused(engine: Engine) -> None:
    kernel = BatchInteractions(engine.interactions, engine.resolver)
    ids = kernel.encode_lines(["diltiazem", "esmolol"])
    patients = [Patient(conditions=("I50",)), Patient()]

    class Short(_Columns):
        def distinct_values(
            self, field: PatientField, people: np.ndarray
        ) -> tuple[list[PatientValue], np.ndarray]:
            values, index = super().distinct_values(field, people)
            return values[:-1], index

    with pytest.raises(FieldError, match="distinct_values"):
        kernel.run(np.arange(0, 5, 2), np.tile(ids, 2), Short(patients))
    with pytest.raises(FieldError, match="patients"):
        kernel.run(np.arange(0, 7, 2), np.tile(ids, 3), _Columns(patients))


@pytest.mark.parametrize("n_ex", [5, 300, 5000])
def test_exposure_pairs_are_factorized_as_numpy_unique_does(n_ex: int) -> None:
    rng = np.random.default_rng(n_ex)
    for rows in (0, 1, 50, 20_000):
        a, b = rng.integers(0, n_ex, size=(2, rows))
        lo, hi = np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
        pairs, inverse = factorize_pairs(lo, hi, n_ex)
        expected, expected_inverse = np.unique(lo * n_ex + hi, return_inverse=True)
        assert np.array_equal(pairs, expected) and np.array_equal(inverse, expected_inverse)


@pytest.mark.parametrize("bound", [None, 4, 1000, 1 << 20])
def test_values_are_factorized_as_numpy_unique_does(bound: int | None) -> None:
    rng = np.random.default_rng(bound or 1)
    for rows in (0, 1, 50, 20_000):
        values = rng.integers(0, bound or 10**9, size=rows).astype(np.int64)
        for given in (values, np.sort(values)):
            found, inverse = factorize(given, bound)
            expected, expected_inverse = np.unique(given, return_inverse=True)
            assert np.array_equal(found, expected) and np.array_equal(inverse, expected_inverse)
