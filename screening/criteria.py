"""STOPP/START (and any compiled criteria list) for a chunk of patients: what the engine would report.

Per patient the engine evaluates every criterion and merges the hits into ``pim`` / ``omission``
findings (``evaluate_all`` then ``merge_hits``); a criterion is hit when one of its alternatives holds.
An alternative's outcome depends only on what it reads (:class:`~iatro.checks.explicit_criteria.
ByAlternative`): the exposures its selectors select (their substance, and their dose, duration, route
and PRN when one of its drug conditions reads them), the condition groups it names, and a few facts
(age band, sex, an unresolved line). It is false unless every drug and condition it requires is
present, which few patients have; and what it reads recurs from patient to patient (the generics of
one substance look alike to it). So a chunk is worked by (patient, alternative) pair, in arrays:

1. items: each patient's lines and condition groups, as the alternatives see them. A table built once
   per catalog line gives the alternatives the line concerns, its *view* for each (what that
   alternative reads of it) and which of their requirements it meets. Pairs that miss one are dropped.
2. key: the alternative, its facts and its items' views. Equal keys are found by a 64-bit hash, then
   compared view by view with their representative: a collision costs a slow path, never a count.
3. each distinct key is evaluated once by the engine (``ByAlternative.hit``) on the representative's
   lines, memoised across chunks. The target drugs are kept by position among the key's items; lines
   with the same view are interchangeable to the alternative, so each pair maps them to its own lines.
4. the merge, counted: a patient's hit criteria (the union of their holding alternatives) with the same
   target drugs make one PIM finding; omission hits join as ``join_omissions`` joins them.

Patient facts are read from the claims (age, sex, conditions), never from labs: claims carry none, so
the contract patient built from them has none either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from iatro.analysis import Engine
from iatro.checks.context import CheckContext, Exposure
from iatro.checks.explicit_criteria import (
    AlternativeInputs,
    ByAlternative,
    join_omissions,
)
from iatro.kb.criteria import CriteriaList, normalise_cim10
from iatro.model.prescription import Patient
from screening.checks import MEMO_LIMIT
from screening.derive import Context
from screening.lines import LineCatalog
from screening.segments import ranges

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
SEX_CODES = (None, "F", "M")  # sex code (an index) -> the contract's value
_ALWAYS = -1  # the item of every patient for an alternative that requires no drug and no condition
_VIEW_SHIFT = 1 << 31  # views (and group items, negative) sort as unsigned 32-bit numbers after the pair
_BITS = 62  # requirements of an alternative checked before evaluating it (any further: by the evaluation)


@dataclass(frozen=True, slots=True)
class CriteriaColumns:
    """One entry per patient of the chunk."""

    stopp: npt.NDArray[np.int32]  # number of `pim` alerts the engine reports
    start: npt.NDArray[np.int32]  # number of `omission` alerts
    stopp_ids: pa.ListArray  # list<string>: the criterion ids cited by those alerts, sorted, distinct
    start_ids: pa.ListArray


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64 finaliser: spreads ids over 64 bits so that sums of them rarely collide."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _details(e: Exposure) -> tuple[object, ...]:
    return (e.route, e.mg_per_intake, e.mg_per_day, e.intakes_per_day, e.as_needed, e.duration_days)


def _differ(same: Bools, view: Ints, starts: Ints, lengths: Ints, other: Ints, other_starts: Ints) -> None:
    """Clear ``same[k]`` where pair k's views differ from ``other[other_starts[k]:...]``, item by item.

    Only pairs still marked the same are compared: their lengths agree, so indices stay in range.
    """
    same &= view[starts] == other[np.where(same, other_starts, 0)]  # the first items
    longer = np.flatnonzero(same & (lengths > 1))  # the others, of the (fewer) longer pairs
    if not len(longer):
        return
    rest = lengths[longer] - 1
    pair = np.repeat(longer, rest)
    offset = ranges(np.ones(len(longer), dtype=np.int64), rest)  # 1 .. length - 1 for each pair
    differs = view[starts[pair] + offset] != other[other_starts[pair] + offset]
    same[pair[differs]] = False


@dataclass(frozen=True, slots=True)
class _Store:
    """Keys already evaluated, sorted by hash (distinct), with their views (flat) and found numbers."""

    hash: npt.NDArray[np.uint64]
    alternative: Ints
    facts: Ints
    length: Ints
    start: Ints
    views: Ints
    found: Ints

    @staticmethod
    def empty() -> _Store:
        none = np.zeros(0, dtype=np.int64)
        return _Store(np.zeros(0, dtype=np.uint64), none, none, none, none, none, none)

    def add(
        self,
        hashes: npt.NDArray[np.uint64],
        alternative: Ints,
        facts: Ints,
        length: Ints,
        views: Ints,
        found: Ints,
    ) -> _Store:
        """With new keys (distinct hashes, views flat in order); a hash already stored is left out."""
        at = np.minimum(np.searchsorted(self.hash, hashes), max(len(self.hash) - 1, 0))
        fresh = self.hash[at] != hashes if len(self.hash) else np.ones(len(hashes), dtype=bool)
        start = len(self.views) + np.cumsum(length) - length
        merged_hash = np.concatenate((self.hash, hashes[fresh]))
        order = np.argsort(merged_hash)
        return _Store(
            merged_hash[order],
            np.concatenate((self.alternative, alternative[fresh]))[order],
            np.concatenate((self.facts, facts[fresh]))[order],
            np.concatenate((self.length, length[fresh]))[order],
            np.concatenate((self.start, start[fresh]))[order],
            np.concatenate((self.views, views)),
            np.concatenate((self.found, found[fresh]))[order],
        )


class _Table:
    """Item (a catalog line, a condition group) -> the alternatives it concerns, as CSR arrays: for
    each, the item's view and the requirements of the alternative it meets (bits)."""

    def __init__(self) -> None:
        self.rows: list[list[tuple[int, int, int]]] = []  # (alternative, bits, view), by alternative
        self.start: Ints = np.zeros(0, dtype=np.int64)
        self.count: Ints = np.zeros(0, dtype=np.int64)
        self.alternative: Ints = np.zeros(0, dtype=np.int64)
        self.bits: Ints = np.zeros(0, dtype=np.int64)
        self.view: Ints = np.zeros(0, dtype=np.int64)
        self.patterns: list[int] = []  # the distinct bits of the entries

    def freeze(self) -> None:
        if len(self.start) == len(self.rows):
            return
        self.count = np.fromiter((len(r) for r in self.rows), dtype=np.int64, count=len(self.rows))
        self.start = np.cumsum(self.count) - self.count
        total = int(self.count.sum())
        self.alternative = np.fromiter((a for r in self.rows for a, _, _ in r), dtype=np.int64, count=total)
        self.bits = np.fromiter((b for r in self.rows for _, b, _ in r), dtype=np.int64, count=total)
        self.view = np.fromiter((v for r in self.rows for _, _, v in r), dtype=np.int64, count=total)
        self.patterns = sorted({b for r in self.rows for _, b, _ in r})

    def entries(self, owner: Ints, index: Ints) -> tuple[Ints, Ints, Ints]:
        """(owner, entry, row) for every entry of every row in ``index`` (owned by ``owner``)."""
        count = self.count[index]
        return np.repeat(owner, count), ranges(self.start[index], count), np.repeat(index, count)


