"""Issue 10: the interaction kernel reads the screening's patients as columns, not as built Patients.

``screening.checks.Patients`` gives the kernel the distinct values of each patient field its
questions read straight from the claims facts (``PatientColumns.distinct_values``); a contract
``Patient`` is built only for the (pair, answers) keys the kernel evaluates. These tests hold the
columns to the contract on real synthetic chunks made messy (codes of three kinds, unknown codes,
implausible and young ages, disagreeing and coded sexes, lower-case, dotted, invalid and several
CIM-10 texts a patient):

* for every field a question may read, the columnar value of each patient is the value the built
  contract ``Patient`` holds (same value, same type), the values are distinct, on every patient and
  on a subset;
* the kernel's rows are identical with columns and with built Patients, chunk after chunk, with a
  memo filled from the built Patients' answers (a wrong answer would read another outcome) and
  from scratch; the chunks reach questions on every field (some patients get pairs whose level reads
  the sex or an age). On claims no outcome turns on an age (the rules that read it also read a dose
  claims lack): the ages are held by the first comparison;
* the kernel and STOPP/START read a patient only to evaluate a key they have not met.
"""

from __future__ import annotations

import datetime as dt
from operator import attrgetter
from typing import Any, get_args

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from benchmarks.claims_generator import END
from iatro.analysis import Engine
from iatro.batch import BatchInteractions, PairHits, PatientColumns
from iatro.batch.hits import I64
from iatro.checks.qualify import PatientField, PatientValue
from iatro.kb.store import KnowledgeBase
from iatro.model.prescription import Patient
from screening.batch import Screener
from screening.checks import PatientKey, Patients
from screening.criteria import Criteria
from screening.derive import Derived, derive
from tests.screening.conftest import generated

# CIM-10 texts as extracts write them: lower case, dots, odd separators and spaces, codes the contract
# refuses (XYZ, I5O with a letter O), sub-codes of the prefixes the interaction curation reads
# (ulcer K25-K28, heart failure I50, coronary I20.0/I21, hepatic K70.3/K74.6, sickle cell D57.0),
# near misses of them (I20, K70, D57), empty texts.
MESSY_CIM10 = (
    "i10; E11.9", "e119,I48 ", "XYZ;I10", "K25.0 K703", "", "I10;;N18.4", "K27.4;I50.1", "D57.0",
    "I20.0;I21", "K7030", "A1.2345", "k746", "I5O", "  ", "D57", "I20", "K70;N18", "i50", "I20.0",
    "k70.3;I10", "I50.9",
)  # fmt: skip
ODD_AGES = (None, -4, 0, 17, 18, 64, 65, 129, 130, 131, 200)
SEX_CODES = ("F", "M", "1", "2", "f", "m", " ", None)
# Pairs whose ANSM qualification reads the sex (cyproterone + enzyme inducers: men) or an age (sodium
# polystyrene sulfonate + sorbitol: adults; aspirin + preventive heparins: 65 and over), which the
# generator's drugs do not reach: given to some patients so that every claims field is asked.
REACHING = (
    ("cyproterone", "carbamazepine"),
    ("polystyrene sulfonate de sodium", "sorbitol"),
    ("acide acetylsalicylique", "enoxaparine"),
)


def _cis(kb: KnowledgeBase, name: str) -> str:
    """The first marketed single-substance product of a substance."""
    ids = {s.id for s in kb.find_substances(name)}
    marketed = {c.product_id for c in kb.presentations if c.marketed}
    return min(
        p.cis
        for p in kb.products
        if p.id in marketed and len(p.components) == 1 and p.components[0].substance_id in ids
    )


def _replaced(table: pa.Table, column: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.column_names.index(column), column, values)


