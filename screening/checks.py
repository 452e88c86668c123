"""Per-patient checks of a whole chunk at once, with the engine's own rules, from per-line arrays.

Each count equals what ``iatro.analysis.Engine.analyze`` reports for the same patient given as a
contract prescription (the agreement test in ``tests/screening`` runs the engine on a sample):

- ANSM interactions: counted by the engine's batch kernel (:mod:`iatro.batch.interactions`) from
  the same lines, in :mod:`screening.batch`.
- STOPP/START: in :mod:`screening.criteria`.
- ACB, Tisdale QT and eligibility: the per-line results of the engine's checks (:mod:`screening.lines`,
  as arrays in :mod:`screening.line_arrays`) combined over each patient's lines with the rules those
  checks apply to a whole list: a substance counts once (ACB: its highest points; Tisdale: a sure QT
  drug outranks a possible one; BPM: a chronic molecule outranks one without duration, which outranks
  a short one), three-valued factors, closed-world diagnoses.

Three-valued answers are int8 arrays coded so that AND is the minimum and OR the maximum:
``FALSE`` < ``UNKNOWN`` < ``TRUE`` (the engine's ``all_true`` / ``any_true``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import overload

import numpy as np
import numpy.typing as npt

from iatro.analysis import Engine
from iatro.batch.factorize import dense_factorize
from iatro.batch.patients import distinct
from iatro.checks.eligibility import CHRONIC_DAYS, TOWN_DOOR, BpmRule, EligibilityCheck
from iatro.checks.qt import (
    ConditionFactor,
    DrugAtcFactor,
    PatientValueFactor,
    QtCheck,
    QtDrugCountFactor,
    SexFactor,
)
from iatro.checks.qualify import PatientField, PatientValue
from iatro.errors import KnowledgeBaseCorrupt
from iatro.model.prescription import Patient
from screening.derive import SEXES, UNKNOWN_AGE, UNKNOWN_ALD, Context, PatientFacts
from screening.line_arrays import NO_DURATION, LineArrays
from screening.lines import engine_check
from screening.segments import expand, least_per_pair, owners, segment_reduce, segment_sum

MEMO_LIMIT = 50_000  # entries per memo; beyond, the memo is emptied (bounded memory, refilled on demand)
FALSE, UNKNOWN, TRUE = 0, 1, 2
Truths = npt.NDArray[np.int8]
I64 = npt.NDArray[np.int64]
_COMPARE: dict[str, np.ufunc] = {
    ">=": np.greater_equal,
    ">": np.greater,
    "<=": np.less_equal,
    "<": np.less,
}


def truths(met: npt.NDArray[np.bool_], known: npt.NDArray[np.bool_] | bool = True) -> Truths:
    """TRUE / FALSE where ``known``, UNKNOWN elsewhere."""
    return np.where(known, np.where(met, TRUE, FALSE), UNKNOWN).astype(np.int8)


@dataclass(frozen=True, slots=True)
class Chunk:
    """What the checks read of a chunk: each patient's lines (CSR over catalog ids) and facts."""

    lines: LineArrays
    offsets: I64  # patient p's lines are line_ids[offsets[p]:offsets[p + 1]]
    line_ids: npt.NDArray[np.int32]
    facts: PatientFacts

    @property
    def size(self) -> int:
        return len(self.offsets) - 1

    def count(self, per_line: npt.NDArray[np.bool_]) -> I64:
        """How many of each patient's lines have a per-line flag."""
        return segment_sum(per_line[self.line_ids], self.offsets)

    def entries(self, line_offsets: I64) -> tuple[I64, I64]:
        """The entries of every patient's lines in a per-line CSR: (patient, entry index)."""
        position, entry = expand(self.line_ids, line_offsets)
        return owners(self.offsets)[position], entry


PatientKey = tuple[int, int, int, tuple[str, ...]]  # age, sex and ALD codes, CIM-10 codes


