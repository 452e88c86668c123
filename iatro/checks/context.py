"""What every check sees of a prescription: one exposure per (line, active substance), and the patient.

A product with two active substances gives two exposures on the same line; each carries the dose of
its own substance, so dose-dependent rules (aspirin >= 3 g/day, potassium > 1 mmol per intake) read the
right number. Unresolved lines give no exposure but are counted so that checks can say the list was
incomplete.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from iatro.model.prescription import Patient


@dataclass(frozen=True, slots=True)
class Exposure:
    line: int
    substance_id: int
    name: str  # French DCI, lower case (the KB's display name)
    atc: tuple[str, ...]  # WHO level-5 codes of this substance in this product (may be empty)
    route: str | None = None  # normalised route: orale, injectable, cutanee, ophtalmique, inhalee, ...
    mg_per_intake: float | None = None
    mg_per_day: float | None = None
    intakes_per_day: float | None = None
    as_needed: bool = False
    duration_days: int | None = None
    # Other names of the same substance (its ANSM index entries), so that curated data written
    # with any of them ("oxybate de sodium", "sodium (oxybate de)") recognises it.
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CheckContext:
    exposures: tuple[Exposure, ...]
    patient: Patient
    date: dt.date | None = None
    unresolved_lines: tuple[int, ...] = ()

    def lines_with(self, substance_id: int) -> tuple[int, ...]:
        return tuple(sorted({e.line for e in self.exposures if e.substance_id == substance_id}))
