"""Pairing the exposures of many prescriptions at once, and merging a substance met on several lines.

Pure array functions of the kernel (:mod:`iatro.batch.interactions`): no knowledge base, no patient.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from iatro.batch.hits import I32, I64

Bool = npt.NDArray[np.bool_]
Index = npt.NDArray[Any]  # positions, int32 when they fit (see pairs_within), else int64


def repeats(presc: I64, rank: I64, sid: I32, drop: bool) -> tuple[Bool | None, I64]:
    """The exposures to keep, and those whose substance is on another kept exposure of its prescription.

    ``presc`` (sorted) and ``sid`` are each exposure's prescription and substance, ``rank`` its
    exposure's rank in (substance, exposure) order: equal for the same exposure met twice. With
    ``drop``, an exposure met again in its prescription (the same product and dose on two lines) is
    dropped after its first occurrence (None: nothing to drop). That keeps every alert: the first
    occurrence meets each partner the later ones meet, through the same cell and qualification,
    and the merged alert keeps the first line pair (see :func:`merge_same_pair`). It is only valid
    when the first occurrence is the one exposure of its line that meets a rule (a combination's two
    substances are never paired together); the caller says so with ``drop``.

    Returns the keep mask and the positions (among the kept exposures) to merge.
    """
    key = presc * (int(rank.max(initial=0)) + 1) + rank
    by = np.argsort(key, kind="stable")  # a stable sort keeps each exposure's occurrences in line order
    sorted_key = key.take(by)
    new = np.empty(len(key), dtype=np.bool_)
    new[:1] = True
    np.not_equal(sorted_key[1:], sorted_key[:-1], out=new[1:])
    keep = dropped = None
    if drop and not new.all():
        keep = np.empty(len(key), dtype=np.bool_)
        keep[by] = new  # the first occurrence of each exposure in its prescription
        by = by[new]
        dropped = np.flatnonzero(~keep)
    # The occurrences of one substance are together in (prescription, rank) order.
    sorted_sid, sorted_presc = sid.take(by), presc.take(by)
    same = (sorted_sid[1:] == sorted_sid[:-1]) & (sorted_presc[1:] == sorted_presc[:-1])
    if not same.any():
        return keep, np.zeros(0, dtype=np.int64)
    twice = np.zeros(len(by), dtype=np.bool_)
    twice[1:] |= same
    twice[:-1] |= same
    duplicated = by[twice]
    if dropped is not None:
        duplicated -= np.searchsorted(dropped, duplicated)  # its position among the kept exposures
    return keep, duplicated


def pairs_within(
    presc: I64, sig: I32, n_presc: int, table: npt.NDArray[np.int16], table_size: int
) -> tuple[Index, Index, npt.NDArray[np.int16]]:
    """Every pair of exposures of a prescription whose signatures meet a rule, and its table cell.

    ``presc`` and ``sig`` give each exposure's prescription (sorted) and signature (a row of the flat
    ``table_size`` x ``table_size`` pair ``table``). Each exposure is paired with every later one of
    its prescription: one flat run of candidates, already in prescription then position order,
    looked up in one gather. Returns the pairs (exposure positions) and their cells.
    """
    n = len(presc)
    counts = np.bincount(presc, minlength=n_presc)
    total = int((counts * (counts - 1) // 2).sum())
    # int32 halves the memory the candidates stream through, when every index fits in it.
    dtype = np.int32 if max(n, total, table_size * table_size) < np.iinfo(np.int32).max else np.int64
    ends: Index = np.cumsum(counts).astype(dtype)
    exposure: Index = np.arange(n, dtype=dtype)
    after: Index = ends[presc] - 1 - exposure  # how many exposures follow, in the same prescription
    # Candidate t of exposure e's run pairs it with e + 1 + (t - start[e]).
    start: Index = np.cumsum(after, dtype=dtype) - after
    second: Index = np.repeat(exposure + 1 - start, after)
    np.add(second, np.arange(total, dtype=dtype), out=second)
    flat = np.repeat(sig.astype(dtype) * table_size, after)
    flat += sig.take(second)
    cell = table.take(flat)
    found = np.flatnonzero(cell >= 0)
    first: Index = np.repeat(exposure, after).take(found)
    return first, second.take(found), cell.take(found)


def merge_same_pair(
    prescription: I64,
    substance_a: I32,
    substance_b: I32,
    level: npt.NDArray[np.int8],
    rule: I32,
    unresolved: Bool,
    n_substances: int,
    n_rules: int,
    rule_order: I64,
) -> tuple[I64, I64, Bool]:
    """One row per substance pair where a substance is on several lines, as the engine's alert.

    The arrays are the rows (in row order) that involve such a substance. The merged row is the
    earliest row of the pair whose rule is the main one: worst level, then smallest rule id
    (``rule_order`` ranks rule indices by id), so its lines are those of the first line pair that
    gives it; ``unresolved`` is true if any row's is. Returns the rows to drop, the rows kept for a
    pair met several times, and their ``unresolved``.
    """
    key = (prescription * n_substances + substance_a) * n_substances
    key += substance_b
    # One stable sort on the pair key: each pair's rows together, earliest first.
    by = np.argsort(key, kind="stable")
    sorted_key = key[by]
    head = np.ones(len(by), dtype=np.bool_)
    head[1:] = sorted_key[1:] != sorted_key[:-1]
    if head.all():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.bool_)
    starts = np.flatnonzero(head)
    sizes = np.diff(starts, append=len(by))
    code = (4 - level[by].astype(np.int64)) * n_rules + rule_order[rule[by]]
    main = code == np.repeat(np.minimum.reduceat(code, starts), sizes)
    group = np.cumsum(head) - 1
    candidates = np.flatnonzero(main)
    first = np.ones(len(candidates), dtype=np.bool_)
    first[1:] = group[candidates[1:]] != group[candidates[:-1]]
    kept = candidates[first]  # per pair, its earliest row with the main rule (in sorted order)
    drop = np.ones(len(by), dtype=np.bool_)
    drop[kept] = False
    several = sizes > 1
    merged_unresolved = np.logical_or.reduceat(unresolved[by], starts)
    return by[drop], by[kept[several]], merged_unresolved[several]