class Patients(Sequence[Patient]):
    """The contract ``Patient`` of each patient of a chunk, built when first read, shared by equal facts.

    ``memo`` outlives the chunk (one per screener), keyed by the facts' codes and the condition set.

    Also the chunk's patients as columns for the interaction kernel
    (:class:`iatro.batch.patients.PatientColumns`): :meth:`distinct_values` reads the facts' arrays, so
    the kernel builds a ``Patient`` only for the pairs it evaluates.
    """

    def __init__(
        self, facts: PatientFacts, memo: dict[tuple[int, int, int, tuple[str, ...]], Patient]
    ) -> None:
        self._facts = facts
        self._memo = memo
        self._n = len(facts.age)

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> Patient: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Patient]: ...
    def __getitem__(self, index: int | slice) -> Patient | Sequence[Patient]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._n))]
        if not -self._n <= index < self._n:
            raise IndexError(index)
        facts = self._facts
        key = (
            int(facts.age[index]),
            int(facts.sex[index]),
            int(facts.ald[index]),
            facts.condition_set(index),
        )
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
            found = self._memo[key] = facts.context(index).patient()
        return found

    def distinct_values(self, field: PatientField, people: I64) -> tuple[list[PatientValue], I64]:
        """The distinct values of ``field`` among ``people``, as ``self[p]`` holds them, and each
        person's index among them (see ``PatientColumns``).

        What :meth:`PatientFacts.context` gives the contract: an age (negative: None), a sex, the
        condition set (codes already in the contract's normal form, sorted, each once: what
        ``Patient.conditions`` keeps of them), and None for what claims never carry (eGFR, labs).
        """
        facts = self._facts
        if field in _NOT_IN_CLAIMS:
            return [attrgetter(field)(_NO_FACTS)], np.zeros(len(people), dtype=np.int64)
        if field == "conditions":
            used, value_of_person = _codes(facts.conditions[people], len(facts.condition_sets))
            sets = facts.condition_sets
            # Distinct ids are distinct sets when the facts intern them (derive does): merged, not assumed.
            values, merged = distinct([sets[i] for i in used.tolist()])
            return list(values), merged[value_of_person]
        if field == "sex":
            used, value_of_person = _codes(facts.sex[people], len(SEXES))
            return [SEXES[s] for s in used.tolist()], value_of_person
        if field == "age":
            # Ages are -1 (unknown) or 0..130 (derive keeps plausible ones): shifted to index from 0.
            used, value_of_person = _codes(facts.age[people] + 1, 132)
            return [None if a <= 0 else a - 1 for a in used.tolist()], value_of_person
        # A field the curation reads that this class does not know: refuse rather than answer wrongly.
        raise KnowledgeBaseCorrupt(f"an interaction qualification reads {field!r}, unknown to claims facts")


def _codes(codes: npt.NDArray[np.integer], bound: int) -> tuple[I64, I64]:
    """The distinct codes (ascending) and each item's index among them, as ``np.unique(...,
    return_inverse=True)``; without a sort when every code is in ``0..bound - 1``."""
    if not len(codes) or codes.min() < 0 or codes.max() >= bound:
        used, inverse = np.unique(codes, return_inverse=True)
        return used.astype(np.int64), inverse.astype(np.int64)
    return dense_factorize(codes, bound)


# Patient fields claims never give: every built Patient holds what a patient without facts holds.
_NOT_IN_CLAIMS = frozenset({"egfr_ml_min", "labs.potassium_mmol_l"})
_NO_FACTS = Context(None, None, (), None).patient()


def acb_totals(chunk: Chunk) -> I64:
    """Each patient's ACB total: every rated substance name once, with its highest points."""
    line_offsets, name, points = chunk.lines.acb
    patient, entry = chunk.entries(line_offsets)
    if not len(entry):
        return np.zeros(chunk.size, dtype=np.int64)
    top = int(points.max()) + 1
    # Least of (top - points) is the highest points.
    owner, _, least = least_per_pair(
        patient, name[entry], top - 1 - points[entry], len(chunk.lines.acb_names), top
    )
    return np.bincount(owner, weights=top - 1 - least, minlength=chunk.size).astype(np.int64)


