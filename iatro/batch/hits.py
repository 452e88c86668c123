"""What the batch interaction kernel returns: interacting pairs as columns, or as rows for one prescription.

One row per (prescription, unordered pair of substances) that the engine reports as one
``interaction`` alert: ``substance_a < substance_b`` are KB substance ids (the alert's substances),
``line_a < line_b`` the lines (positions within the prescription) of the alert's main finding (when
a substance is on several lines, the first line pair that gives the main rule; the alert's ``lines``
are all of them), ``level`` the rank of the level the engine reports for this patient
(``LEVEL_RANK``: 4 contre-indication ... 1 à prendre en compte; ``LEVEL_CODES[level]`` is the
contract's string), ``unresolved`` True when the alert would carry ``unresolved_conditions`` (the
level is then the worst candidate), and ``rule`` the index of the main rule in ``kernel.rules``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from iatro.kb.thesaurus import LEVELS, Level

#: ``LEVEL_CODES[rank]``: the contract's level string of a ``PairHits.level`` value (index 0 unused).
LEVEL_CODES: tuple[Level | None, ...] = (None, *reversed(LEVELS))

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]


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

    def take(self, rows: I64) -> PairHits:
        """The rows ``rows`` (in that order), with their ``unresolved`` flags."""
        return PairHits(
            prescription=self.prescription.take(rows),
            line_a=self.line_a.take(rows),
            line_b=self.line_b.take(rows),
            substance_a=self.substance_a.take(rows),
            substance_b=self.substance_b.take(rows),
            level=self.level.take(rows),
            unresolved=self.unresolved.take(rows),
            rule=self.rule.take(rows),
        )


class PairHit(NamedTuple):
    """One row of :class:`PairHits`, for one prescription (``BatchInteractions.check_lines``)."""

    line_a: int
    line_b: int
    substance_a: int
    substance_b: int
    level: int
    unresolved: bool
    rule: int