def _messy(kb: KnowledgeBase, patients: int, seed: int) -> pa.Table:
    """Seeded synthetic claims (mixed codes, unknown codes), with odd facts on some patients and rows."""
    table = generated(kb, patients, seed=seed, codes="mixed", unknown=0.03)
    rng = np.random.default_rng(seed)
    # A quarter of the patients also get one of the REACHING pairs, dispensed three days before the end.
    pid = table["patient_id"].combine_chunks()
    first_rows = np.flatnonzero(np.r_[True, np.asarray(pc.not_equal(pid[1:], pid[:-1]))])
    chosen = pa.array(first_rows[rng.random(len(first_rows)) < 0.25])
    pairs = rng.integers(0, len(REACHING), size=len(chosen)).tolist()
    for side in (0, 1):
        extra = _replaced(table.take(chosen), "cis", pa.array([_cis(kb, REACHING[k][side]) for k in pairs]))
        extra = _replaced(extra, "cip13", pa.nulls(len(chosen), pa.string()))
        extra = _replaced(extra, "atc", pa.nulls(len(chosen), pa.string()))
        extra = _replaced(extra, "date", pa.array([END - dt.timedelta(days=3)] * len(chosen), pa.date32()))
        table = pa.concat_tables([table, extra])
    ids = table["patient_id"].combine_chunks().dictionary_encode()
    patient = np.asarray(ids.indices.to_numpy(zero_copy_only=False), dtype=np.int64)

    def per_patient(column: str, choices: tuple[object, ...], share: float) -> list[object]:
        """The column with one of ``choices`` on every row of a ``share`` of the patients."""
        values: list[object] = table[column].to_pylist()
        choice = rng.integers(0, len(choices), size=len(ids.dictionary))
        override = rng.random(len(ids.dictionary)) < share
        for r in np.flatnonzero(override[patient]).tolist():
            values[r] = choices[choice[patient[r]]]
        return values

    ages = per_patient("age", ODD_AGES, 0.2)
    sexes = per_patient("sex", SEX_CODES, 0.12)
    cim10 = per_patient("cim10", MESSY_CIM10, 0.25)
    for r in np.flatnonzero(rng.random(table.num_rows) < 0.03).tolist():  # rows that disagree
        cim10[r] = MESSY_CIM10[int(rng.integers(0, len(MESSY_CIM10)))]
        sexes[r] = {"F": "M", "M": "F"}.get(str(sexes[r]), sexes[r])
    table = _replaced(table, "age", pa.array(ages, pa.int16()))
    table = _replaced(table, "sex", pa.array(sexes, pa.string()))
    return _replaced(table, "cim10", pa.array(cim10, pa.string()))


class CountedPatients(Patients):
    """The screening's patients, counting the Patients read one by one."""

    def __init__(self, derived: Derived) -> None:
        self.memo: dict[PatientKey, Patient] = {}
        super().__init__(derived.facts, self.memo)
        self.reads = 0
        self.fields: set[str] = set()

    def __getitem__(self, index: Any) -> Any:
        self.reads += 1
        return super().__getitem__(index)

    def distinct_values(self, field: PatientField, people: I64) -> tuple[list[PatientValue], I64]:
        self.fields.add(field)
        return super().distinct_values(field, people)


@pytest.fixture(scope="module")
def chunks(kb: KnowledgeBase, screener: Screener) -> list[Derived]:
    return [derive(_messy(kb, 2500, seed), screener.options, screener.catalog) for seed in (101, 102)]


def _built(derived: Derived) -> list[Patient]:
    """The contract patient of each patient's facts, built independently of ``Patients``."""
    return [derived.facts.context(p).patient() for p in range(len(derived.patient_ids))]


@pytest.mark.slow
def test_the_chunks_are_messy(chunks: list[Derived]) -> None:
    built = [p for derived in chunks for p in _built(derived)]
    ages = {p.age for p in built}
    assert None in ages and {17, 18, 64, 65, 130} <= ages and max(a for a in ages if a) <= 130
    assert {p.sex for p in built} == {None, "F", "M"}
    conditions = {c for p in built for c in p.conditions}
    normalised = {"E119", "N184", "K250", "K703", "K274", "I501", "D570", "I200", "K746", "I50", "A12345"}
    assert normalised <= conditions and not any("." in c or c != c.upper() for c in conditions)
    assert any(not p.conditions for p in built)
    assert all(int(d.facts.invalid_conditions.max()) > 0 for d in chunks)
    assert max(len(p.conditions) for p in built) >= 4