@dataclass(frozen=True, slots=True)
class QtColumns:
    level: I64  # index into Tisdale.levels
    score: I64
    max_possible: I64


class Tisdale:
    """The engine's Tisdale factors over each whole list, from per-line QT drug and drug-class features."""

    def __init__(self, engine: Engine) -> None:
        self.table = engine_check(engine, "qt", QtCheck).table
        self.drug_class_factors = tuple(f.id for f in self.table.factors if isinstance(f, DrugAtcFactor))
        for factor in self.table.factors:
            if not isinstance(
                factor, PatientValueFactor | SexFactor | ConditionFactor | DrugAtcFactor | QtDrugCountFactor
            ):  # a factor kind this module does not know: refuse rather than under-score
                raise KnowledgeBaseCorrupt(f"unknown Tisdale factor kind {type(factor).__name__}")
        self.levels = tuple(dict.fromkeys(band.level for band in self.table.levels))
        # The level of every possible score, as an index into levels.
        self._level_at = np.array(
            [self.levels.index(self.table.level_of(s)) for s in range(self.table.max_score + 1)],
            dtype=np.int64,
        )
        # A condition set -> which condition factors it meets, as bits in the order of ``_conditions``.
        self._conditions = tuple(f.cim10 for f in self.table.factors if isinstance(f, ConditionFactor))
        self._condition_memo: dict[tuple[str, ...], int] = {}

    def run(self, chunk: Chunk, unresolved: I64) -> QtColumns:
        facts = chunk.facts
        n = chunk.size
        sure, maybe = self._qt_drugs(chunk)
        drug_classes = segment_reduce(np.bitwise_or, chunk.lines.qt_factors[chunk.line_ids], chunk.offsets, 0)
        score = np.zeros(n, dtype=np.int64)
        unknown = np.zeros(n, dtype=np.int64)
        condition_bits = np.fromiter(
            map(self._condition_bits, facts.condition_sets), dtype=np.int64, count=len(facts.condition_sets)
        )[facts.conditions]
        for factor in self.table.factors:
            met: Truths
            if isinstance(factor, PatientValueFactor):
                met = self._patient_value(factor, facts)
            elif isinstance(factor, SexFactor):
                met = truths(facts.sex == SEXES.index(factor.equals), facts.sex != 0)
            elif isinstance(factor, ConditionFactor):
                bit = 1 << self._conditions.index(factor.cim10)
                met = truths((condition_bits & bit) != 0)
            elif isinstance(factor, DrugAtcFactor):
                has = (drug_classes & chunk.lines.qt_factor_bit[factor.id]) != 0
                met = truths(has, has | (unresolved == 0))
            else:
                assert isinstance(factor, QtDrugCountFactor)  # kinds checked in __init__
                enough = sure >= factor.min_count
                met = truths(enough, enough | (sure + maybe + unresolved < factor.min_count))
            score += np.where(met == TRUE, factor.points, 0)
            unknown += np.where(met == UNKNOWN, factor.points, 0)
        return QtColumns(self._level_at[score], score, score + unknown)

    def _qt_drugs(self, chunk: Chunk) -> tuple[I64, I64]:
        """Per patient: distinct sure QT drugs, and distinct possible ones that are not sure."""
        line_offsets, substance, only_maybe = chunk.lines.qt
        patient, entry = chunk.entries(line_offsets)
        if not len(entry):
            zero = np.zeros(chunk.size, dtype=np.int64)
            return zero, zero
        bound = int(substance.max()) + 1
        owner, _, kind = least_per_pair(patient, substance[entry], only_maybe[entry], bound, 2)
        sure = np.bincount(owner[kind == 0], minlength=chunk.size)
        maybe = np.bincount(owner[kind == 1], minlength=chunk.size)
        return sure.astype(np.int64), maybe.astype(np.int64)

    @staticmethod
    def _patient_value(factor: PatientValueFactor, facts: PatientFacts) -> Truths:
        compare = _COMPARE[factor.comparator]
        if factor.field == "age":
            met = np.asarray(compare(facts.age.astype(np.float64), factor.threshold), dtype=bool)
            return truths(met, facts.age != UNKNOWN_AGE)
        # Claims give no other patient value: read it as the engine does on such a patient (absent).
        value: object = Context(None, None, (), None).patient()
        for part in factor.field.split("."):
            value = getattr(value, part)
        n = len(facts.age)
        if not isinstance(value, int | float):
            return np.full(n, UNKNOWN, dtype=np.int8)
        return np.full(n, TRUE if compare(float(value), factor.threshold) else FALSE, dtype=np.int8)

    def _condition_bits(self, codes: tuple[str, ...]) -> int:
        """Bit k set when one of ``codes`` starts with a prefix of the k-th condition factor."""
        found = self._condition_memo.get(codes)
        if found is None:
            if len(self._condition_memo) >= MEMO_LIMIT:
                self._condition_memo.clear()
            found = sum(
                1 << k
                for k, prefixes in enumerate(self._conditions)
                if any(code.startswith(prefixes) for code in codes)
            )
            self._condition_memo[codes] = found
        return found


