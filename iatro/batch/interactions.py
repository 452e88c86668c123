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

*Rows.* One row per (prescription, unordered pair of substances) that the engine reports as one
``interaction`` alert: ``substance_a < substance_b`` are KB substance ids (the alert's substances),
``line_a < line_b`` the lines (positions within the prescription) of the alert's main finding (when
a substance is on several lines, the first line pair that gives the main rule; the alert's ``lines``
are all of them),
``level`` the rank of the level the engine reports for this patient (``LEVEL_RANK``: 4 contre-
indication ... 1 à prendre en compte; ``LEVEL_CODES[level]`` is the contract's string), ``unresolved``
True when the alert would carry ``unresolved_conditions`` (the level is then the worst candidate), and
``rule`` the index of the main rule in ``kernel.rules`` (``rule_id`` and ``edition`` there).

*Patient.* ``patients`` is None (nothing known, as an empty ``Patient``), one ``Patient`` for every
prescription, or a sequence with one ``Patient`` per prescription. Only the fields the curated
qualifications read (conditions, sex, age, eGFR, potassium) matter here.

How: every (substance, route) exposure is reduced to its *signature*, the set of rule sides it meets;
a dense table indexed by two signatures gives the static outcome of the pair (worst level and main
rule when no rule of the pair is qualified) or says that the pair needs qualification. Pairs are
generated and looked up with numpy (prescriptions grouped by size, one gather per group); only the
pairs with a qualified rule go through the engine's own qualification, memoised on (exposure,
exposure, patient facts). ``tests/unit/test_batch_interactions.py`` checks every row against
``Engine.analyze`` on 10,000 generated prescriptions, products by CIS and dose-dependent lines.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from iatro.checks.context import CheckContext, Exposure
from iatro.checks.exposures import build_exposures
from iatro.checks.interactions import InteractionIndex
from iatro.errors import FieldError, KnowledgeBaseCorrupt
from iatro.kb.store import KnowledgeBase
from iatro.kb.thesaurus import LEVEL_RANK, LEVELS, InteractionRule, Level
from iatro.model.prescription import LineInput, Patient
from iatro.resolve.lines import Resolver

#: ``LEVEL_CODES[rank]``: the contract's level string of a ``PairHits.level`` value (index 0 unused).
LEVEL_CODES: tuple[Level | None, ...] = (None, *reversed(LEVELS))

KeyKind = Literal["substance", "cis", "cip13", "text"]

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]

_NO_RULE = -1
_NOBODY = Patient()
# Flag bit of a pair-table cell: a rule of the pair is qualified, its level depends on the patient.
_QUALIFY = 1 << 13
# Up to this many distinct exposures, qualified outcomes are cached in a dense (n, n) int32 table.
_DENSE_EXPOSURES = 2048
# What the curated qualifications read of a patient (``iatro.checks.qualify``).
_Facts = tuple[tuple[str, ...], str | None, int | None, float | None, float | None]


def _facts(patient: Patient) -> _Facts:
    return (patient.conditions, patient.sex, patient.age, patient.egfr_ml_min, patient.labs.potassium_mmol_l)


@dataclass(frozen=True, slots=True)
class PairHits:
    """Interacting pairs of a batch, one row per alert the engine would report; equal-length arrays.

    Rows are ordered by prescription, then by lines.
    """

    prescription: I64
    line_a: I32
    line_b: I32
    substance_a: I32
    substance_b: I32
    level: npt.NDArray[np.int8]
    unresolved: npt.NDArray[np.bool_]
    rule: I32

    def __len__(self) -> int:
        return len(self.prescription)

    def counts_by_level(self, n_prescriptions: int) -> I64:
        """``(n_prescriptions, 5)`` alert counts; column k counts level rank k (column 0 stays 0)."""
        flat = self.prescription * 5 + self.level.astype(np.int64)
        counts = np.bincount(flat, minlength=n_prescriptions * 5)
        return counts.reshape(n_prescriptions, 5)


class PairHit(NamedTuple):
    """One row of :class:`PairHits`, for one prescription (``BatchInteractions.check_lines``)."""

    line_a: int
    line_b: int
    substance_a: int
    substance_b: int
    level: int
    unresolved: bool
    rule: int


