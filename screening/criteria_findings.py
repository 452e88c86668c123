"""The engine's merge of STOPP/START hits into findings (``merge_hits``), counted per patient in arrays.

A patient's hit criteria (the union of their alternatives that hold) with the same target drugs make
one PIM finding; omission hits join as ``join_omissions`` joins them. The inputs are the alternatives
that hold, ordered by patient then alternative, where alternatives are numbered so that those of one
criterion are consecutive and the criterion ids ascend with the number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from iatro.checks.explicit_criteria import join_omissions
from screening import criteria_keys
from screening.checks import MEMO_LIMIT
from screening.output_schema import ENCODED_LIST
from screening.segments import ranges

Ints = npt.NDArray[np.int64]
PACK_LIMIT = 1 << 62  # a (hit, drug) pair is packed into one sort key below this


@dataclass(frozen=True, slots=True)
class Targets:
    """The target drugs of each found number, flat from ``offset[f]`` (``size[f]`` of them): as the
    position among its key's distinct items of the item that holds it, and its substance."""

    offset: Ints
    size: Ints
    position: Ints
    substance: Ints


@dataclass(frozen=True, slots=True)
class Items:
    """The items of a chunk's pairs, a pair's in view order: ``line`` (catalog line, -1: none) per item;
    each distinct item (a run of items with one view) starts at ``run_first`` and has ``run_length``."""

    line: Ints
    run_first: Ints
    run_length: Ints


def pim_findings(
    owner: Ints, criterion: Ints, found: Ints, first_run: Ints, targets: Targets, items: Items,
    substances: int, n: int,
) -> npt.NDArray[np.int32]:  # fmt: skip
    """Per patient, the number of distinct target sets among its hit PIM criteria.

    Alternative k (that holds) has its distinct items from ``first_run[k]`` on: a target held by one
    of them is held by every item of its run (equal views are interchangeable to the alternative).
    """
    m = len(found)
    if not m:
        return np.zeros(n, dtype=np.int32)
    # A hit criterion: the alternatives that hold of one criterion of one patient.
    new = np.ones(m, dtype=bool)
    new[1:] = (owner[1:] != owner[:-1]) | (criterion[1:] != criterion[:-1])
    hit_of_alt = np.cumsum(new) - 1
    hit_owner = owner[new]
    hits = len(hit_owner)
    size = targets.size[found]
    at = ranges(targets.offset[found], size)
    alt_of = np.repeat(np.arange(m, dtype=np.int64), size)
    run = first_run[alt_of] + targets.position[at]
    copies = items.run_length[run]
    target_of = np.repeat(np.arange(len(run), dtype=np.int64), copies)
    # Each target drug as a number (line, substance); each hit's drugs ascending and distinct.
    drug = items.line[ranges(items.run_first[run], copies)] * substances + targets.substance[at][target_of]
    hit_of = hit_of_alt[alt_of][target_of]
    span = int(drug.max(initial=0)) + 1
    if hits * span < PACK_LIMIT:
        hit_of, drug = np.divmod(np.sort(hit_of * span + drug, kind="stable"), span)
    else:
        order = np.lexsort((drug, hit_of))
        drug, hit_of = drug[order], hit_of[order]
    distinct = np.ones(len(drug), dtype=bool)
    distinct[1:] = (drug[1:] != drug[:-1]) | (hit_of[1:] != hit_of[:-1])
    drug, hit_of = drug[distinct], hit_of[distinct]
    size = np.bincount(hit_of, minlength=hits)
    first = np.cumsum(size) - size
    # A digest of each target set: hits of one patient with the same one make one finding, each checked
    # drug by drug against the first with its digest. Sorted with the patient (already ascending,
    # which a merge sort exploits) in one key: 32 bits of digest are enough for a few hits.
    digest = np.zeros(hits, dtype=np.uint64)
    some = size > 0
    if some.any():
        with np.errstate(over="ignore"):
            digest[some] = np.add.reduceat(
                criteria_keys.mix(drug.astype(np.uint64) + np.uint64(1)), first[some]
            )
    key = hit_owner << 32 | (digest >> np.uint64(32)).astype(np.int64)
    order = np.argsort(key, kind="stable")
    new = np.ones(hits, dtype=bool)
    new[1:] = key[order][1:] != key[order][:-1]
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


