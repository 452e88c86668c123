"""Outcomes of the exposure pairs whose ANSM rule is qualified, memoised on what the qualification reads.

The level of a pair that meets a qualified rule depends on the patient, but the engine's
qualification (:func:`iatro.checks.qualify.qualify`) reads only a few three-valued questions of
the patient per rule (:func:`iatro.checks.qualify.patient_questions`: a history prefix, the sex, an
age, eGFR or potassium threshold). The outcome of the pair (level, main rule, unresolved) is
therefore a function of the two exposures and of the answers to the questions of the pair's
qualified rules, its *projection* of the patient. Patients who differ only in facts these rules
ignore (most of a screening population, for most pairs) share one evaluation.

An outcome is computed by the engine's own ``InteractionIndex.findings`` on the two exposures and
the first patient met with that projection, then memoised on (exposure, exposure, projection).
Exposures are memoised by *class*: what the engine's qualification reads of them (substance, names,
route, doses; not the ATC codes of the product, the "as needed" flag or the duration), as the
engine's own cache of qualified levels does; products of one substance and dose share outcomes.
A projection packs the answers 2 bits a question (0 missing, 1 false, 2 true), in the order of the
pair's questions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import get_args

import numpy as np
import numpy.typing as npt

from iatro.batch.answers import CODE, Answers
from iatro.batch.factorize import factorize, factorize_pairs
from iatro.batch.hits import I64
from iatro.batch.patients import BuiltPatients, PatientColumns
from iatro.checks.context import CheckContext, Exposure
from iatro.checks.interactions import InteractionIndex
from iatro.checks.qualify import PatientField, PatientQuestion, PatientValue, fields_reader, patient_questions
from iatro.errors import KnowledgeBaseCorrupt
from iatro.kb.thesaurus import LEVEL_RANK
from iatro.model.prescription import Patient

_NO_RULE = -1
# Bounds the memo (a long-running service meets ever new exposures): cleared when full.
_MEMO_LIMIT = 200_000
# Up to this many distinct exposures, one patient's outcomes are cached in a dense (n, n) table.
_DENSE_EXPOSURES = 2048
_DENSE_TABLES = 8
# Front cache of single-prescription checks: the pairs met for the last patients (by their facts),
# cleared when it holds this many patients or outcomes.
_RECENT_PATIENTS = 4096
_RECENT_LIMIT = 200_000
# A pair's projection is packed in one int64: at most 31 questions per pair (2 bits each).
_MAX_PAIR_QUESTIONS = 31

# What the engine's qualification of a pair reads of an exposure (see ``QualifiedPairs._classes``).
_class_key = attrgetter(
    "substance_id", "name", "aliases", "route", "mg_per_intake", "mg_per_day", "intakes_per_day"
)
# Every patient field a question may read, in one tuple: what the front cache is keyed on.
_read_facts = fields_reader(get_args(PatientField))

Signature = tuple[tuple[int, int], ...]
# (questions of the pair as (question id, bit shift), outcomes by projection)
_Entry = tuple[tuple[tuple[int, int], ...], dict[int, "PairOutcome"]]


@dataclass(frozen=True, slots=True)
class PairOutcome:
    """The engine's alert for one pair of exposures and one projection of the patient."""

    level: int  # rank, 0 when every finding of the pair is excluded by the thesaurus text
    rule: int
    unresolved: bool

    @property
    def packed(self) -> int:
        """level | unresolved << 3 | rule << 4, the cell of a dense outcome table."""
        return self.level | (8 if self.unresolved else 0) | (max(self.rule, 0) << 4)


