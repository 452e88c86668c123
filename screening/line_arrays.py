"""The per-line features of a :class:`~screening.lines.LineCatalog` as numpy arrays indexed by line id.

Each catalog line is read once, when it first appears; the arrays grow with the catalog (the lines
that arrived since the last chunk are appended). Variable-length features (the ACB-rated substances
of a line, its QT drugs, its molecules) are CSR arrays: line ``i`` owns the entries
``offsets[i]:offsets[i + 1]`` of the entry arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from screening.lines import Line, LineCatalog

I64 = npt.NDArray[np.int64]
NO_DURATION = -1  # a molecule's duration_days when the line gives none


class _Csr:
    """A growing CSR table of integer entries with a fixed number of fields."""

    def __init__(self, fields: int) -> None:
        self.offsets: I64 = np.zeros(1, dtype=np.int64)
        self.fields: list[I64] = [np.zeros(0, dtype=np.int64) for _ in range(fields)]

    def append(self, rows: Sequence[Sequence[tuple[int, ...]]]) -> None:
        counts = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        self.offsets = np.concatenate((self.offsets, self.offsets[-1] + np.cumsum(counts)))
        flat = [entry for row in rows for entry in row]
        for k in range(len(self.fields)):
            new = np.fromiter((entry[k] for entry in flat), dtype=np.int64, count=len(flat))
            self.fields[k] = np.concatenate((self.fields[k], new))


class LineArrays:
    """Line ``i`` of the catalog is entry ``i`` of every per-line array."""

    def __init__(self, catalog: LineCatalog, qt_factor_ids: tuple[str, ...]) -> None:
        if len(qt_factor_ids) > 63:
            raise ValueError("more than 63 Tisdale drug-class factors do not fit an int64 bit mask")
        self.catalog = catalog
        self.qt_factor_bit = {f: 1 << k for k, f in enumerate(qt_factor_ids)}
        self.acb_names: dict[str, int] = {}  # the ACB total counts a substance name once: names as ids
        self.resolved = np.zeros(0, dtype=bool)
        self.chronic = np.zeros(0, dtype=bool)
        self.counts_as_line = np.zeros(0, dtype=bool)  # counted by the town door
        self.qt_factors: I64 = np.zeros(0, dtype=np.int64)  # bit mask of the Tisdale drug-class factors met
        self._acb = _Csr(2)  # (name id, points) of each rated substance
        self._qt = _Csr(2)  # (substance id, 1 if it counts only when its unknown route is the restricted one)
        self._molecules = _Csr(2)  # (substance id, duration_days or NO_DURATION)
        self.sync()

    def __len__(self) -> int:
        return len(self.resolved)

    def sync(self) -> None:
        """Take in the lines the catalog gained since the last call."""
        new = self.catalog.lines[len(self) :]
        if not new:
            return
        self.resolved = np.concatenate((self.resolved, [line.resolved for line in new]))
        self.chronic = np.concatenate((self.chronic, [line.chronic for line in new]))
        self.counts_as_line = np.concatenate((self.counts_as_line, [line.counts_as_line for line in new]))
        self.qt_factors = np.concatenate((self.qt_factors, [self._factor_mask(line) for line in new]))
        names = self.acb_names
        self._acb.append([[(names.setdefault(n, len(names)), pts) for n, pts in line.acb] for line in new])
        self._qt.append(
            [
                [*((sid, 0) for sid in sorted(line.qt_sure)), *((sid, 1) for sid in sorted(line.qt_maybe))]
                for line in new
            ]
        )
        self._molecules.append(
            [
                [(sid, NO_DURATION if days is None else days) for sid, _, days in line.molecules]
                for line in new
            ]
        )

    def _factor_mask(self, line: Line) -> int:
        mask = 0
        for factor in line.qt_atc_factors:
            mask |= self.qt_factor_bit[factor]
        return mask

    # CSR views: offsets per line, then the entry fields.
    @property
    def acb(self) -> tuple[I64, I64, I64]:
        """(offsets, name id, points)."""
        return self._acb.offsets, self._acb.fields[0], self._acb.fields[1]

    @property
    def qt(self) -> tuple[I64, I64, I64]:
        """(offsets, substance id, 1 when only possibly a QT drug)."""
        return self._qt.offsets, self._qt.fields[0], self._qt.fields[1]

    @property
    def molecules(self) -> tuple[I64, I64, I64]:
        """(offsets, substance id, duration in days or NO_DURATION)."""
        return self._molecules.offsets, self._molecules.fields[0], self._molecules.fields[1]