class OmissionGroups:
    """Per patient, the number of findings its hit omission criteria make: ``merge_hits`` joins two
    hits when the drugs they found missing overlap (``join_omissions``), transitively. A hit's missing
    drugs are those of its alternatives that hold; so the findings are the connected groups of the
    patient's omission alternatives that hold, two being joined when they belong to one criterion or
    their missing drugs overlap. Counted by the set of those alternatives (a bit mask), memoised.
    """

    def __init__(
        self, criterion_of: Sequence[int], kinds: Sequence[str], absent_drugs: Sequence[tuple[str, ...]]
    ) -> None:
        self._omissions = [a for a, kind in enumerate(kinds) if kind == "omission"]
        # Omission alternative k (bit k) -> the bits of those it joins, itself included.
        self._joins = [
            sum(
                1 << j
                for j, y in enumerate(self._omissions)
                if criterion_of[x] == criterion_of[y]
                or (
                    absent_drugs[x]
                    and absent_drugs[y]
                    and len(join_omissions([absent_drugs[x], absent_drugs[y]])) == 1
                )
            )
            for x in self._omissions
        ]
        self._bit = np.zeros(len(kinds), dtype=np.uint64)
        self._fits = len(self._omissions) <= 64  # one 64-bit mask per patient, computed in arrays
        if self._fits:
            self._bit[self._omissions] = np.uint64(1) << np.arange(len(self._omissions), dtype=np.uint64)
        self._index = {a: k for k, a in enumerate(self._omissions)}
        self._memo: dict[int, int] = {}

    def count(self, owner: Ints, alternative: Ints, criterion: Ints, n: int) -> npt.NDArray[np.int32]:
        """``owner``, ``alternative``, ``criterion``: the omission alternatives that hold, ordered by
        patient then alternative."""
        new = np.ones(len(owner), dtype=bool)
        new[1:] = (owner[1:] != owner[:-1]) | (criterion[1:] != criterion[:-1])
        count = np.bincount(owner[new], minlength=n).astype(np.int32)  # hit criteria
        if not (count > 1).any():  # only hits of two criteria or more can join
            return count
        if len(self._memo) >= MEMO_LIMIT:
            self._memo.clear()
        first = np.flatnonzero(np.diff(owner, prepend=-1))  # each patient's first alternative
        several = count[owner[first]] > 1
        if self._fits:
            mask = np.bitwise_or.reduceat(self._bit[alternative], first)[several]
            order = np.argsort(mask)
            new = np.ones(len(order), dtype=bool)
            new[1:] = mask[order][1:] != mask[order][:-1]
            which = np.empty(len(order), dtype=np.int64)
            which[order] = np.cumsum(new) - 1
            masks = mask[order][new].tolist()
        else:
            ends = np.append(first, len(owner))[1:][several].tolist()
            held = alternative.tolist()
            masks = [
                sum(1 << self._index[a] for a in held[f:e])
                for f, e in zip(first[several].tolist(), ends, strict=True)
            ]
            which = np.arange(len(masks))
        memo = self._memo
        groups = [memo[m] if m in memo else memo.setdefault(m, self._groups(m)) for m in masks]
        count[owner[first[several]]] = np.asarray(groups, dtype=np.int32)[which]
        return count

    def _groups(self, mask: int) -> int:
        groups = 0
        while mask:
            group = mask & -mask  # a group from its lowest alternative, grown until it joins no more
            grown = 0
            while group != grown:
                grown, rest = group, group
                while rest:
                    group |= self._joins[(rest & -rest).bit_length() - 1]
                    rest &= rest - 1
                group &= mask
            mask &= ~group
            groups += 1
        return groups


def cited_ids(owner: Ints, rank: Ints, names: pa.Array, n: int) -> pa.ListArray:
    """Each patient's criterion ids, sorted and distinct, as a list column of dictionary-encoded
    ``names``. ``rank`` indexes the sorted ``names`` and ascends with the alternative, so that it
    ascends within each patient already."""
    distinct = np.ones(len(owner), dtype=bool)
    distinct[1:] = (owner[1:] != owner[:-1]) | (rank[1:] != rank[:-1])
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(owner[distinct], minlength=n), out=offsets[1:])
    values = pa.DictionaryArray.from_arrays(pa.array(rank[distinct].astype(np.int32)), names)
    return pa.ListArray.from_arrays(pa.array(offsets), values, type=ENCODED_LIST)
