"""Which rows of a chunk belong to which patient, read from the ``patient_id`` column's codes.

Rows come in runs of one patient (an extract lists a patient's rows together): only the first row of
each run is decoded. Patients are numbered in the order of their ids sorted as text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from iatro.errors import FieldError
from screening.columns import Text, first_of_runs, text, to_numpy

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class PatientRows:
    """The rows of a chunk as runs of one patient each: run k is rows ``starts[k]`` to the next start."""

    ids: list[str]  # the chunk's patient ids, sorted; patient p is ids[p]
    starts: I64  # first row of each run
    patient: I64  # each run's patient
    n_rows: int

    @property
    def lengths(self) -> I64:
        return np.diff(np.append(self.starts, self.n_rows))

    @property
    def grouped(self) -> bool:
        """Runs in patient order: each patient's rows together, patients in id order (a sorted extract)."""
        return bool(np.all(self.patient[1:] >= self.patient[:-1]))

    def of_rows(self) -> I64:
        """Each row's patient."""
        return np.repeat(self.patient, self.lengths)


def patient_rows(column: pa.ChunkedArray) -> PatientRows:
    codes = text(column, "patient_id")
    slots = codes.slots
    n = len(slots)
    if not n:
        return PatientRows([], np.zeros(0, np.int64), np.zeros(0, np.int64), 0)
    starts = np.flatnonzero(first_of_runs(slots))
    run_slot = slots[starts]
    ids = codes.values.take(pa.array(run_slot, mask=run_slot < 0))
    if ids.null_count:
        lengths = np.diff(np.append(starts, n))
        missing = int(lengths[to_numpy(ids.is_null())].sum())
        raise FieldError("patient_id", f"{missing} row(s) without a patient_id")
    if len(ids) == 1 or pc.all(pc.less_equal(ids[:-1], ids[1:])).as_py():
        # Runs in id order (a sorted extract): a patient met in two runs (its rows in two row groups,
        # each with its own dictionary) has them side by side.
        new = np.ones(len(ids), dtype=bool)
        new[1:] = to_numpy(pc.not_equal(ids[1:], ids[:-1]))
        patient = np.cumsum(new, dtype=np.int64) - 1
        return PatientRows(ids.filter(pa.array(new)).to_pylist(), starts, patient, n)
    return _any_order(codes, starts, run_slot, n)


def _any_order(codes: Text, starts: I64, run_slot: npt.NDArray[np.int32], n: int) -> PatientRows:
    """Runs in any order: the distinct ids are sorted as text by Arrow, each decoded once."""
    used = np.flatnonzero(np.bincount(run_slot, minlength=len(codes.values)))
    ids = codes.values.take(pa.array(used))
    order = pc.array_sort_indices(ids)
    ordered = ids.take(order)
    first = np.ones(len(ordered), dtype=bool)
    if len(ordered) > 1:
        first[1:] = to_numpy(pc.not_equal(ordered[1:], ordered[:-1]))
    rank_of = np.zeros(len(codes.values), dtype=np.int64)
    rank_of[used[to_numpy(order)]] = np.cumsum(first) - 1
    return PatientRows(ordered.filter(pa.array(first)).to_pylist(), starts, rank_of[run_slot], n)
