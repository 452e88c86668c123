"""Distinct values of the kernel's integer columns and each row's index, as ``np.unique(...,
return_inverse=True)`` gives them (distinct values ascending), without its sort when the values
allow: already sorted, or few enough to be marked in a small dense table.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from iatro.batch.hits import I64


def dense_factorize(values: npt.NDArray[np.integer], bound: int) -> tuple[I64, I64]:
    """Distinct values (ascending) and each one's index, for values all in ``0..bound - 1``: they
    are marked in a table of ``bound`` entries, no sort (the caller keeps ``bound`` small)."""
    present = np.zeros(bound, dtype=np.bool_)
    present[values] = True
    distinct = np.flatnonzero(present)
    index = np.zeros(bound, dtype=np.int64)
    index[distinct] = np.arange(len(distinct))
    return distinct, index[values]


def factorize_pairs(lo: I64, hi: I64, n_ex: int) -> tuple[I64, I64]:
    """The distinct codes ``lo * n_ex + hi`` and each row's index, as ``np.unique(...,
    return_inverse=True)`` gives them; without a sort while the batch's exposures are few (a batch
    meets a few hundred of them): their pairs are then marked in a small dense table."""
    seen = np.zeros(n_ex, dtype=np.bool_)
    seen[lo] = True
    seen[hi] = True
    exposures = np.flatnonzero(seen)
    m = len(exposures)
    if m * m > max(8 * len(lo), 1 << 16):
        distinct, inverse = np.unique(lo * n_ex + hi, return_inverse=True)
        return distinct, inverse
    local = np.cumsum(seen) - 1  # ascending: the dense cells keep the order of the codes
    cells, index = dense_factorize(local[lo] * m + local[hi], m * m)
    return exposures[cells // m] * n_ex + exposures[cells % m], index


def factorize(values: I64, bound: int | None = None) -> tuple[I64, I64]:
    """Distinct values and each one's index, as ``np.unique(..., return_inverse=True)``; without a
    sort when ``values`` is already sorted (the kernel's rows come by prescription), or when every
    value is known to be in ``0..bound - 1`` with ``bound`` small: they are then marked in a table."""
    if len(values) and bool(np.all(values[1:] >= values[:-1])):
        starts = np.ones(len(values), dtype=np.bool_)
        starts[1:] = values[1:] != values[:-1]
        return values[starts], np.cumsum(starts) - 1
    if bound is not None and bound <= max(8 * len(values), 1 << 16):
        return dense_factorize(values, bound)
    distinct, inverse = np.unique(values, return_inverse=True)
    return distinct, inverse