@dataclass(frozen=True, slots=True)
class EligibilityColumns:
    town_door: Truths
    iatroprev: Truths
    optimedoc: Truths
    bpm: Truths


class Eligibility:
    """Iatroprev/Optimedoc town door and BPM as the engine's eligibility check decides them."""

    def __init__(self, engine: Engine) -> None:
        self.bpm: BpmRule = engine_check(engine, "eligibility", EligibilityCheck).bpm

    def run(self, chunk: Chunk, unresolved: I64) -> EligibilityColumns:
        facts = chunk.facts
        known_age = facts.age != UNKNOWN_AGE
        n_lines = chunk.count(chunk.lines.counts_as_line)
        old_enough = truths(facts.age >= TOWN_DOOR.age_min, known_age)
        town = np.minimum(old_enough, truths(n_lines >= TOWN_DOOR.min_drug_lines))
        # Claims carry no hospital context: the hospital door is "not assessed", i.e. False.
        iatroprev = np.maximum(town, FALSE).astype(np.int8)
        chronic, molecules = self._molecules(chunk)
        ald = truths(facts.ald == 1, facts.ald != UNKNOWN_ALD)
        bpm = np.full(chunk.size, FALSE, dtype=np.int8)  # OR over no alternative
        for alt in self.bpm.alternatives:
            parts = truths(facts.age >= alt.age_min, known_age)
            if alt.requires_ald:
                parts = np.minimum(parts, ald)
            if alt.min_chronic_molecules is not None:
                needed = alt.min_chronic_molecules
                enough = np.full(chunk.size, UNKNOWN, dtype=np.int8)
                enough[molecules + unresolved < needed] = FALSE
                enough[chronic >= needed] = TRUE
                parts = np.minimum(parts, enough)
            bpm = np.maximum(bpm, parts)
        return EligibilityColumns(town, iatroprev, iatroprev, bpm)

    @staticmethod
    def _molecules(chunk: Chunk) -> tuple[I64, I64]:
        """Per patient: distinct molecules given for >= 6 months, and distinct molecules in all."""
        line_offsets, substance, days = chunk.lines.molecules
        patient, entry = chunk.entries(line_offsets)
        if not len(entry):
            zero = np.zeros(chunk.size, dtype=np.int64)
            return zero, zero
        # 0: long-term; 1: no duration; 2: shorter. A molecule is long-term when any line says so.
        duration = days[entry]
        kind = np.where(duration == NO_DURATION, 1, np.where(duration >= CHRONIC_DAYS, 0, 2))
        bound = int(substance.max()) + 1
        owner, _, least = least_per_pair(patient, substance[entry], kind, bound, 3)
        chronic = np.bincount(owner[least == 0], minlength=chunk.size).astype(np.int64)
        return chronic, np.bincount(owner, minlength=chunk.size).astype(np.int64)
