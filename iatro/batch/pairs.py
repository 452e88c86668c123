"""Pairing the exposures of many prescriptions at once, and merging a substance met on several lines.

Pure array functions of the kernel (:mod:`iatro.batch.interactions`): no knowledge base, no patient.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

from iatro.batch.hits import I32, I64, PairHits


def pairs_within(
    presc: I32, sig: I32, sid: I32, n_presc: int, table: npt.NDArray[np.int16], table_size: int
) -> tuple[I64, I64, I64, I64]:
    """Every pair of exposures of a prescription whose signatures meet a rule, and its table cell.

    ``presc``, ``sig`` and ``sid`` give each exposure's prescription (sorted), signature (a row of
    the flat ``table_size`` x ``table_size`` pair ``table``) and substance. Prescriptions are
    grouped by their number k of exposures: each group is a (rows, k) matrix, its pairs the
    k(k-1)/2 upper-triangle columns, looked up in one gather. Returns the pairs (exposure positions,
    ordered by prescription then position), their cells, and the exposures whose substance is on
    another exposure of the prescription (to merge, see :func:`merge_same_pair`).
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
        flat *= table_size
        flat += matrix[:, ju]
        cell = np.take(table, flat.ravel())
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


def merge_same_pair(hits: PairHits, rows: I64, n_substances: int, n_rules: int, rule_order: I64) -> PairHits:
    """One row per substance pair where a substance is on several lines, as the engine's alert.

    ``rows`` are the rows that involve such a substance. The level is the worst over the line
    pairs, the rule the main one at that level (smallest rule id: ``rule_order`` ranks rule indices
    by id), the lines those of its first line pair, ``unresolved`` true if any pair's is.
    """
    if not len(rows):
        return hits
    key = (hits.prescription[rows] * n_substances + hits.substance_a[rows]) * n_substances
    key += hits.substance_b[rows]
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
    code = (4 - hits.level[rows].astype(np.int64)) * n_rules + rule_order[hits.rule[rows]]
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
    merged = PairHits(
        prescription=hits.prescription,
        line_a=hits.line_a,
        line_b=hits.line_b,
        substance_a=hits.substance_a,
        substance_b=hits.substance_b,
        level=hits.level,
        unresolved=unresolved,
        rule=hits.rule,
    )
    return merged.take(np.flatnonzero(keep))  # one scan of the mask, then plain gathers


@lru_cache(maxsize=256)
def _triangle(k: int) -> tuple[I64, I64]:
    """Row and column of the k(k-1)/2 pairs i < j of k positions."""
    iu, ju = np.triu_indices(k, 1)
    return iu.astype(np.int64), ju.astype(np.int64)