@dataclass(frozen=True, slots=True)
class _PairOutcome:
    level: int  # rank, 0 when every finding of the pair is excluded by the thesaurus text
    rule: int
    unresolved: bool

    @property
    def packed(self) -> int:
        """level | unresolved << 3 | rule << 4, the cell of a dense outcome table."""
        return self.level | (8 if self.unresolved else 0) | (max(self.rule, 0) << 4)


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
        self._outcomes: dict[_Facts, dict[tuple[int, int], _PairOutcome]] = {}
        self._dense: dict[_Facts, npt.NDArray[np.int32]] = {}
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
        patients: Patient | Sequence[Patient] | None = None,
    ) -> PairHits:
        """The interaction alerts of every prescription ``p`` = ``line_ids[offsets[p]:offsets[p + 1]]``."""
        offsets = np.asarray(offsets, dtype=np.int64)
        lines = np.asarray(line_ids, dtype=np.int32)
        n_presc = len(offsets) - 1
        if n_presc < 0 or offsets[0] != 0 or offsets[-1] != len(lines) or np.any(np.diff(offsets) < 0):
            raise FieldError("offsets", "must start at 0, never decrease and end at len(line_ids)")
        if len(lines) and (lines.min() < 0 or lines.max() >= len(self._lines)):
            raise FieldError("line_ids", "an id was not returned by this kernel's encode_lines")
        if isinstance(patients, Sequence) and len(patients) != n_presc:
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
        first, second, cell, duplicated = self._lookup(ex_presc, sig, sid, n_presc)
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
        return self._merge_same_pair(hits, np.flatnonzero(twice[first] | twice[second]))

    def _lookup(self, presc: I32, sig: I32, sid: I32, n_presc: int) -> tuple[I64, I64, I64, I64]:
        """Every pair of exposures of a prescription whose signatures meet a rule, and its table cell.

        Prescriptions are grouped by their number k of exposures: each group is a (rows, k) matrix,
        its pairs the k(k-1)/2 upper-triangle columns, looked up in one gather. Returns the pairs
        (exposure positions, ordered by prescription then position), their cells, and the
        exposures whose substance is on another exposure of the prescription (to merge, see below).
        """
        counts = np.bincount(presc, minlength=n_presc)
        starts = np.cumsum(counts) - counts
        groups = []
        duplicated = []
        for k in np.unique(counts).tolist():
            if k < 2:
                continue
            rows = np.flatnonzero(counts == k)
            base = starts[rows]
            positions = base[:, None] + np.arange(k)
            iu, ju = _triangle(k)
            matrix = sig[positions]
            flat = matrix[:, iu]
            flat *= self._local_size
            flat += matrix[:, ju]
            cell = np.take(self._local_table, flat.ravel())
            found = np.flatnonzero(cell >= 0)
            row, column = np.divmod(found, len(iu))
            groups.append((rows, row, base[row] + iu[column], base[row] + ju[column], cell[found]))
            ids = sid[positions]
            ordered = np.sort(ids, axis=1)
            repeated = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
            if len(repeated):
                # The exposures whose substance is also on another exposure of the prescription.
                ids = ids[repeated]
                order = np.argsort(ids, axis=1, kind="stable")
                ids = np.take_along_axis(ids, order, axis=1)
                equal = ids[:, 1:] == ids[:, :-1]
                twice = np.zeros(ids.shape, dtype=np.bool_)
                twice[:, 1:] |= equal
                twice[:, :-1] |= equal
                r, c = np.nonzero(twice)
                duplicated.append(positions[repeated[r], order[r, c]])
        dup = np.concatenate(duplicated) if duplicated else np.zeros(0, dtype=np.int64)
        # Groups come by size; scatter each hit to its place in prescription order.
        per_presc = np.zeros(n_presc, dtype=np.int64)
        for rows, row, *_ in groups:
            per_presc[rows] = np.bincount(row, minlength=len(rows))
        total = int(per_presc.sum())
        hit_start = np.cumsum(per_presc) - per_presc
        first = np.empty(total, dtype=np.int64)
        second = np.empty(total, dtype=np.int64)
        cells = np.empty(total, dtype=np.int64)
        for rows, row, f, s, c in groups:
            run = per_presc[rows]
            local = np.arange(len(row), dtype=np.int64) - np.repeat(np.cumsum(run) - run, run)
            dest = hit_start[rows][row] + local
            first[dest], second[dest], cells[dest] = f, s, c
        return first, second, cells, dup

    def _merge_same_pair(self, hits: PairHits, rows: I64) -> PairHits:
        """One row per substance pair where a substance is on several lines, as the engine's alert.

        ``rows`` are the rows that involve such a substance. The level is the worst over the line
        pairs, the rule the main one at that level (smallest rule id), the lines those of its first
        line pair, ``unresolved`` true if any pair's is.
        """
        if not len(rows):
            return hits
        n_sub = len(self.kb.substances)
        key = (hits.prescription[rows] * n_sub + hits.substance_a[rows]) * n_sub + hits.substance_b[rows]
        # One stable sort on the pair key; only the keys met more than once need merging.
        by = np.argsort(key, kind="stable")
        sorted_key = key[by]
        repeated = np.zeros(len(by), dtype=np.bool_)
        same = sorted_key[1:] == sorted_key[:-1]
        repeated[1:] |= same
        repeated[:-1] |= same
        if not repeated.any():
            return hits
        rows = rows[by[repeated]]  # rows of merged pairs, grouped by key, earliest row first
        key = key[by[repeated]]
        code = (4 - hits.level[rows].astype(np.int64)) * self._n_rules + self._rule_order[hits.rule[rows]]
        by = np.lexsort((rows, code, key))  # per pair: main first, then the earliest row
        key_sorted = key[by]
        head = np.ones(len(by), dtype=np.bool_)
        head[1:] = key_sorted[1:] != key_sorted[:-1]
        group = np.cumsum(head) - 1
        any_unresolved = np.zeros(int(group[-1]) + 1, dtype=np.bool_)
        np.logical_or.at(any_unresolved, group, hits.unresolved[rows[by]])
        keep = np.ones(len(hits), dtype=np.bool_)
        keep[rows] = False
        kept_rows = rows[by[head]]
        keep[kept_rows] = True
        unresolved = hits.unresolved.copy()
        unresolved[kept_rows] = any_unresolved
        kept = np.flatnonzero(keep)  # one scan of the mask, then plain gathers
        return PairHits(
            prescription=hits.prescription.take(kept),
            line_a=hits.line_a.take(kept),
            line_b=hits.line_b.take(kept),
            substance_a=hits.substance_a.take(kept),
            substance_b=hits.substance_b.take(kept),
            level=hits.level.take(kept),
            unresolved=unresolved.take(kept),
            rule=hits.rule.take(kept),
        )

    def check_lines(self, line_ids: Sequence[int], patient: Patient | None = None) -> list[PairHit]:
        """The rows ``run`` gives for one prescription (in line order), without numpy: faster for one.

        At 20 lines, numpy's per-call overhead exceeds the work; this walks the pairs in Python over
        the same table (one dict per signature) and the same memoised qualification.
        """
        lines, sig_of, sid_of = self._lines, self._exposure_sig, self._exposure_sid
        active = [
            (position, ex, sig_of[ex], sid_of[ex])
            for position, line_id in enumerate(line_ids)
            for ex in lines[line_id]
            if sig_of[ex]
        ]
        outcomes: dict[tuple[int, int], _PairOutcome] | None = None
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
                    if outcomes is None:
                        patient = patient or _NOBODY
                        outcomes = self._outcomes.setdefault(_facts(patient), {})
                    pair = (ex_x, ex_y) if ex_x < ex_y else (ex_y, ex_x)
                    outcome = outcomes.get(pair) or self._outcome(*pair, patient or _NOBODY)
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
                else:  # a substance on several lines: one alert, as in ``_merge_same_pair``
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
        self, ex_a: I32, ex_b: I32, presc: I32, patients: Patient | Sequence[Patient] | None
    ) -> tuple[npt.NDArray[np.int8], I32, npt.NDArray[np.bool_]]:
        """Outcomes of the pairs with a qualified rule, through the engine's own qualification."""
        lo, hi = np.minimum(ex_a, ex_b).astype(np.int64), np.maximum(ex_a, ex_b).astype(np.int64)
        if patients is None or isinstance(patients, Patient):
            patient = patients or Patient()
            dense = self._dense_outcomes(_facts(patient))
            if dense is not None:
                packed = dense[lo, hi]
                missing = np.flatnonzero(packed < 0)
                if len(missing):
                    pairs = np.unique(lo[missing] * len(dense) + hi[missing])
                    for a, b in zip(*np.divmod(pairs, len(dense)), strict=True):
                        dense[a, b] = self._outcome(int(a), int(b), patient).packed
                    packed = dense[lo, hi]
                return (
                    (packed & 7).astype(np.int8),
                    (packed >> 4).astype(np.int32),
                    (packed & 8).astype(np.bool_),
                )
        if patients is None or isinstance(patients, Patient):
            fact_ids = np.zeros(len(presc), dtype=np.int64)
            patient_of: list[Patient] = [patients or Patient()]
        else:
            # Only the prescriptions with such a pair are read; patients with the same facts share outcomes.
            needed, inverse = np.unique(presc, return_inverse=True)
            ids: dict[_Facts, int] = {}
            patient_of = []
            per_needed = np.empty(len(needed), dtype=np.int64)
            for k, p in enumerate(needed.tolist()):
                facts = _facts(patients[p])
                found = ids.get(facts)
                if found is None:
                    found = ids[facts] = len(patient_of)
                    patient_of.append(patients[p])
                per_needed[k] = found
            fact_ids = per_needed[inverse]
        n_ex = max(len(self._exposures), 1)
        key = (fact_ids * n_ex + lo) * n_ex + hi
        unique, inverse = np.unique(key, return_inverse=True)
        levels = np.empty(len(unique), dtype=np.int8)
        rules = np.empty(len(unique), dtype=np.int32)
        unresolved = np.empty(len(unique), dtype=np.bool_)
        for k, value in enumerate(unique.tolist()):
            fact, rest = divmod(value, n_ex * n_ex)
            a, b = divmod(rest, n_ex)
            outcome = self._outcome(a, b, patient_of[fact])
            levels[k], rules[k], unresolved[k] = outcome.level, outcome.rule, outcome.unresolved
        return levels[inverse], rules[inverse], unresolved[inverse]

    def _dense_outcomes(self, facts: _Facts) -> npt.NDArray[np.int32] | None:
        """Packed outcomes of exposure pairs for one patient, dense while the exposures are few.

        A batch without per-prescription patients (or with one patient for all) meets a few hundred
        distinct exposures at most: the outcome of a pair is then one gather, filled on first use.
        """
        n = len(self._exposures)
        if n > _DENSE_EXPOSURES:
            return None
        table = self._dense.get(facts)
        if table is None or len(table) < n:
            size = 64
            while size < n:
                size *= 2
            grown = np.full((size, size), -1, dtype=np.int32)
            if table is not None:
                grown[: len(table), : len(table)] = table
            if len(self._dense) >= 8 and facts not in self._dense:
                self._dense.clear()
            table = self._dense[facts] = grown
        return table

    def _outcome(self, a: int, b: int, patient: Patient) -> _PairOutcome:
        """The engine's alert for two exposures (ids a <= b) and this patient, memoised on its facts."""
        facts = _facts(patient)
        memo = self._outcomes.get(facts)
        if memo is None:
            if len(self._outcomes) >= 64:
                self._outcomes.clear()
            memo = self._outcomes[facts] = {}
        found = memo.get((a, b))
        if found is None:
            exposures = (
                dataclasses.replace(self._exposures[a], line=0),
                dataclasses.replace(self._exposures[b], line=1),
            )
            pairs = self.index.findings(CheckContext(exposures=exposures, patient=patient))
            found = _PairOutcome(0, _NO_RULE, False)
            for findings in pairs.values():
                ranked = [(LEVEL_RANK[f.level.level], f.rule.rule_id) for f in findings if f.level.level]
                rank, rule_id = min(ranked, key=lambda item: (-item[0], item[1]))
                found = _PairOutcome(
                    level=rank,
                    rule=self._rule_index[rule_id],
                    unresolved=any(f.level.unresolved_conditions for f in findings),
                )
            if len(memo) >= 200_000:
                memo.clear()
            memo[a, b] = found
        return found


@lru_cache(maxsize=256)
def _triangle(k: int) -> tuple[I64, I64]:
    """Row and column of the k(k-1)/2 pairs i < j of k positions."""
    iu, ju = np.triu_indices(k, 1)
    return iu.astype(np.int64), ju.astype(np.int64)
