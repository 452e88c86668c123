"""An analysis of lines read by OCR says so: which line came from which page, how sure the reading
was, and what a pharmacist must check before acting on it.

The analysis report itself is the contract's (``iatro.model.report.Report``, line i = OCR line i);
:func:`provenance` is what is added to it (the contract allows added fields), :func:`render_notes`
its French text for a terminal.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ocr.model import BBox, HeaderHints, OcrResult, Zone


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class OcrLineNote(_Frozen):
    index: int = Field(description="The report line this note is about (same index)")
    page: int
    confidence: float
    needs_review: bool
    reasons: tuple[str, ...] = ()
    zone: Zone | None = None
    bbox: BBox
    ocr_text: str
    strength: str | None = None
    strength_read: str | None = None


class OcrProvenance(_Frozen):
    source: str = "ocr"
    pages: int
    lines: tuple[OcrLineNote, ...]
    lines_to_review: tuple[int, ...] = Field(description="Indexes of the lines a pharmacist must check")
    header_hints: HeaderHints
    warnings: tuple[str, ...] = ()


def provenance(result: OcrResult) -> OcrProvenance:
    notes = tuple(
        OcrLineNote(
            index=line.index,
            page=line.page,
            confidence=line.confidence,
            needs_review=line.needs_review,
            reasons=line.reasons,
            zone=line.zone,
            bbox=line.bbox,
            ocr_text=line.ocr_text,
            strength=line.strength,
            strength_read=line.strength_read,
        )
        for line in result.lines
    )
    return OcrProvenance(
        pages=len(result.pages),
        lines=notes,
        lines_to_review=tuple(note.index for note in notes if note.needs_review),
        header_hints=result.header_hints,
        warnings=result.warnings,
    )


def render_notes(result: OcrResult) -> str:
    """The OCR part of a terminal report: every line's reading, the ones to check first."""
    review = [line for line in result.lines if line.needs_review]
    out = [
        f"Lu par OCR : {len(result.lines)} ligne(s) sur {len(result.pages)} page(s), "
        f"{len(review)} à vérifier avant usage."
    ]
    for warning in result.warnings:
        out.append(f"  ! {warning}")
    for line in result.lines:
        mark = "À VÉRIFIER" if line.needs_review else "ok"
        zone = f", zone {line.zone}" if line.zone else ""
        out.append(
            f"{line.index:>2}. [{mark}] confiance {line.confidence:.0%} (page {line.page}{zone}) "
            f"lu : « {line.ocr_text} »"
        )
        for reason in line.reasons:
            out.append(f"      - {reason}")
    return "\n".join(out)