@pytest.mark.slow
def test_columns_hold_what_the_built_patient_holds(chunks: list[Derived]) -> None:
    rng = np.random.default_rng(5)
    for derived in chunks:
        columns = Patients(derived.facts, {})
        assert isinstance(columns, PatientColumns)
        built = _built(derived)
        everyone = np.arange(len(built), dtype=np.int64)
        subset = np.sort(rng.choice(len(built), size=len(built) // 3, replace=False)).astype(np.int64)
        for field in get_args(PatientField):
            read = attrgetter(field)
            for people in (everyone, subset, everyone[:0]):
                values, value_of_person = columns.distinct_values(field, people)
                assert len(value_of_person) == len(people)
                assert len(set(values)) == len(values), field
                got = [values[i] for i in value_of_person.tolist()]
                expected = [read(built[p]) for p in people.tolist()]
                assert got == expected, field
                assert [type(v) for v in got] == [type(v) for v in expected], field


def _same(hits: PairHits, reference: PairHits) -> None:
    for name in PairHits.__dataclass_fields__:
        assert np.array_equal(getattr(hits, name), getattr(reference, name)), name


@pytest.mark.slow
def test_the_kernel_gives_the_same_rows_with_columns_and_with_built_patients(
    engine: Engine, screener: Screener, chunks: list[Derived]
) -> None:
    """Two kernels, chunk after chunk: ``fresh`` only ever reads columns; ``warm`` first runs the chunk
    on built Patients, then on columns. A fresh kernel evaluates each key on a real Patient, so it
    would not notice columns that merely relabel the answers; the warm one looks the columns' keys up
    in a memo filled from the true answers, so any wrong answer reads another outcome."""
    fresh, warm = (BatchInteractions(engine.interactions, engine.resolver) for _ in range(2))
    lines = screener.catalog.lines
    inputs = [line.input for line in lines]
    ids = {
        id(kernel): np.array(
            [int(kernel.encode_line_inputs([i])[0]) if i is not None else 0 for i in inputs], dtype=np.int32
        )
        for kernel in (fresh, warm)
    }
    for derived in chunks:
        offsets = derived.offsets
        built = _built(derived)
        reference = warm.run(offsets, ids[id(warm)][derived.line_ids], built)
        _same(warm.run(offsets, ids[id(warm)][derived.line_ids], Patients(derived.facts, {})), reference)
        columns = CountedPatients(derived)
        before = fresh.qualified_pairs._memo_size
        _same(fresh.run(offsets, ids[id(fresh)][derived.line_ids], columns), reference)
        # A Patient is read once per (pair, answers) key the kernel had not met, and only then.
        assert columns.reads == fresh.qualified_pairs._memo_size - before
        assert columns.reads > 0 and len(columns.memo) <= columns.reads
        assert columns.fields == set(get_args(PatientField))  # every field the curation reads was asked
        # The patients matter here: without them, other levels (the chunk reaches qualified rules).
        blind = fresh.run(offsets, ids[id(fresh)][derived.line_ids], None)
        assert len(blind) != len(reference) or not np.array_equal(blind.level, reference.level)
        again = CountedPatients(derived)
        _same(fresh.run(offsets, ids[id(fresh)][derived.line_ids], again), reference)
        assert again.reads == 0


@pytest.mark.slow
def test_stopp_start_reads_a_patient_only_for_a_key_never_evaluated(
    engine: Engine, screener: Screener, chunks: list[Derived]
) -> None:
    criteria = Criteria(engine, screener.catalog)
    for derived in chunks:
        facts = derived.facts
        unresolved = np.zeros(len(derived.patient_ids), dtype=np.bool_)
        arguments = (derived.offsets, derived.line_ids, unresolved, facts.age, facts.sex)
        for round_ in range(2):
            patients = CountedPatients(derived)
            memo = criteria.patients_read
            criteria.run_facts(*arguments, facts.conditions, facts.condition_sets, patients)
            assert patients.reads == criteria.patients_read - memo
            if round_:
                assert patients.reads == 0
