"""ANSM interactions over many prescriptions at once: the batch kernel of the interaction check.

Interface (stable; helper code such as population screening builds on it)::

    kernel = BatchInteractions(engine.interactions, engine.resolver)   # or BatchInteractions.from_kb(kb)
    ids = kernel.encode_lines(["amiodarone", "simvastatine", "paracetamol"])   # kind="substance"
    ids = kernel.encode_lines(["64607301"], kind="cis")                       # or "cip13", "text"
    ids = kernel.encode_line_inputs([LineInput(substance="acide acetylsalicylique", dose_mg_per_day=75)])
    ids = kernel.encode_exposures([exposures])       # a line resolved already: build_exposures, line 0
    offsets = np.array([0, 2, 3])                     # CSR: prescription p has lines offsets[p]:offsets[p+1]
    hits = kernel.run(offsets, ids, patients=None)    # PairHits, one row per interacting substance pair
    hits.counts_by_level(len(offsets) - 1)            # (n_prescriptions, 5) counts, column = level rank
    kernel.check_lines(ids.tolist(), patient)         # one prescription: list of PairHit, no numpy

*Line ids.* ``encode_lines`` resolves each distinct key once with the engine's own resolver (so a
line means exactly what it means in ``Engine.analyze``: same product, substances and route) and
returns compact ``int32`` line ids. Id 0 is a line that takes no part in interactions: unresolved or
ambiguous (the engine reports it so and ignores it in the check). Ids are stable for the kernel's
lifetime; encoding new keys extends the vocabulary (the kernel is not thread-safe while encoding).

*Rows* are described in :mod:`iatro.batch.hits` (``rule`` indexes ``kernel.rules``: ``rule_id``
and ``edition`` there).

*Patient.* ``patients`` is None (nothing known, as an empty ``Patient``), one ``Patient`` for every
prescription, a sequence with one ``Patient`` per prescription, or the same as columns
(:class:`iatro.batch.patients.PatientColumns`: the distinct values of each field the questions read,
and a ``Patient`` built only for the few evaluations the memo has not met). Only what the curated
qualifications ask (:func:`iatro.checks.qualify.patient_questions`: history prefixes, sex, age,
eGFR and potassium thresholds) matters here.

How: every (substance, route) exposure is reduced to its *signature*, the set of rule sides it meets;
a dense table indexed by two signatures (:mod:`iatro.batch.table`, over the signatures of the lines
encoded so far, rebuilt when encoding brings new ones) gives the static outcome of the pair (worst
level and main rule when no rule of the pair is qualified) or says that the pair needs
qualification. Pairs are generated and looked up with numpy (:mod:`iatro.batch.pairs`: a line met
again in a prescription dropped, each exposure paired with the later ones in one flat run, one
gather); only the pairs with a qualified rule go through the engine's own qualification, memoised on
(exposure class, exposure class, the patient's answers to the questions of the pair's rules)
(:mod:`iatro.batch.qualified`). ``tests/unit/test_batch_interactions.py`` and
``tests/unit/test_batch_qualified_facts.py`` check every row against ``Engine.analyze``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from iatro.batch.encoding import KeyKind, LineEncoder
from iatro.batch.hits import I32, I64, LEVEL_CODES, PairHit, PairHits
from iatro.batch.pairs import merge_same_pair, pairs_within, repeats
from iatro.batch.patients import PatientColumns
from iatro.batch.qualified import PairOutcome, QualifiedPairs
from iatro.batch.table import QUALIFY, pair_codes, pair_table
from iatro.checks.interactions import InteractionIndex
from iatro.checks.qualify import PatientQuestion
from iatro.errors import FieldError
from iatro.kb.store import KnowledgeBase
from iatro.kb.thesaurus import LEVEL_RANK, InteractionRule
from iatro.model.prescription import Patient
from iatro.resolve.lines import Resolver

__all__ = ["LEVEL_CODES", "BatchInteractions", "KeyKind", "PairHit", "PairHits"]

_NOBODY = Patient()


class BatchInteractions(LineEncoder):
    """The interaction check of one thesaurus edition, vectorised over prescriptions."""

    def __init__(self, index: InteractionIndex, resolver: Resolver | None = None) -> None:
        super().__init__(index, resolver)
        rules = index.rules
        order = sorted(range(len(rules)), key=lambda r: rules[r].rule_id)
        # Ties between rules of one level go to the smaller rule id, as in the engine's alert.
        self._rule_order = np.empty(len(rules), dtype=np.int64)
        self._rule_order[order] = np.arange(len(rules))
        self._rule_by_order = np.array(order, dtype=np.int32)
        self._rule_index = {rule.rule_id: i for i, rule in enumerate(rules)}
        self._rank = np.array([LEVEL_RANK[r.worst] for r in rules], dtype=np.int64)
        self._qualified = np.array([r.rule_id in index.qualifications for r in rules], dtype=np.bool_)
        # Outcomes of the pairs with a qualified rule, memoised on what their qualification reads.
        self._qualified_pairs = QualifiedPairs(
            index, self._exposures, self._exposure_sig, self._signatures, self._rule_index
        )
        self._arrays_size = (-1, -1)
        self._table_size = -1
        self._codes = pair_codes(self._rank, self._rule_order)
        self._n_rules = len(rules)
        self._rule_order_list: list[int] = self._rule_order.tolist()
        # Cell code -> (level rank, rule index), for the cells that need no qualification; as arrays
        # indexed by a cell (with or without the QUALIFY bit) for the numpy path.
        codes = np.arange(4 * self._n_rules)
        level_of, rule_of = 4 - codes // self._n_rules, self._rule_by_order[codes % self._n_rules]
        self._decode = list(zip(level_of.tolist(), rule_of.tolist(), strict=True))
        self._cell_level = np.zeros(2 * QUALIFY, dtype=np.int8)
        self._cell_rule = np.full(2 * QUALIFY, -1, dtype=np.int32)
        for flag in (0, QUALIFY):
            self._cell_level[codes | flag] = level_of
            self._cell_rule[codes | flag] = rule_of
        # Signatures are registered as lines are encoded (a batch meets a few hundred of them); the
        # table over those met is (re)built when a run or check first needs a new one.
        self._build_table()

    @classmethod
    def from_kb(cls, kb: KnowledgeBase, edition: str | None = None) -> BatchInteractions:
        return cls(InteractionIndex(kb, edition))

    @property
    def rules(self) -> tuple[InteractionRule, ...]:
        """The rule table ``PairHits.rule`` indexes (``rule_id``, ``edition``, levels, texts)."""
        return self.index.rules

    @property
    def edition(self) -> str:
        return self.index.edition

    @property
    def qualified_pairs(self) -> QualifiedPairs:
        """The memoised outcomes of the pairs whose level depends on the patient."""
        return self._qualified_pairs

    def pair_questions(self, line_a: int, line_b: int) -> tuple[PatientQuestion, ...]:
        """What the level of two encoded lines' interactions reads of the patient (empty: nothing)."""
        found: dict[PatientQuestion, None] = {}
        for a in self._lines[line_a]:
            for b in self._lines[line_b]:
                found.update(dict.fromkeys(self._qualified_pairs.pair_questions(min(a, b), max(a, b))))
        return tuple(found)

    # -- tables -------------------------------------------------------------------------------
    def _build_table(self) -> None:
        """The dense table over the signatures registered so far (:func:`iatro.batch.table.pair_table`)."""
        self._table = pair_table(self._signatures, self._codes, self._qualified)
        n = self._table_size = len(self._signatures)
        self._rows: list[dict[int, int] | None] = [None] * n

    def _arrays(self) -> tuple[I64, I32, I32, I32]:
        """Line CSR over exposures and per-exposure arrays, rebuilt when encoding added entries."""
        size = (len(self._lines), len(self._exposures))
        if size != self._arrays_size:
            if len(self._signatures) != self._table_size:
                self._build_table()  # encoding brought new signatures
            lengths = np.fromiter((len(x) for x in self._lines), dtype=np.int64, count=len(self._lines))
            self._line_indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            self._line_exposures = np.fromiter(
                (e for x in self._lines for e in x), dtype=np.int32, count=int(lengths.sum())
            )
            self._ex_sid = np.array(self._exposure_sid, dtype=np.int32)
            # Each exposure's rank in (substance, exposure) order: sorting a prescription's exposures
            # by it puts the occurrences of one exposure, then those of one substance, together.
            by_substance = np.lexsort((np.arange(len(self._ex_sid)), self._ex_sid))
            self._ex_rank = np.empty(len(by_substance), dtype=np.int64)
            self._ex_rank[by_substance] = np.arange(len(by_substance))
            # Every registered signature but the empty one comes from an encoded exposure: the table
            # is already the one over the signatures the lines use, small enough to stay in cache.
            self._ex_sig = np.array(self._exposure_sig, dtype=np.int32)
            # Per line: its one exposure that meets a rule side, -1 for none, -2 for several.
            self._line_single = np.full(len(self._lines), -1, dtype=np.int32)
            for line_id, members in enumerate(self._lines):
                live = [e for e in members if self._exposure_sig[e]]
                if live:
                    self._line_single[line_id] = live[0] if len(live) == 1 else -2
            self._arrays_size = size
        return self._line_indptr, self._line_exposures, self._ex_sid, self._ex_sig

    # -- the kernel ---------------------------------------------------------------------------
    def run(
        self,
        offsets: npt.ArrayLike,
        line_ids: npt.ArrayLike,
        patients: Patient | Sequence[Patient] | PatientColumns | None = None,
    ) -> PairHits:
        """The interaction alerts of every prescription ``p`` = ``line_ids[offsets[p]:offsets[p + 1]]``."""
        offsets = np.asarray(offsets, dtype=np.int64)
        lines = np.asarray(line_ids, dtype=np.int32)
        n_presc = len(offsets) - 1
        if n_presc < 0 or offsets[0] != 0 or offsets[-1] != len(lines) or np.any(np.diff(offsets) < 0):
            raise FieldError("offsets", "must start at 0, never decrease and end at len(line_ids)")
        if len(lines) and (lines.min() < 0 or lines.max() >= len(self._lines)):
            raise FieldError("line_ids", "an id was not returned by this kernel's encode_lines")
        if patients is not None and not isinstance(patients, Patient) and len(patients) != n_presc:
            raise FieldError("patients", f"{len(patients)} patients for {n_presc} prescriptions")
        indptr, line_exposures, ex_sid, ex_sig = self._arrays()
        # Lines -> exposures (a combination product gives several), keeping prescription and line.
        sizes = np.diff(offsets)
        presc_of_line = np.repeat(np.arange(n_presc, dtype=np.int64), sizes)
        position = np.arange(len(lines), dtype=np.int32) - np.repeat(offsets[:-1].astype(np.int32), sizes)
        single = self._line_single[lines]
        one_each = not len(single) or bool(single.min() >= -1)
        if one_each:
            # Every line has at most one exposure that meets a rule side (the common case).
            keep = single >= 0
            exposure = single[keep]
            ex_presc, ex_line = presc_of_line[keep], position[keep]
        else:
            count = indptr[lines + 1] - indptr[lines]
            ex_presc = np.repeat(presc_of_line, count)
            ex_line = np.repeat(position, count)
            starts = np.repeat(indptr[lines], count)
            within = np.arange(len(starts), dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
            exposure = line_exposures[starts + within]
            # Exposures that meet no rule side cannot interact: drop them before pairing.
            live = np.flatnonzero(ex_sig[exposure] > 0)
            exposure, ex_presc, ex_line = exposure.take(live), ex_presc.take(live), ex_line.take(live)
        # A line repeated in a prescription pairs as its first occurrence does: dropped, unless a
        # line holds several exposures (a combination's substances are never paired together).
        kept, duplicated = repeats(ex_presc, self._ex_rank[exposure], ex_sid[exposure], one_each)
        if kept is not None:
            exposure, ex_presc, ex_line = exposure[kept], ex_presc[kept], ex_line[kept]
        sid = ex_sid[exposure]
        first, second, cell = pairs_within(ex_presc, ex_sig[exposure], n_presc, self._table, self._table_size)
        sid_a, sid_b = sid.take(first), sid.take(second)
        hit = sid_a != sid_b
        if not one_each:
            hit &= ex_line.take(first) != ex_line.take(second)
        if not hit.all():
            rows = np.flatnonzero(hit)
            first, second, cell = first.take(rows), second.take(rows), cell.take(rows)
            sid_a, sid_b = sid_a.take(rows), sid_b.take(rows)
        # Static outcome of each cell; the qualified ones are overwritten below.
        level = self._cell_level.take(cell)
        rule = self._cell_rule.take(cell)
        unresolved = np.zeros(len(first), dtype=np.bool_)
        where = np.flatnonzero(cell >= QUALIFY)
        if len(where):
            q_level, q_rule, q_unresolved = self._qualify(
                exposure[first[where]], exposure[second[where]], ex_presc[first[where]], patients
            )
            level[where], rule[where], unresolved[where] = q_level, q_rule, q_unresolved
        # Rows to drop: level 0 (every finding excluded by the thesaurus text, no alert), and the rows
        # merged into another of the same substance pair; dropped in one pass at the end.
        keep = level > 0
        if len(duplicated):
            twice = np.zeros(len(sid), dtype=np.bool_)
            twice[duplicated] = True
            rows = np.flatnonzero((twice.take(first) | twice.take(second)) & keep)
            a, b = sid_a.take(rows), sid_b.take(rows)
            drop, merged, merged_unresolved = merge_same_pair(
                ex_presc.take(first.take(rows)),
                np.minimum(a, b),
                np.maximum(a, b),
                level.take(rows),
                rule.take(rows),
                unresolved.take(rows),
                len(self.kb.substances),
                self._n_rules,
                self._rule_order,
            )
            keep[rows.take(drop)] = False
            unresolved[rows.take(merged)] = merged_unresolved
        if not keep.all():
            rows = np.flatnonzero(keep)
            first, second, sid_a, sid_b = (
                first.take(rows),
                second.take(rows),
                sid_a.take(rows),
                sid_b.take(rows),
            )
            level, rule, unresolved = level.take(rows), rule.take(rows), unresolved.take(rows)
        return PairHits(
            prescription=ex_presc.take(first),
            line_a=ex_line.take(first),
            line_b=ex_line.take(second),
            substance_a=np.minimum(sid_a, sid_b),
            substance_b=np.maximum(sid_a, sid_b),
            level=level,
            unresolved=unresolved,
            rule=rule,
        )

    def check_lines(self, line_ids: Sequence[int], patient: Patient | None = None) -> list[PairHit]:
        """The rows ``run`` gives for one prescription (in line order), without numpy: faster for one.

        At 20 lines, numpy's per-call overhead exceeds the work; this walks the pairs in Python over
        the same table (one dict per signature) and the same memoised qualification (each question
        asked of the patient once, when a qualified pair first needs it).
        """
        if len(self._signatures) != self._table_size:
            self._build_table()  # encoding brought new signatures
        lines, sig_of, sid_of = self._lines, self._exposure_sig, self._exposure_sid
        active = [
            (position, ex, sig_of[ex], sid_of[ex])
            for position, line_id in enumerate(line_ids)
            for ex in lines[line_id]
            if sig_of[ex]
        ]
        patient = patient or _NOBODY
        qualified = self._qualified_pairs
        known: dict[tuple[int, int], PairOutcome] | None = None  # this patient's pairs met before
        answers: list[int] = []  # the patient's answers, each asked once per prescription
        decode = self._decode
        make = PairHit._make  # tuple.__new__: a third of the keyword-checking constructor's cost
        found: dict[tuple[int, int], PairHit] = {}
        rows = self._rows
        for n, (line_x, ex_x, sig_x, sid_x) in enumerate(active):
            row = rows[sig_x]
            if row is None:
                row = self._partners(sig_x)
            if not row:
                continue
            for line_y, ex_y, sig_y, sid_y in active[n + 1 :]:
                code = row.get(sig_y)
                if code is None or sid_x == sid_y or line_x == line_y:
                    continue
                lo, hi = (sid_x, sid_y) if sid_x < sid_y else (sid_y, sid_x)
                if code & QUALIFY:
                    if known is None:
                        known, answers = qualified.recent(patient), qualified.new_answers()
                    pair = (ex_x, ex_y) if ex_x < ex_y else (ex_y, ex_x)
                    outcome = known.get(pair) or qualified.outcome(*pair, patient, answers, known)
                    if not outcome.level:
                        continue
                    hit = make((line_x, line_y, lo, hi, outcome.level, outcome.unresolved, outcome.rule))
                else:
                    level, rule = decode[code]
                    hit = make((line_x, line_y, lo, hi, level, False, rule))
                key = (lo, hi)
                before = found.get(key)
                if before is None:
                    found[key] = hit
                else:  # a substance on several lines: one alert, as in ``pairs.merge_same_pair``
                    keep = before if self._code(before) <= self._code(hit) else hit
                    found[key] = keep._replace(unresolved=before.unresolved or hit.unresolved)
        return list(found.values())

    def _code(self, hit: PairHit) -> int:
        """The order of a row's main rule: worst level first, then the smaller rule id."""
        return (4 - hit.level) * self._n_rules + self._rule_order_list[hit.rule]

    def _partners(self, sig: int) -> dict[int, int]:
        """Row ``sig`` of the pair table as {other signature: cell}, for the cells that hold a rule."""
        row = self._rows[sig]
        if row is None:
            cells = self._table[sig * self._table_size : (sig + 1) * self._table_size]
            others = np.flatnonzero(cells >= 0)
            row = self._rows[sig] = dict(zip(others.tolist(), cells[others].tolist(), strict=True))
        return row

    def _qualify(
        self,
        ex_a: I32,
        ex_b: I32,
        presc: I64,
        patients: Patient | Sequence[Patient] | PatientColumns | None,
    ) -> tuple[npt.NDArray[np.int8], I32, npt.NDArray[np.bool_]]:
        """Outcomes of the pairs with a qualified rule, through the engine's own qualification."""
        lo, hi = np.minimum(ex_a, ex_b).astype(np.int64), np.maximum(ex_a, ex_b).astype(np.int64)
        qualified = self._qualified_pairs
        if patients is None or isinstance(patients, Patient):
            patient = patients or _NOBODY
            dense = qualified.dense(patient)
            if dense is not None:
                packed = dense[lo, hi]
                missing = np.flatnonzero(packed < 0)
                if len(missing):
                    pairs = np.unique(lo[missing] * len(dense) + hi[missing])
                    answers = qualified.new_answers()
                    for a, b in zip(*np.divmod(pairs, len(dense)), strict=True):
                        dense[a, b] = qualified.outcome(int(a), int(b), patient, answers).packed
                    packed = dense[lo, hi]
                return (
                    (packed & 7).astype(np.int8),
                    (packed >> 4).astype(np.int32),
                    (packed & 8).astype(np.bool_),
                )
            return qualified.many(lo, hi, np.zeros(len(lo), dtype=np.int64), [patient])
        return qualified.many(lo, hi, presc.astype(np.int64), patients)
