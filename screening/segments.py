"""Reductions over the segments of a CSR layout, the shape every per-patient result is computed in.

Patient ``p`` of a chunk owns the items ``offsets[p]:offsets[p + 1]`` (its lines, or the entries of its
lines); ``offsets`` starts at 0, never decreases and ends at the number of items. A patient may own no
item: every reduction here gives such a segment its neutral value rather than what ``ufunc.reduceat``
would return for it (the next item).

Distinct values are found by sorting integer keys: ``np.unique`` on int64 goes through a hash table in
numpy 2.x that is an order of magnitude slower than a sort on these sizes. Keys built from claims are
grouped by patient already (extracts come sorted by patient, then date): the stable sort (a merge sort
that finds runs and gallops over disjoint ones) is then three times faster than the default one,
and a quarter slower on keys in random order.

Small integers (codes, ids) are ordered faster still by :func:`stable_order`: Arrow sorts integers
spanning at most 4,096 values by counting, in linear time (some seven times faster than numpy's
stable sort of int64 on a million rows; beyond that range Arrow's sort is slower than numpy's), and
numpy sorts 16-bit integers by radix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

I64 = npt.NDArray[np.int64]
Offsets = npt.NDArray[np.int64]


def lengths(offsets: Offsets) -> I64:
    return np.diff(offsets).astype(np.int64, copy=False)


def owners(offsets: Offsets) -> I64:
    """The segment of each item."""
    return np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), lengths(offsets))


def segment_sum(values: npt.NDArray[np.generic], offsets: Offsets) -> I64:
    """Sum of each segment (0 for an empty one), as int64."""
    cumulative = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(values, dtype=np.int64, out=cumulative[1:])
    return cumulative[offsets[1:]] - cumulative[offsets[:-1]]


def segment_reduce(
    ufunc: np.ufunc, values: npt.NDArray[Any], offsets: Offsets, empty: int
) -> npt.NDArray[Any]:
    """``ufunc`` (maximum, bitwise_or, ...) over each segment; ``empty`` for an empty segment."""
    out = np.full(len(offsets) - 1, empty, dtype=values.dtype)
    filled = offsets[1:] > offsets[:-1]
    if filled.any():
        # Between two consecutive non-empty segments only empty ones lie, so each reduction stops at
        # the start of the next non-empty segment, which is its own end.
        out[filled] = ufunc.reduceat(values, offsets[:-1][filled])
    return out


def expand(ids: npt.NDArray[np.integer], item_offsets: Offsets) -> tuple[I64, I64]:
    """The items of each id, ``ids`` indexing a CSR ``item_offsets``: (position in ``ids``, item index).

    Items come in the order of ``ids``, then in their order within the id.
    """
    start = item_offsets[ids]
    count = item_offsets[np.asarray(ids, dtype=np.int64) + 1] - start
    position = np.repeat(np.arange(len(ids), dtype=np.int64), count)
    return position, ranges(start, count)


def ranges(start: npt.NDArray[np.integer], count: npt.NDArray[np.integer]) -> I64:
    """Indices ``start[k] .. start[k] + count[k] - 1`` for every k, concatenated (a CSR gather)."""
    first = np.cumsum(count) - count  # where each range starts in the output
    out: I64 = np.arange(int(count.sum()), dtype=np.int64) + np.repeat(start - first, count)
    return out


def sort_keys(keys: I64) -> I64:
    """``keys`` ascending (see the module's note on the kind of sort)."""
    return np.sort(keys, kind="stable")


_COUNTING_RANGE = 4096  # Arrow sorts integers spanning at most this many values by counting


def stable_order(values: npt.NDArray[np.integer], bound: int) -> I64:
    """The indices that sort ``values`` (``0 <= values < bound``), equal values in their order.

    Arrow's counting sort up to 4,096 values; numpy's radix sort of 16-bit integers up to 65,536
    (numpy's only linear sort: it is slower than Arrow's on large arrays); beyond, numpy's merge sort.
    """
    if bound <= _COUNTING_RANGE:
        found = pc.array_sort_indices(pa.array(np.asarray(values, dtype=np.int32)))
        # Arrow gives uint64 indices below 2**63: the same bits read as int64, not copied.
        return np.asarray(found.to_numpy()).view(np.int64)
    if bound <= 1 << 16:
        return np.argsort(np.asarray(values, dtype=np.uint16), kind="stable").astype(np.int64, copy=False)
    return np.argsort(values, kind="stable").astype(np.int64, copy=False)


def distinct_sorted(keys: I64) -> I64:
    """The distinct values of ``keys``, ascending."""
    ordered = sort_keys(keys)
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def least_per_pair(
    group: I64, key: I64, value: I64, key_bound: int, value_bound: int
) -> tuple[I64, I64, I64]:
    """Distinct ``(group, key)`` pairs, each with its smallest ``value``, sorted by group then key.

    ``0 <= key < key_bound`` and ``0 <= value < value_bound``: a pair and its value are packed into one
    int64, so that one sort both groups the pairs and puts each pair's least value first.
    """
    packed = distinct_sorted((group * key_bound + key) * value_bound + value)
    pair, least = np.divmod(packed, value_bound)
    first = np.ones(len(pair), dtype=bool)
    np.not_equal(pair[1:], pair[:-1], out=first[1:])
    pair, least = pair[first], least[first]
    pair_group, pair_key = np.divmod(pair, key_bound)
    return pair_group, pair_key, least
