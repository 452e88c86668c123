"""What the OCR of an ordonnance returns: the analysis contract's lines, plus what a reader must check.

An :class:`OcrLine` *is* a :class:`~iatro.model.report.LineReport` (same fields, same meaning), so a
consumer of the analysis contract reads it unchanged; the OCR adds how sure it is (``confidence``),
whether a pharmacist must look at the line before it is used (``needs_review`` and the ``reasons``),
and where the line is on the page (``page``, ``bbox``, ``zone``).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from iatro.model.prescription import LineInput, Patient, Prescription
from iatro.model.report import LineReport

# "ald": the upper zone of an ordonnance bizone (treatment of the affection de longue durée, 100 %
# covered); "hors_ald": its lower zone (maladies intercurrentes). None: the page has a single zone.
Zone = Literal["ald", "hors_ald"]
Layout = Literal["ordonnance", "bizone", "table"]
PageSource = Literal["text-layer", "ocr"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class BBox(_Frozen):
    """A box as fractions of the page width and height (0 = left/top), of the page as cleaned
    (straightened and, for a photograph, cut to the sheet): the same box whatever the resolution."""

    x0: float = Field(ge=0, le=1)
    y0: float = Field(ge=0, le=1)
    x1: float = Field(ge=0, le=1)
    y1: float = Field(ge=0, le=1)


class OcrLine(LineReport):
    """One drug item of the ordonnance (its drug line and the posology lines under it)."""

    confidence: float = Field(ge=0, le=1, description="OCR confidence of the words the line rests on")
    needs_review: bool
    reasons: tuple[str, ...] = Field(default=(), description="Why a pharmacist must check the line")
    page: int = Field(ge=1)
    bbox: BBox
    zone: Zone | None = None
    ocr_text: str = Field(description="The words as the OCR read them, before any correction")
    strength: str | None = Field(default=None, description="Strength kept for the line, e.g. '2,5 mg'")
    strength_read: str | None = Field(
        default=None, description="Strength as read, when it differs from the one kept (snapped)"
    )


class HeaderHints(_Frozen):
    """What the header says, when it says it; every value is a hint to confirm, never a fact."""

    prescriber_rpps: str | None = None
    rpps_checksum_ok: bool | None = Field(default=None, description="The RPPS number's Luhn key holds")
    date: dt.date | None = None
    patient_age: int | None = Field(default=None, ge=0, le=130)
    patient_weight_kg: float | None = Field(default=None, gt=0, le=400)


class OcrPage(_Frozen):
    number: int = Field(ge=1)
    source: PageSource
    layout: Layout
    width: int
    height: int
    text_lines: int = Field(description="Lines of text found on the page")
    drug_lines: int
    seconds: float
    warnings: tuple[str, ...] = ()


class OcrResult(_Frozen):
    kb_version: str
    pages: tuple[OcrPage, ...]
    lines: tuple[OcrLine, ...]
    header_hints: HeaderHints = HeaderHints()
    warnings: tuple[str, ...] = ()

    @property
    def needs_review(self) -> bool:
        return any(line.needs_review for line in self.lines) or bool(self.warnings)

    def to_prescription(self) -> Prescription:
        """The analysis input the OCR read: each line by its words as corrected, with the header's
        age and weight. Meant to be shown and confirmed first: flagged lines are included as read."""
        hints = self.header_hints
        return Prescription(
            date=hints.date,
            patient=Patient(age=hints.patient_age, weight_kg=hints.patient_weight_kg),
            lines=tuple(
                LineInput(
                    # The product the OCR line resolved to, by its code; the words as corrected stay
                    # the line's text, which is what the report shows as its input.
                    cis=line.product.cis if line.product is not None else None,
                    text=line.input,
                    posology=line.posology.text if line.posology is not None else None,
                )
                for line in self.lines
            ),
        )
