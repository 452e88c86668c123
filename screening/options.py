"""The parameters of a screening run, in one frozen object shared by both engines."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from iatro.checks.eligibility import CHRONIC_DAYS
from iatro.errors import FieldError


@dataclass(frozen=True, slots=True)
class ScreeningOptions:
    """How a current medication list is read from dispensation rows.

    - ``window_days``: a drug is on the current list when a box was dispensed in the last
      ``window_days`` days of the extract (``as_of`` included).
    - ``chronic_days`` / ``chronic_min_dispensations``: a drug is chronic when it was dispensed on at
      least ``chronic_min_dispensations`` distinct days of the last ``chronic_days`` days. A chronic line
      reaches the engine with ``duration_days = chronic_days`` (the period the chronicity was observed
      over); any other line has no duration (unknown, never assumed).
    - ``as_of``: the reference date; by default the last dispensation date of the whole extract.
    """

    window_days: int = 90
    chronic_days: int = CHRONIC_DAYS
    chronic_min_dispensations: int = 3
    as_of: dt.date | None = None

    def __post_init__(self) -> None:
        if self.window_days < 1:
            raise FieldError("window_days", "must be at least 1")
        if self.chronic_days < 1:
            raise FieldError("chronic_days", "must be at least 1")
        if self.chronic_min_dispensations < 1:
            raise FieldError("chronic_min_dispensations", "must be at least 1")

    @property
    def lookback_days(self) -> int:
        """How far back rows matter (the longer of the two windows)."""
        return max(self.window_days, self.chronic_days)

    def with_as_of(self, as_of: dt.date) -> ScreeningOptions:
        return ScreeningOptions(self.window_days, self.chronic_days, self.chronic_min_dispensations, as_of)