class QualifiedPairs:
    """Memoised outcomes of qualified exposure pairs for any patients.

    ``exposures``, ``exposure_sig`` and ``signatures`` are the kernel's own registries (read, never
    written: the kernel appends as it encodes new lines); ``rule_index`` maps a rule id to its index.
    """

    def __init__(
        self,
        index: InteractionIndex,
        exposures: Sequence[Exposure],
        exposure_sig: Sequence[int],
        signatures: Sequence[Signature],
        rule_index: Mapping[str, int],
    ) -> None:
        self.index = index
        self._exposures = exposures
        self._exposure_sig = exposure_sig
        self._signatures = signatures
        self._rule_index = rule_index
        # Every question the curated qualifications of this edition ask, and each rule's.
        ids: dict[PatientQuestion, int] = {}
        rule_questions: list[frozenset[int]] = []
        for rule in index.rules:
            asked = patient_questions(index.qualifications.get(rule.rule_id))
            rule_questions.append(frozenset(ids.setdefault(q, len(ids)) for q in asked))
        self.questions: tuple[PatientQuestion, ...] = tuple(ids)
        self._rule_questions = tuple(rule_questions)
        self._signature_rules: dict[int, frozenset[int]] = {}
        self._pair_questions: dict[tuple[int, int], tuple[tuple[int, int], ...]] = {}
        # Each registered exposure's class (see the module's docstring) and each class's first exposure.
        self._class_of: list[int] = []
        self._class_ids: dict[Hashable, int] = {}
        self._class_first: list[int] = []
        self._memo: dict[tuple[int, int], _Entry] = {}  # by (class, class)
        self._memo_size = 0
        self._dense: dict[tuple[int, ...], npt.NDArray[np.int32]] = {}
        self._recent: dict[tuple[PatientValue, ...], dict[tuple[int, int], PairOutcome]] = {}
        self._answers = Answers(self.questions)
        self._recent_size = 0
        # Each exposure at line 0 and at line 1, as the engine's evaluation of a pair takes them.
        self._at_line: dict[int, tuple[Exposure, Exposure]] = {}

    # -- what a pair reads of the patient --------------------------------------------------
    def pair_questions(self, a: int, b: int) -> tuple[PatientQuestion, ...]:
        """The questions whose answers decide the outcome of exposures ``a`` and ``b``."""
        return tuple(self.questions[q] for q, _ in self._entry(a, b)[0])

    def _questions_of(self, a: int, b: int) -> tuple[tuple[int, int], ...]:
        """(question id, bit shift) of every question of a rule met by both exposures' signatures.

        A rule met by the two signatures (on any sides) is a superset of the rules the engine pairs
        them through: an extra question only splits the memo finer, never wrongly.
        """
        sig_a, sig_b = self._exposure_sig[a], self._exposure_sig[b]
        key = (sig_a, sig_b) if sig_a <= sig_b else (sig_b, sig_a)
        found = self._pair_questions.get(key)
        if found is None:
            asked: set[int] = set()
            for rule in self._rules_with_questions(sig_a) & self._rules_with_questions(sig_b):
                asked |= self._rule_questions[rule]
            if len(asked) > _MAX_PAIR_QUESTIONS:
                raise KnowledgeBaseCorrupt(
                    f"{len(asked)} patient questions for one pair: the kernel packs at most 31"
                )
            found = self._pair_questions[key] = tuple((q, 2 * k) for k, q in enumerate(sorted(asked)))
        return found

    def _rules_with_questions(self, sig: int) -> frozenset[int]:
        found = self._signature_rules.get(sig)
        if found is None:
            members = self._signatures[sig]
            found = frozenset(rule for rule, _side in members if self._rule_questions[rule])
            self._signature_rules[sig] = found
        return found

    def _classes(self) -> list[int]:
        """Each registered exposure's class, extended to the exposures the kernel registered since.

        A class is what the engine's qualification reads of an exposure: ``InteractionIndex.entries``
        reads the substance, route and index names; ``qualify`` the names, route and doses. The ATC
        codes, the "as needed" flag and the duration are read by neither.
        """
        classes = self._class_of
        for e in range(len(classes), len(self._exposures)):
            key = _class_key(self._exposures[e])
            found = self._class_ids.get(key)
            if found is None:
                found = self._class_ids[key] = len(self._class_first)
                self._class_first.append(e)
            classes.append(found)
        return classes

    def _entry(self, a: int, b: int) -> _Entry:
        classes = self._classes()
        return self._class_entry(classes[a], classes[b])

    def _class_entry(self, a: int, b: int) -> _Entry:
        """The memo entry of classes ``a`` and ``b`` (in that order: the first is at line 0)."""
        found = self._memo.get((a, b))
        if found is None:
            questions = self._questions_of(self._class_first[a], self._class_first[b])
            found = self._memo[a, b] = (questions, {})
        return found

    # -- one patient -----------------------------------------------------------------------
    def outcome(
        self,
        a: int,
        b: int,
        patient: Patient,
        answers: list[int] | None = None,
        recent: dict[tuple[int, int], PairOutcome] | None = None,
    ) -> PairOutcome:
        """The outcome of exposures ``a <= b`` for ``patient``.

        ``answers`` (one slot per question, -1 while not asked) carries the patient's answers from
        one call to the next, so that a prescription asks each question once; the outcome is also
        kept in ``recent``, the patient's front cache (:meth:`recent`), when given.
        """
        classes = self._class_of
        if a >= len(classes) or b >= len(classes):
            classes = self._classes()
        questions, by_projection = self._memo.get((classes[a], classes[b])) or self._entry(a, b)
        projection = 0
        if questions:
            if answers is None:
                answers = self.new_answers()
            for q, shift in questions:
                code = answers[q]
                if code < 0:
                    code = answers[q] = CODE[self.questions[q].answer(patient)]
                projection |= code << shift
        found = by_projection.get(projection)
        if found is None:
            found = self._remember(by_projection, projection, self._evaluate(a, b, patient))
        if recent is not None:
            if self._recent_size >= _RECENT_LIMIT:
                self._recent.clear()  # ``recent`` itself stays valid for the caller, then is dropped
                self._recent_size = 0
            recent[a, b] = found
            self._recent_size += 1
        return found

    def recent(self, patient: Patient) -> dict[tuple[int, int], PairOutcome]:
        """Outcomes already met for a patient with exactly these facts, by exposure pair (a <= b).

        A front cache for single prescriptions, where the same patient (or none) comes back again
        and again: one dict lookup a pair. Filled by :meth:`outcome` (its ``recent`` argument).
        """
        facts = _read_facts(patient)
        found = self._recent.get(facts)
        if found is None:
            if len(self._recent) >= _RECENT_PATIENTS:
                self._recent.clear()
                self._recent_size = 0
            found = self._recent[facts] = {}
        return found

    def new_answers(self) -> list[int]:
        """Empty answer slots for :meth:`outcome`: one per question, none asked yet."""
        return [-1] * len(self.questions)

    def dense(self, patient: Patient) -> npt.NDArray[np.int32] | None:
        """Packed outcomes of exposure pairs for one patient, dense while the exposures are few.

        A batch without per-prescription patients (or with one patient for all) meets a few hundred
        distinct exposures at most: the outcome of a pair is then one gather, filled on first use
        (-1: not yet computed). Shared by the patients who answer every question alike.
        """
        n = len(self._exposures)
        if n > _DENSE_EXPOSURES:
            return None
        key = tuple(CODE[q.answer(patient)] for q in self.questions)
        table = self._dense.get(key)
        if table is None or len(table) < n:
            size = 64
            while size < n:
                size *= 2
            grown = np.full((size, size), -1, dtype=np.int32)
            if table is not None:
                grown[: len(table), : len(table)] = table
            if len(self._dense) >= _DENSE_TABLES and key not in self._dense:
                self._dense.clear()
            table = self._dense[key] = grown
        return table

    # -- many patients ---------------------------------------------------------------------
    def many(
        self, lo: I64, hi: I64, person: I64, patients: Sequence[Patient] | PatientColumns
    ) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int32], npt.NDArray[np.bool_]]:
        """Outcomes of the pairs ``lo[i] <= hi[i]`` for the patients ``patients[person[i]]``.

        Vectorised in three steps: the distinct exposure pairs and their questions; each needed
        patient's answers (one column per question, computed once per distinct field value); each
        row's projection. Only the distinct (pair, projection) keys reach Python, and a patient is
        read as a ``Patient`` only for a key never met before (``patients`` as columns: built then).
        """
        columns = patients if isinstance(patients, PatientColumns) else BuiltPatients(patients)
        classes = np.array(self._classes(), dtype=np.int64)
        n_classes = max(len(self._class_first), 1)
        pairs, pair_of_row = factorize_pairs(classes[lo], classes[hi], n_classes)
        first_class, second_class = np.divmod(pairs, n_classes)
        entries = [
            self._class_entry(a, b) for a, b in zip(first_class.tolist(), second_class.tolist(), strict=True)
        ]
        groups: dict[tuple[tuple[int, int], ...], int] = {}
        group_of_pair = np.fromiter(
            (groups.setdefault(questions, len(groups)) for questions, _ in entries),
            dtype=np.int64,
            count=len(entries),
        )
        projection = np.zeros(len(lo), dtype=np.int64)
        asked = sorted({q for questions in groups for q, _ in questions})
        if asked:
            people, person_of_row = factorize(person)
            answers = self._answers.columns(columns, people, asked)
            group_of_row = group_of_pair[pair_of_row]
            for questions, group in groups.items():
                if not questions:
                    continue
                rows = np.flatnonzero(group_of_row == group)
                who = person_of_row[rows]
                packed = np.zeros(len(rows), dtype=np.int64)
                for q, shift in questions:
                    packed |= answers[q][who] << shift
                projection[rows] = packed
        # One key per (pair, projection), in (pair, projection) order; the row of its first occurrence.
        bits = 2 * max(len(questions) for questions in groups)
        projections, projection_of_row = factorize(projection, 1 << bits if bits <= 20 else None)
        key = pair_of_row.astype(np.int64) * len(projections) + projection_of_row
        keys, inverse = factorize(key, len(pairs) * len(projections))
        first_row = np.full(len(keys), len(key), dtype=np.int64)
        np.minimum.at(first_row, inverse, np.arange(len(key), dtype=np.int64))
        rows_pair = pair_of_row[first_row].tolist()
        rows_projection = projection[first_row].tolist()
        outcomes: list[PairOutcome] = []
        for k, row in enumerate(first_row.tolist()):
            by_projection = entries[rows_pair[k]][1]
            found = by_projection.get(rows_projection[k])
            if found is None:
                a, b = int(lo[row]), int(hi[row])
                outcome = self._evaluate(a, b, columns[int(person[row])])
                found = self._remember(by_projection, rows_projection[k], outcome)
            outcomes.append(found)
        n = len(outcomes)
        levels = np.fromiter((o.level for o in outcomes), dtype=np.int8, count=n)
        rules = np.fromiter((o.rule for o in outcomes), dtype=np.int32, count=n)
        unresolved = np.fromiter((o.unresolved for o in outcomes), dtype=np.bool_, count=n)
        return levels[inverse], rules[inverse], unresolved[inverse]

    # -- the engine's own evaluation -------------------------------------------------------
    def _remember(
        self, by_projection: dict[int, PairOutcome], projection: int, outcome: PairOutcome
    ) -> PairOutcome:
        if self._memo_size >= _MEMO_LIMIT:
            self._memo.clear()  # entries held by a caller stay valid; they are just forgotten
            self._memo_size = 0
        by_projection[projection] = outcome
        self._memo_size += 1
        return outcome

    def _evaluate(self, a: int, b: int, patient: Patient) -> PairOutcome:
        """The engine's alert for exposures ``a`` (line 0) and ``b`` (line 1) and this patient."""
        exposures = (self._exposure_at(a)[0], self._exposure_at(b)[1])
        pairs = self.index.findings(CheckContext(exposures=exposures, patient=patient))
        found = PairOutcome(0, _NO_RULE, False)
        for findings in pairs.values():
            ranked = [(LEVEL_RANK[f.level.level], f.rule.rule_id) for f in findings if f.level.level]
            rank, rule_id = min(ranked, key=lambda item: (-item[0], item[1]))
            found = PairOutcome(
                level=rank,
                rule=self._rule_index[rule_id],
                unresolved=any(f.level.unresolved_conditions for f in findings),
            )
        return found

    def _exposure_at(self, e: int) -> tuple[Exposure, Exposure]:
        found = self._at_line.get(e)
        if found is None:
            exposure = self._exposures[e]
            if len(self._at_line) >= _MEMO_LIMIT:
                self._at_line.clear()
            found = self._at_line[e] = (
                exposure if exposure.line == 0 else dataclasses.replace(exposure, line=0),
                dataclasses.replace(exposure, line=1),
            )
        return found