class Criteria:
    """STOPP/START (and any compiled list), as the engine evaluates them, for chunks of patients."""

    def __init__(self, engine: Engine, catalog: LineCatalog) -> None:
        self.catalog = catalog
        self.lists: tuple[CriteriaList, ...] = engine.criteria.lists
        self._readers = tuple(ByAlternative(crit_list) for crit_list in self.lists)
        # The alternatives of every list are numbered together, and so are criteria and condition groups.
        self._alternatives: list[tuple[ByAlternative, AlternativeInputs]] = []
        criterion_of: list[int] = []
        self._group_base: list[int] = []
        self._by_selector: list[dict[int, list[tuple[int, int]]]] = []  # selector -> (alternative, bit)
        # Lines and groups each in two tables: entries that meet a requirement, and the others.
        self._groups, self._groups_optional = _Table(), _Table()
        requirements: list[int] = []
        criteria = 0
        for reader in self._readers:
            base = len(self._groups.rows)
            self._group_base.append(base)
            self._groups.rows.extend([] for _ in range(reader.group_count))
            self._groups_optional.rows.extend([] for _ in range(reader.group_count))
            by_selector: dict[int, list[tuple[int, int]]] = {}
            for inputs in reader.alternatives:
                number = len(self._alternatives)
                self._alternatives.append((reader, inputs))
                criterion_of.append(criteria + inputs.criterion)
                # One bit per requirement: each required selector, then each required group (-1 - gid).
                required = [
                    *sorted(inputs.required_selectors),
                    *(-1 - g for g in sorted(inputs.required_groups)),
                ]
                bit = {r: 1 << k for k, r in enumerate(required[:_BITS])}
                for sid in sorted(inputs.selectors):
                    by_selector.setdefault(sid, []).append((number, bit.get(sid, 0)))
                for gid in sorted(inputs.groups):
                    # A group's view is the group itself (negative, apart from the lines' views).
                    b = bit.get(-1 - gid, 0)
                    table = self._groups if b else self._groups_optional
                    table.rows[base + gid].append((number, b, -2 - base - gid))
                requirements.append(len(bit))
            criteria += 1 + max((i.criterion for i in reader.alternatives), default=-1)
            self._by_selector.append(by_selector)
        self._groups.freeze()
        self._groups_optional.freeze()
        self._lines, self._lines_optional = _Table(), _Table()
        self._views: dict[tuple[object, ...], int] = {}
        inputs_of = [inputs for _, inputs in self._alternatives]
        self._requirements = np.asarray(requirements, dtype=np.int64)
        self._full = np.asarray(
            [(1 << r) - 1 for r in requirements],
            dtype=np.min_scalar_type((1 << max(requirements, default=0)) - 1),
        )
        self._criterion_of = np.asarray(criterion_of, dtype=np.int64)
        self._always = np.flatnonzero(self._requirements == 0)

        bounds: set[int] = set()
        for crit_list in self.lists:
            for criterion in crit_list.criteria:
                for match in criterion.any_of:
                    if match.age_min is not None:
                        bounds.add(match.age_min)
                    if match.age_max is not None:
                        bounds.add(match.age_max + 1)
        # Ages between two consecutive bounds meet exactly the same age conditions.
        self._bounds = tuple(sorted(bounds))
        self._reads_age = np.asarray([i.age for i in inputs_of], dtype=np.int64)
        self._reads_sex = np.asarray([i.sex for i in inputs_of], dtype=np.int64)
        self._reads_unresolved = np.asarray([i.unresolved for i in inputs_of], dtype=np.int64)
        self._is_pim = np.asarray([i.kind == "pim" for i in inputs_of], dtype=bool)
        self._id_names = sorted({i.criterion_id for i in inputs_of})
        rank = {name: k for k, name in enumerate(self._id_names)}
        self._rank = np.asarray([rank[i.criterion_id] for i in inputs_of], dtype=np.int64)
        self._id_array = pa.array(self._id_names, pa.string())
        self._substances = max(1, len(engine.kb.substances))
        # Whether the missing drugs of two omission alternatives overlap, as merge_hits reads them.
        self._overlap = np.zeros((len(inputs_of), len(inputs_of)), dtype=bool)
        missing = [k for k, i in enumerate(inputs_of) if i.kind == "omission" and i.absent_drugs]
        for x in missing:
            for y in missing:
                pair = [inputs_of[x].absent_drugs, inputs_of[y].absent_drugs]
                self._overlap[x, y] = x <= y and len(join_omissions(pair)) == 1
        self._overlap |= self._overlap.T

        # (alternative, facts, views) -> 0 when it does not hold, else a number into the found tables.
        self._memo: dict[tuple[int, int, tuple[int, ...]], int] = {}
        self._reset()
        self._group_memo: dict[tuple[str, ...], list[int]] = {}

    def _reset(self) -> None:
        self._memo.clear()
        self._store = _Store.empty()
        self._found_count = 1
        # Its target drugs as (position among the key's items, substance), flat, from offset.
        self._found_offset: list[int] = [0]
        self._found_size: list[int] = [0]
        self._target_position: list[int] = []
        self._target_substance: list[int] = []

    # -- per catalog line and per condition set -----------------------------------------------------

    def _grow(self) -> None:
        """Table rows for the catalog lines met since the last chunk."""
        table = self._lines
        for line in self.catalog.lines[len(table.rows) :]:
            found: dict[int, tuple[int, dict[int, list[int]]]] = {}  # alternative -> bits, selected
            if line.criteria_relevant:  # the engine's input is cut to these lines
                for reader, by_selector in zip(self._readers, self._by_selector, strict=True):
                    for k, exposure in enumerate(line.exposures):
                        for sid in reader.selectors_of(exposure):
                            for number, bit in by_selector.get(sid, ()):
                                bits, selected = found.get(number, (0, {}))
                                selected.setdefault(k, []).append(sid)
                                found[number] = (bits | bit, selected)
            required: list[tuple[int, int, int]] = []
            optional: list[tuple[int, int, int]] = []
            exposures = line.exposures
            for number in sorted(found):
                bits, selected = found[number]
                details = self._alternatives[number][1].details
                view_key = (
                    number,
                    *(
                        (exposures[k].substance_id, tuple(sids), _details(exposures[k]) if details else None)
                        for k, sids in sorted(selected.items())
                    ),
                )
                entry = (number, bits, self._views.setdefault(view_key, len(self._views)))
                (required if bits else optional).append(entry)
            table.rows.append(required)
            self._lines_optional.rows.append(optional)
        table.freeze()
        self._lines_optional.freeze()

    def _groups_of(self, codes: tuple[str, ...]) -> list[int]:
        """Condition groups (numbered over every list) present for a set of codes, ascending."""
        found = self._group_memo.get(codes)
        if found is None:
            norm = [normalise_cim10(c) for c in codes]  # as the contract Patient holds them
            found = sorted(
                base + g
                for reader, base in zip(self._readers, self._group_base, strict=True)
                for g in reader.groups_of(norm)
            )
            if len(self._group_memo) >= MEMO_LIMIT:
                self._group_memo.clear()
            self._group_memo[codes] = found
        return found

    # -- the chunk --------------------------------------------------------------------------------

    def run_batch(
        self,
        offsets: npt.NDArray[np.int64],
        line_ids: npt.NDArray[np.int32],
        unresolved: npt.NDArray[np.bool_],
        contexts: Sequence[Context],
        patients: Sequence[Patient],
    ) -> CriteriaColumns:
        """Patient p's lines are ``catalog.lines[line_ids[offsets[p]:offsets[p + 1]]]``;
        ``unresolved[p]``: p has an unresolved line; ``patients[p]`` is ``contexts[p].patient()``."""
        n = len(contexts)
        sets: dict[tuple[str, ...], int] = {}
        age = np.fromiter((-1 if c.age is None else c.age for c in contexts), dtype=np.int64, count=n)
        sex = np.fromiter((SEX_CODES.index(c.sex) for c in contexts), dtype=np.int64, count=n)
        conditions = np.fromiter(
            (sets.setdefault(c.conditions, len(sets)) for c in contexts), dtype=np.int64, count=n
        )
        return self.run_facts(offsets, line_ids, unresolved, age, sex, conditions, tuple(sets), patients)

    def run_facts(
        self,
        offsets: npt.NDArray[np.int64],
        line_ids: npt.NDArray[np.int32],
        unresolved: npt.NDArray[np.bool_],
        age: npt.NDArray[np.integer],
        sex: npt.NDArray[np.integer],
        conditions: npt.NDArray[np.integer],
        condition_sets: Sequence[tuple[str, ...]],
        patients: Sequence[Patient],
    ) -> CriteriaColumns:
        """:meth:`run_batch` with the patient facts as arrays: ``age`` in years (negative: unknown),
        ``sex`` an index into :data:`SEX_CODES`, ``conditions`` an index into ``condition_sets``
        (CIM-10 codes). ``patients[p]`` is the contract patient of these facts; it is read only when
        an alternative is first evaluated on one of p's keys."""
        n = len(offsets) - 1
        if len(self._memo) >= MEMO_LIMIT:
            self._reset()
        self._grow()
        n_alt = len(self._alternatives)
        none = np.zeros(0, dtype=np.int64)
        if n == 0 or n_alt == 0:
            zeros = np.zeros(n, dtype=np.int32)
            return CriteriaColumns(zeros, zeros.copy(), self._ids(none, none, n), self._ids(none, none, n))
        years = np.asarray(age, dtype=np.int64)
        bounds = np.asarray(self._bounds, dtype=np.int64)
        band = np.where(years < 0, 0, np.searchsorted(bounds, years, side="right") + 1)
        unres = np.asarray(unresolved, dtype=np.int64)
        by_set = [self._groups_of(codes) for codes in condition_sets]
        set_count = np.fromiter((len(g) for g in by_set), dtype=np.int64, count=len(by_set))
        set_flat = np.fromiter((g for gs in by_set for g in gs), dtype=np.int64, count=int(set_count.sum()))
        which = np.asarray(conditions, dtype=np.int64)
        group_count = set_count[which]
        group_ids = set_flat[ranges((np.cumsum(set_count) - set_count)[which], group_count)]

        # 1. (patient, alternative, view, line) for every item of every patient, where the alternative
        # can hold: a pair that misses a required drug or condition is false, dropped with its items.
        everyone = np.arange(n, dtype=np.int64)
        line_owner = np.repeat(everyone, np.diff(offsets))
        lids = np.asarray(line_ids, dtype=np.int64)
        group_owner = np.repeat(everyone, group_count)
        met = np.zeros(n * n_alt, dtype=self._full.dtype)  # requirements met, as bits, by pair
        required = []
        for table, owner, rows in ((self._lines, line_owner, lids), (self._groups, group_owner, group_ids)):
            who, at, row = table.entries(owner, rows)
            key, bits = who * n_alt + table.alternative[at], table.bits[at]
            required.append((table, key, at, row))
            for pattern in table.patterns:  # few: a fancy |= is exact among entries of one pattern
                met[key[bits == pattern]] |= met.dtype.type(pattern)
        fires = (met.reshape(n, n_alt) == self._full).reshape(-1)
        optional = []
        for table, owner, rows in (
            (self._lines_optional, line_owner, lids),
            (self._groups_optional, group_owner, group_ids),
        ):
            who, at, row = table.entries(owner, rows)
            optional.append((table, who * n_alt + table.alternative[at], at, row))
        keys, views, lines = [], [], []
        for (table, key, at, row), is_line in zip(
            [*required, *optional], (True, False, True, False), strict=True
        ):
            kept = fires[key]
            keys.append(key[kept])
            views.append(table.view[at[kept]])
            lines.append(row[kept] if is_line else np.full(int(kept.sum()), -1, dtype=np.int64))
        if len(self._always):  # an alternative that requires nothing: one item for every patient
            k = len(self._always)
            keys.append(np.repeat(everyone * n_alt, k) + np.tile(self._always, n))
            views.append(np.full(n * k, _ALWAYS, dtype=np.int64))
            lines.append(views[-1])
        pair_key, view, line = np.concatenate(keys), np.concatenate(views), np.concatenate(lines)
        # A pair's items in view order (one sort key while pairs and views fit 31 bits). The keys come
        # in a few runs already ordered by patient, which a merge sort ("stable") exploits.
        if n * n_alt < _VIEW_SHIFT and len(self._views) < _VIEW_SHIFT:
            order = np.argsort(pair_key << 32 | (view + _VIEW_SHIFT), kind="stable")
        else:
            order = np.lexsort((view, pair_key))
        pair_key, view, line = pair_key[order], view[order], line[order]
        change = np.ones(len(pair_key), dtype=bool)
        change[1:] = pair_key[1:] != pair_key[:-1]
        starts = np.flatnonzero(change)
        lengths = np.diff(np.append(starts, len(view)))
        pair_key = pair_key[starts]
        pair_p, pair_a = pair_key // n_alt, pair_key % n_alt

        # 2, 3. Whether each pair's alternative holds, through its key: alternative, facts read, views.
        facts = (
            self._reads_age[pair_a] * band[pair_p]
            | (self._reads_sex[pair_a] * np.asarray(sex, dtype=np.int64)[pair_p]) << 8
            | (self._reads_unresolved[pair_a] * unres[pair_p]) << 10
        )
        found = self._found(pair_p, pair_a, facts, view, line, starts, lengths, unres, patients)

        # 4. The merge, counted.
        holds = found > 0
        owners, alternatives, found, hit_start = pair_p[holds], pair_a[holds], found[holds], starts[holds]
        is_pim = self._is_pim[alternatives]
        stopp = self._pim_findings(
            owners[is_pim], alternatives[is_pim], found[is_pim], hit_start[is_pim], line, n
        )
        start = self._omission_findings(owners[~is_pim], alternatives[~is_pim], found[~is_pim], n)
        stopp_ids = self._ids(owners[is_pim], self._rank[alternatives[is_pim]], n)
        start_ids = self._ids(owners[~is_pim], self._rank[alternatives[~is_pim]], n)
        return CriteriaColumns(stopp, start, stopp_ids, start_ids)

    def _found(
        self,
        pair_p: Ints,
        pair_a: Ints,
        facts: Ints,
        view: Ints,
        line: Ints,
        starts: Ints,
        lengths: Ints,
        unres: Ints,
        patients: Sequence[Patient],
    ) -> Ints:
        """Each pair's found number (0: its alternative does not hold), each distinct key evaluated once.

        Keys met in earlier chunks are looked up in the store by hash, then checked view by view; the
        others are grouped by hash (each group checked against its first pair), looked up in the memo
        or evaluated, and stored.
        """
        if not len(pair_p):
            return np.zeros(0, dtype=np.int64)
        with np.errstate(over="ignore"):
            pair_hash = np.add.reduceat(_mix(view.astype(np.uint64)), starts) + _mix(
                (pair_a.astype(np.uint64) << np.uint64(40)) | facts.astype(np.uint64)
            )
        out = np.zeros(len(pair_p), dtype=np.int64)
        store = self._store
        if len(store.hash):
            at = np.minimum(np.searchsorted(store.hash, pair_hash), len(store.hash) - 1)
            known = (
                (store.hash[at] == pair_hash)
                & (store.alternative[at] == pair_a)
                & (store.facts[at] == facts)
                & (store.length[at] == lengths)
            )
            _differ(known, view, starts, lengths, store.views, store.start[at])
            out[known] = store.found[at[known]]
            new_pairs = np.flatnonzero(~known)
        else:
            new_pairs = np.arange(len(pair_p), dtype=np.int64)
        if not len(new_pairs):
            return out

        order = new_pairs[np.argsort(pair_hash[new_pairs])]
        sorted_hash = pair_hash[order]
        first_of = np.ones(len(order), dtype=bool)
        first_of[1:] = sorted_hash[1:] != sorted_hash[:-1]
        first = order[first_of]  # one representative per distinct hash
        rep = np.empty(len(pair_p), dtype=np.int64)
        rep[order] = first[np.cumsum(first_of) - 1]
        rep = rep[new_pairs]
        same = (pair_a[new_pairs] == pair_a[rep]) & (facts[new_pairs] == facts[rep])
        same &= lengths[new_pairs] == lengths[rep]
        _differ(same, view, starts[new_pairs], lengths[new_pairs], view, starts[rep])
        alone = new_pairs[~same]  # unlike its representative (a hash collision): its own representative
        reps = np.concatenate((first, alone))
        memo = self._memo
        r_start, r_length = starts[reps], lengths[reps]
        items = ranges(r_start, r_length)
        r_views, r_lines = view[items].tolist(), line[items].tolist()
        r_first = (np.cumsum(r_length) - r_length).tolist()
        found: list[int] = []
        for a, f, s, ln, p in zip(
            pair_a[reps].tolist(),
            facts[reps].tolist(),
            r_first,
            r_length.tolist(),
            pair_p[reps].tolist(),
            strict=True,
        ):
            key = (a, f, tuple(r_views[s : s + ln]))
            number = memo.get(key)
            if number is None:
                number = memo[key] = self._evaluate(a, r_lines[s : s + ln], patients[p], bool(unres[p]))
            found.append(number)
        by_rep = np.asarray(found, dtype=np.int64)
        position = np.empty(len(pair_p), dtype=np.int64)
        position[first] = np.arange(len(first))
        out[new_pairs] = by_rep[position[rep]]
        out[alone] = by_rep[len(first) :]
        self._store = store.add(
            pair_hash[first],
            pair_a[first],
            facts[first],
            r_length[: len(first)],
            view[items[: int(r_length[: len(first)].sum())]],
            by_rep[: len(first)],
        )
        return out

    def _evaluate(self, number: int, items: list[int], patient: Patient, unresolved: bool) -> int:
        """The engine's outcome of one alternative on one pair's items (lines numbered by catalog id)."""
        reader, inputs = self._alternatives[number]
        lines = self.catalog.lines
        exposures = tuple(e for i in items if i >= 0 for e in self.catalog.numbered(lines[i], i))
        ctx = CheckContext(
            exposures=exposures,
            patient=patient,
            # A line number no catalog line has: only whether there is one counts.
            unresolved_lines=(len(lines),) if unresolved else (),
        )
        hit = reader.hit(inputs, ctx)
        if hit is None:
            return 0
        position = {i: k for k, i in enumerate(items) if i >= 0}
        targets = sorted((position[i], s) for i, s in hit.targets)
        self._found_offset.append(len(self._target_position))
        self._found_size.append(len(targets))
        self._target_position.extend(k for k, _ in targets)
        self._target_substance.extend(sid for _, sid in targets)
        self._found_count += 1
        return self._found_count - 1

    # -- the merge, counted -------------------------------------------------------------------------

    def _pim_findings(
        self, owner: Ints, alternative: Ints, found: Ints, start: Ints, line: Ints, n: int
    ) -> npt.NDArray[np.int32]:
        """Per patient, the number of distinct target sets among its hit PIM criteria.

        Alternatives that hold come ordered by patient then alternative (so then criterion); the
        items of alternative k start at ``start[k]`` in ``line``.
        """
        m = len(found)
        if not m:
            return np.zeros(n, dtype=np.int32)
        # A hit criterion: the alternatives that hold of one criterion of one patient.
        criterion = self._criterion_of[alternative]
        new = np.ones(m, dtype=bool)
        new[1:] = (owner[1:] != owner[:-1]) | (criterion[1:] != criterion[:-1])
        hit_of_alt = np.cumsum(new) - 1
        hit_owner = owner[new]
        hits = len(hit_owner)
        size = np.asarray(self._found_size, dtype=np.int64)[found]
        at = ranges(np.asarray(self._found_offset, dtype=np.int64)[found], size)
        position = np.asarray(self._target_position, dtype=np.int64)[at]
        substance = np.asarray(self._target_substance, dtype=np.int64)[at]
        alt_of = np.repeat(np.arange(m, dtype=np.int64), size)
        # Each target drug as a number (line, substance); each hit's drugs ascending and distinct.
        drug = line[start[alt_of] + position] * self._substances + substance
        hit_of = hit_of_alt[alt_of]
        span = int(drug.max(initial=0)) + 1
        if hits * span < 1 << 62:
            order = np.argsort(hit_of * span + drug, kind="stable")  # already in hit order: nearly sorted
        else:
            order = np.lexsort((drug, hit_of))
        drug, hit_of = drug[order], hit_of[order]
        distinct = np.ones(len(drug), dtype=bool)
        distinct[1:] = (drug[1:] != drug[:-1]) | (hit_of[1:] != hit_of[:-1])
        drug, hit_of = drug[distinct], hit_of[distinct]
        size = np.bincount(hit_of, minlength=hits)
        first = np.cumsum(size) - size
        # A digest of (patient, target set): hits with the same one make one finding, each checked
        # drug by drug against the first with its digest.
        with np.errstate(over="ignore"):
            digest = _mix(hit_owner.astype(np.uint64))
            some = size > 0
            if some.any():
                digest[some] += np.add.reduceat(_mix(drug.astype(np.uint64) + np.uint64(1)), first[some])
        order = np.argsort(digest)
        new = np.ones(hits, dtype=bool)
        new[1:] = digest[order][1:] != digest[order][:-1]
        rep = np.empty(hits, dtype=np.int64)
        rep[order] = order[np.flatnonzero(new)][np.cumsum(new) - 1]
        same = (size == size[rep]) & (hit_owner == hit_owner[rep])
        mine = same[hit_of]
        theirs = np.where(mine, first[rep[hit_of]] + np.arange(len(drug)) - first[hit_of], 0)
        same[hit_of[mine & (drug != drug[theirs])]] = False
        count = np.bincount(hit_owner[order][new], minlength=n).astype(np.int32)
        for p in np.unique(hit_owner[~same]).tolist():  # a digest collision: that patient counted exactly
            mine_hits = np.flatnonzero(hit_owner == p).tolist()
            count[p] = len({tuple(drug[first[k] : first[k] + size[k]].tolist()) for k in mine_hits})
        return count

    def _omission_findings(
        self, owner: Ints, alternative: Ints, found: Ints, n: int
    ) -> npt.NDArray[np.int32]:
        """Per patient, the number of groups its hit omission criteria make (``join_omissions``).

        Alternatives that hold come ordered by patient then alternative. Two hit criteria join when
        the missing drugs of an alternative of one overlap those of an alternative of the other.
        """
        criterion = self._criterion_of[alternative]
        new = np.ones(len(owner), dtype=bool)
        new[1:] = (owner[1:] != owner[:-1]) | (criterion[1:] != criterion[:-1])
        start = np.bincount(owner[new], minlength=n).astype(np.int32)
        if not (start > 1).any():
            return start
        # Every two alternatives of one patient (i before j) of different criteria: do they overlap?
        count = np.bincount(owner, minlength=n)
        later = np.cumsum(count)[owner] - np.arange(len(owner)) - 1
        i = np.repeat(np.arange(len(owner), dtype=np.int64), later)
        j = ranges(np.arange(len(owner), dtype=np.int64) + 1, later)
        joins = np.flatnonzero((criterion[i] != criterion[j]) & self._overlap[alternative[i], alternative[j]])
        # Each hit criterion is a finding, less one for every join of two groups (transitively).
        parent: dict[int, int] = {}
        patient = -1
        for p, x, y in zip(
            owner[i[joins]].tolist(), criterion[i[joins]].tolist(), criterion[j[joins]].tolist(), strict=True
        ):
            if p != patient:
                patient, parent = p, {}
            while parent.get(x, x) != x:
                x = parent[x]
            while parent.get(y, y) != y:
                y = parent[y]
            if x != y:
                parent[max(x, y)] = min(x, y)
                start[p] -= 1
        return start

    def _ids(self, owner: Ints, rank: Ints, n: int) -> pa.ListArray:
        """Each patient's criterion ids (ranks into the sorted ids), sorted and distinct, as a list column."""
        cited = np.zeros((n, len(self._id_names)), dtype=bool)
        cited[owner, rank] = True
        patient, ranks = np.nonzero(cited)  # by patient, then rank: sorted, distinct
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(np.bincount(patient, minlength=n), out=offsets[1:])
        values = self._id_array.take(pa.array(ranks))
        return pa.ListArray.from_arrays(pa.array(offsets), values, type=pa.list_(pa.string()))
