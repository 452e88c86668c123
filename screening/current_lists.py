"""Dispensation days -> each patient's current drugs, and whether each is chronic (:class:`ScreeningOptions`).

A drug (a line key: a product, an ATC code, an unknown code) is current when a box of it was
dispensed in the last ``window_days`` days, chronic when it was dispensed on at least
``chronic_min_dispensations`` distinct days of the last ``chronic_days``.

Rows are read a block of whole patients at a time (some 65,536 rows, whose arrays stay in the
processor's cache; rows not grouped by patient make one block). In a block, each dispensation in the
lookback becomes one integer, bit fields (key, patient, day) in that order (32 bits when they fit),
so that once sorted each (patient, key) pair's days lie together, oldest first. Sorting is the cost
of the whole derivation: the rows are first ordered by key alone with Arrow's counting sort
(:func:`screening.segments.stable_order`), which keeps the row order within a key. Extracts list a
patient's rows together, by date: the keys then come out sorted already, and numpy's sort only runs
on rows in another order (it is never needed for the result to be right, only for its speed).
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from iatro.errors import FieldError, InputError
from screening.columns import first_of_runs
from screening.options import ScreeningOptions
from screening.patient_rows import PatientRows
from screening.segments import stable_order

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class CurrentDrugs:
    """One entry per (patient, key) pair on a current list (grouped by block of patients)."""

    patient: I64
    key: I64
    chronic: npt.NDArray[np.bool_]


_BLOCK_ROWS = 1 << 16  # rows sorted at a time: their arrays stay in the processor's cache


def current_drugs(
    rows: PatientRows,
    row_key: I32,
    day: I32,
    dispensed: npt.NDArray[np.bool_] | None,
    n_keys: int,
    options: ScreeningOptions,
) -> CurrentDrugs:
    """``row_key``: each row's key (0 <= key < n_keys); ``day``: days since 1970-01-01;
    ``dispensed``: False for rows that are no dispensation (None: every row is one)."""
    if options.as_of is None:
        raise FieldError("as_of", "the reference date must be known before deriving lists")
    span = options.lookback_days
    day_bits = (span - 1).bit_length()
    if (n_keys - 1).bit_length() + (len(rows.ids) - 1).bit_length() + day_bits > 63:
        raise InputError(f"a chunk of {len(rows.ids)} patients and {n_keys} codes is too large to screen")
    sort = _Sort(options, (options.as_of - _EPOCH).days - span + 1, day_bits, n_keys)
    # Rows of whole patients at a time (all of them when a patient's rows are not together).
    runs = _blocks(rows) if rows.grouped else np.array([0, len(rows.starts)])
    lengths = rows.lengths
    found: list[tuple[I64, I64, npt.NDArray[np.bool_]]] = []
    for first, stop in itertools.pairwise(runs.tolist()):
        start = int(rows.starts[first])
        end = int(rows.starts[stop]) if stop < len(rows.starts) else rows.n_rows
        found.append(
            sort.pairs(
                rows.patient[first:stop],
                lengths[first:stop],
                row_key[start:end],
                day[start:end],
                None if dispensed is None else dispensed[start:end],
            )
        )
    if not found:
        return CurrentDrugs(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool))
    return CurrentDrugs(*(np.concatenate(column) for column in zip(*found, strict=True)))


def _ordered(packed: npt.NDArray[np.signedinteger], keys: I32, n_keys: int) -> npt.NDArray[np.signedinteger]:
    """``packed`` ascending: ordered by key (stable, linear), then by numpy if that did not suffice."""
    packed = packed[stable_order(keys, n_keys)]
    if len(packed) > 1 and not np.all(packed[1:] >= packed[:-1]):
        packed = _sort(packed)
    return packed


def _sort(packed: npt.NDArray[np.signedinteger]) -> npt.NDArray[np.signedinteger]:
    """Rows in another order than by patient, then date."""
    packed.sort(kind="stable")
    return packed


def _blocks(rows: PatientRows) -> I64:
    """Bounds of blocks of runs of some _BLOCK_ROWS rows, cut between patients."""
    wanted = np.searchsorted(rows.starts, np.arange(_BLOCK_ROWS, rows.n_rows, _BLOCK_ROWS))
    # A cut falls where a patient starts: a patient's runs (rows in two row groups) stay together.
    new_patient = np.flatnonzero(first_of_runs(rows.patient))
    cuts = new_patient[np.minimum(np.searchsorted(new_patient, wanted), len(new_patient) - 1)]
    return np.unique(np.concatenate(([0], cuts, [len(rows.starts)])))


@dataclass(frozen=True, slots=True)
class _Sort:
    options: ScreeningOptions
    first_day: int  # days since 1970-01-01 of the lookback's first day
    day_bits: int
    n_keys: int

    def pairs(
        self,
        patient: I64,
        run_rows: I64,
        row_key: I32,
        day: I32,
        dispensed: npt.NDArray[np.bool_] | None,
    ) -> tuple[I64, I64, npt.NDArray[np.bool_]]:
        """The current (patient, key) pairs of some rows of whole patients, and whether each is chronic.

        ``patient``: the patient of each run of rows (``run_rows`` rows each).
        """
        options, day_bits = self.options, self.day_bits
        span = options.lookback_days
        # Patients are numbered from the block's first: a block's few thousand fit in a few bits.
        base = int(patient.min())
        patient = patient - base
        patient_bits = int(patient.max()).bit_length()
        shift = patient_bits + day_bits
        # Most blocks pack in 32 bits: half the memory traffic of 64.
        kind = np.int32 if shift + (self.n_keys - 1).bit_length() <= 31 else np.int64
        # Each row's day in the lookback, 0 its first day; any other day (later, earlier, a null
        # date) reads as a huge unsigned number.
        within = np.subtract(day, self.first_day, dtype=np.int32)
        keep = within.view(np.uint32) < span
        if dispensed is not None:
            keep &= dispensed
        packed = np.repeat((patient << day_bits).astype(kind), run_rows)
        packed |= np.left_shift(row_key, shift, dtype=kind)
        packed |= within  # meaningless in the rows out of the lookback, dropped next
        keys = row_key
        if not keep.all():
            packed, keys = packed[keep], row_key[keep]
        packed = _ordered(packed, keys, self.n_keys)
        # One entry per distinct (key, patient, day); each pair's last entry is its most recent day.
        days = packed[first_of_runs(packed)]
        pair = days >> day_bits
        last = np.empty(len(pair), dtype=bool)
        last[-1:] = True
        np.not_equal(pair[1:], pair[:-1], out=last[:-1])
        end = np.flatnonzero(last)
        day_mask = (1 << day_bits) - 1
        end = end[(days[end] & day_mask) >= span - options.window_days]
        # Chronic: the pair's n-th most recent distinct day (n = chronic_min_dispensations) lies in
        # the chronic window; then so do the more recent ones.
        back = end - (options.chronic_min_dispensations - 1)
        nth = np.maximum(back, 0)
        chronic = (
            (back >= 0) & (pair[nth] == pair[end]) & ((days[nth] & day_mask) >= span - options.chronic_days)
        )
        pairs = pair[end].astype(np.int64)
        return (pairs & ((1 << patient_bits) - 1)) + base, pairs >> patient_bits, chronic
