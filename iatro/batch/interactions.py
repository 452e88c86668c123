"""ANSM interactions over many prescriptions at once: the batch kernel of the interaction check.

Interface (stable; helper code such as population screening builds on it)::

    kernel = BatchInteractions(engine.interactions, engine.resolver)   # or BatchInteractions.from_kb(kb)
    ids = kernel.encode_lines(["amiodarone", "simvastatine", "paracetamol"])   # kind="substance"
    ids = kernel.encode_lines(["64607301"], kind="cis")                       # or "cip13", "text"
    ids = kernel.encode_line_inputs([LineInput(substance="acide acetylsalicylique", dose_mg_per_day=75)])
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
a dense table indexed by two signatures gives the static outcome of the pair (worst level and main
rule when no rule of the pair is qualified) or says that the pair needs qualification. Pairs are
generated and looked up with numpy (:mod:`iatro.batch.pairs`: prescriptions grouped by size, one
gather per group); only the pairs with a qualified rule go through the engine's own qualification,
memoised on (exposure, exposure, the patient's answers to the questions of the pair's rules)
(:mod:`iatro.batch.qualified`). ``tests/unit/test_batch_interactions.py`` and
``tests/unit/test_batch_qualified_facts.py`` check every row against ``Engine.analyze``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from iatro.batch.hits import I32, I64, LEVEL_CODES, PairHit, PairHits
from iatro.batch.pairs import merge_same_pair, pairs_within
from iatro.batch.patients import PatientColumns
from iatro.batch.qualified import PairOutcome, QualifiedPairs
from iatro.checks.context import Exposure
from iatro.checks.exposures import build_exposures
from iatro.checks.interactions import InteractionIndex
from iatro.checks.qualify import PatientQuestion
from iatro.errors import FieldError, KnowledgeBaseCorrupt
from iatro.kb.store import KnowledgeBase
from iatro.kb.thesaurus import LEVEL_RANK, InteractionRule
from iatro.model.prescription import LineInput, Patient
from iatro.resolve.lines import Resolver

__all__ = ["LEVEL_CODES", "BatchInteractions", "KeyKind", "PairHit", "PairHits"]

KeyKind = Literal["substance", "cis", "cip13", "text"]

_NO_RULE = -1
_NOBODY = Patient()
# Flag bit of a pair-table cell: a rule of the pair is qualified, its level depends on the patient.
_QUALIFY = 1 << 13


class BatchInteractions:
    """The interaction check of one thesaurus edition, vectorised over prescriptions."""

    def __init__(self, index: InteractionIndex, resolver: Resolver | None = None) -> None:
        self.index = index
        self.kb = index.kb
        self.resolver = resolver or Resolver(index.kb)
        rules = index.rules
        order = sorted(range(len(rules)), key=lambda r: rules[r].rule_id)
        # Ties between rules of one level go to the smaller rule id, as in the engine's alert.
        self._rule_order = np.empty(len(rules), dtype=np.int64)
        self._rule_order[order] = np.arange(len(rules))
        self._rule_by_order = np.array(order, dtype=np.int32)
        self._rule_index = {rule.rule_id: i for i, rule in enumerate(rules)}
        self._rank = np.array([LEVEL_RANK[r.worst] for r in rules], dtype=np.int64)
        self._qualified = np.array([r.rule_id in index.qualifications for r in rules], dtype=np.bool_)
        # Exposure templates (line 0) -> id; id -> KB substance id and signature id.
        self._exposures: list[Exposure] = []
        self._exposure_ids: dict[Exposure, int] = {}
        self._exposure_sid: list[int] = []
        self._exposure_sig: list[int] = []
        # Signature: the (rule, side) pairs an exposure meets; id 0 is the empty signature.
        self._signatures: list[tuple[tuple[int, int], ...]] = [()]
        self._signature_ids: dict[tuple[tuple[int, int], ...], int] = {(): 0}
        # Lines: id -> exposure ids; id 0 takes no part (unresolved, ambiguous).
        self._lines: list[tuple[int, ...]] = [()]
        self._line_ids: dict[tuple[int, ...], int] = {(): 0}
        self._key_cache: dict[str, dict[str, int]] = {}
        self._input_cache: dict[LineInput, int] = {}
        # Outcomes of the pairs with a qualified rule, memoised on what their qualification reads.
        self._qualified_pairs = QualifiedPairs(
            index, self._exposures, self._exposure_sig, self._signatures, self._rule_index
        )
        self._arrays_size = (-1, -1)
        self._table_size = -1
        for substance in self.kb.substances:
            # Every signature a substance can have: each route that changes its memberships, none,
            # and any other route. Registering them now builds the pair table once, at load.
            for route in (None, "\0other", *index.route_sides, *self._conditional_routes()):
                template = Exposure(line=0, substance_id=substance.id, name=substance.name, atc=())
                template = dataclasses.replace(template, route=route, aliases=substance.ansm)
                self._signature(template)
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

    # -- encoding -----------------------------------------------------------------------------
    def encode_lines(self, keys: Iterable[str], kind: KeyKind = "substance") -> I32:
        """Line ids of ``keys`` read as ``kind`` (a DCI name, a CIS, a CIP13, or a free-text line)."""
        if kind not in ("substance", "cis", "cip13", "text"):
            raise FieldError("kind", f"unknown key kind {kind!r}: substance, cis, cip13 or text")
        cache = self._key_cache.setdefault(kind, {})
        keys = keys if isinstance(keys, list) else list(keys)
        try:
            return np.fromiter(map(cache.__getitem__, keys), dtype=np.int32, count=len(keys))
        except KeyError:
            pass  # some keys are new: resolve them once, then read them from the cache
        for i, key in enumerate(keys):
            if key not in cache:
                try:
                    line = LineInput.model_validate({kind: key})
                except ValidationError as exc:
                    raise FieldError(f"keys.{i}", exc.errors()[0]["msg"]) from None
                cache[key] = self._encode(line)
        return np.fromiter(map(cache.__getitem__, keys), dtype=np.int32, count=len(keys))

    def encode_line_inputs(self, lines: Iterable[LineInput]) -> I32:
        """Line ids of contract line inputs (with posology, dose and route when given)."""
        out = []
        for line in lines:
            found = self._input_cache.get(line)
            if found is None:
                found = self._input_cache[line] = self._encode(line)
            out.append(found)
        return np.array(out, dtype=np.int32)

    def line_exposures(self, line_id: int) -> tuple[Exposure, ...]:
        """The exposures (with line 0) a line id stands for: what the engine's checks would see."""
        return tuple(self._exposures[e] for e in self._lines[line_id])

    def _encode(self, line: LineInput) -> int:
        report = self.resolver.resolve(line, 0)
        if report.status != "resolved":
            return 0
        exposures = build_exposures(self.kb, (report,), (line,))
        key = tuple(self._exposure_id(e) for e in exposures)
        found = self._line_ids.get(key)
        if found is None:
            found = self._line_ids[key] = len(self._lines)
            self._lines.append(key)
        return found

    def _exposure_id(self, exposure: Exposure) -> int:
        found = self._exposure_ids.get(exposure)
        if found is None:
            found = self._exposure_ids[exposure] = len(self._exposures)
            self._exposures.append(exposure)
            self._exposure_sid.append(exposure.substance_id)
            self._exposure_sig.append(self._signature(exposure))
        return found

    def _signature(self, exposure: Exposure) -> int:
        key = tuple(sorted({(rule, side) for rule, side, _via in self.index.entries(exposure)}))
        found = self._signature_ids.get(key)
        if found is None:
            found = self._signature_ids[key] = len(self._signatures)
            self._signatures.append(key)
        return found

    def _conditional_routes(self) -> set[str]:
        return {
            route for entries in self.index.conditional.values() for *_, routes in entries for route in routes
        }

    # -- tables -------------------------------------------------------------------------------
    def _build_table(self) -> None:
        """Dense signature x signature table: the main rule's order code, and whether to qualify.

        A cell holds ``(4 - rank) * n_rules + order(rule_id)`` minimised over the rules met by the
        pair in either orientation, so the minimum is the engine's main rule (worst level, then
        smallest rule id), plus the ``_QUALIFY`` bit when a rule of the pair is qualified; -1 when no
        rule is met. int16 keeps the table (signatures squared) small enough to stay in cache.
        """
        n = len(self._signatures)
        n_rules = len(self.rules)
        if 4 * n_rules >= _QUALIFY:
            raise KnowledgeBaseCorrupt(f"{n_rules} rules: the pair table packs a rule order in 13 bits")
        sides: list[list[list[int]]] = [[[], []] for _ in range(n_rules)]
        for sig, members in enumerate(self._signatures):
            for rule, side in members:
                sides[rule][side].append(sig)
        cells, codes, qualified = [], [], []
        for rule, (side_a, side_b) in enumerate(sides):
            if not side_a or not side_b:
                continue
            a = np.asarray(side_a, dtype=np.int64)
            b = np.asarray(side_b, dtype=np.int64)
            grid = np.concatenate(
                [(a[:, None] * n + b[None, :]).ravel(), (b[:, None] * n + a[None, :]).ravel()]
            )
            cells.append(grid)
            code = (4 - self._rank[rule]) * n_rules + self._rule_order[rule]
            codes.append(np.full(len(grid), code, dtype=np.int64))
            qualified.append(np.full(len(grid), self._qualified[rule], dtype=np.bool_))
        table = np.full(n * n, _NO_RULE, dtype=np.int16)
        needs = np.zeros(n * n, dtype=np.bool_)
        if cells:
            cell = np.concatenate(cells)
            code_all = np.concatenate(codes)
            by = np.lexsort((code_all, cell))  # per cell, the smallest code first
            cell, code_all = cell[by], code_all[by]
            first = np.ones(len(cell), dtype=np.bool_)
            first[1:] = cell[1:] != cell[:-1]
            table[cell[first]] = code_all[first]
            np.logical_or.at(needs, np.concatenate(cells), np.concatenate(qualified))
        table[needs] |= _QUALIFY
        self._table = table
        self._n_rules = n_rules
        self._rows: list[dict[int, int] | None] = [None] * n
        self._rule_by_order_list: list[int] = self._rule_by_order.tolist()
        self._rule_order_list: list[int] = self._rule_order.tolist()
        # Cell code -> (level rank, rule index), for the cells that need no qualification.
        self._decode = [
            (4 - code // n_rules, self._rule_by_order_list[code % n_rules]) for code in range(4 * n_rules)
        ]
        self._table_size = n

    def _arrays(self) -> tuple[I64, I32, I32, I32]:
        """Line CSR over exposures and per-exposure arrays, rebuilt when encoding added entries."""
        size = (len(self._lines), len(self._exposures))
        if size != self._arrays_size:
            if len(self._signatures) != self._table_size:
                self._build_table()  # an exposure brought a signature not seen at load
            lengths = np.fromiter((len(x) for x in self._lines), dtype=np.int64, count=len(self._lines))
            self._line_indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            self._line_exposures = np.fromiter(
                (e for x in self._lines for e in x), dtype=np.int32, count=int(lengths.sum())
            )
            self._ex_sid = np.array(self._exposure_sid, dtype=np.int32)
            # The table restricted to the signatures of the encoded exposures: a batch meets a few
            # dozen to a few hundred, and a small table stays in the processor's cache.
            signatures = np.array(self._exposure_sig, dtype=np.int32)
            used = np.union1d([0], signatures)
            local = np.zeros(self._table_size, dtype=np.int32)
            local[used] = np.arange(len(used), dtype=np.int32)
            self._ex_sig = local[signatures]
            full = self._table.reshape(self._table_size, self._table_size)
            self._local_table = np.ascontiguousarray(full[np.ix_(used, used)]).ravel()
            # Per line: its one exposure that meets a rule side, -1 for none, -2 for several.
            self._line_single = np.full(len(self._lines), -1, dtype=np.int32)
            for line_id, members in enumerate(self._lines):
                live = [e for e in members if self._exposure_sig[e]]
                if live:
                    self._line_single[line_id] = live[0] if len(live) == 1 else -2
            self._local_size = len(used)
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
        presc_of_line = np.repeat(np.arange(n_presc, dtype=np.int32), sizes)
        position = np.arange(len(lines), dtype=np.int32) - np.repeat(offsets[:-1].astype(np.int32), sizes)
        single = self._line_single[lines]
        if not len(single) or single.min() >= -1:
            # Every line has at most one exposure that meets a rule side (the common case).
            keep = single >= 0
            exposure = single[keep]
            ex_presc, ex_line = presc_of_line[keep], position[keep]
            sig = ex_sig[exposure]
        else:
            count = indptr[lines + 1] - indptr[lines]
            ex_presc = np.repeat(presc_of_line, count)
            ex_line = np.repeat(position, count)
            starts = np.repeat(indptr[lines], count)
            within = np.arange(len(starts), dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
            exposure = line_exposures[starts + within]
            # Exposures that meet no rule side cannot interact: drop them before pairing.
            sig = ex_sig[exposure]
            live = np.flatnonzero(sig > 0)
            exposure, ex_presc, ex_line, sig = (a.take(live) for a in (exposure, ex_presc, ex_line, sig))
        sid = ex_sid[exposure]
        first, second, cell, duplicated = pairs_within(
            ex_presc, sig, sid, n_presc, self._local_table, self._local_size
        )
        hit = (sid[first] != sid[second]) & (ex_line[first] != ex_line[second])
        if not hit.all():
            kept = np.flatnonzero(hit)
            first, second, cell = first.take(kept), second.take(kept), cell.take(kept)
        code = cell & (_QUALIFY - 1)
        level = (4 - code // self._n_rules).astype(np.int8)
        rule = self._rule_by_order[code % self._n_rules]
        unresolved = np.zeros(len(first), dtype=np.bool_)
        where = np.flatnonzero(cell & _QUALIFY)
        if len(where):
            q_level, q_rule, q_unresolved = self._qualify(
                exposure[first[where]], exposure[second[where]], ex_presc[first[where]], patients
            )
            level[where], rule[where], unresolved[where] = q_level, q_rule, q_unresolved
            if not level.all():  # level 0: every finding excluded by the thesaurus text, no alert
                kept = np.flatnonzero(level)
                first, second = first.take(kept), second.take(kept)
                level, rule, unresolved = level.take(kept), rule.take(kept), unresolved.take(kept)
        sid_a, sid_b = sid[first], sid[second]
        hits = PairHits(
            prescription=ex_presc[first].astype(np.int64),
            line_a=ex_line[first],
            line_b=ex_line[second],
            substance_a=np.minimum(sid_a, sid_b),
            substance_b=np.maximum(sid_a, sid_b),
            level=level,
            unresolved=unresolved,
            rule=rule,
        )
        if not len(duplicated):
            return hits
        twice = np.zeros(len(sid), dtype=np.bool_)
        twice[duplicated] = True
        rows = np.flatnonzero(twice[first] | twice[second])
        return merge_same_pair(hits, rows, len(self.kb.substances), self._n_rules, self._rule_order)

    def check_lines(self, line_ids: Sequence[int], patient: Patient | None = None) -> list[PairHit]:
        """The rows ``run`` gives for one prescription (in line order), without numpy: faster for one.

        At 20 lines, numpy's per-call overhead exceeds the work; this walks the pairs in Python over
        the same table (one dict per signature) and the same memoised qualification (each question
        asked of the patient once, when a qualified pair first needs it).
        """
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
                if code & _QUALIFY:
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
        presc: I32,
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
