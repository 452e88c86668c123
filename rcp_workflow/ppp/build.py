"""Build the plan pharmaceutique personnalisé from a case's RCP decisions (no database here).

The workflow gathers a :class:`PPPInputs` inside its transaction; :func:`build_ppp` turns it into the
:class:`PPPDocument` the renderers read. Only accepted and modified decisions enter the plan; a
modified decision carries the RCP's comment. The new medication list is the reviewed list with the
plan applied: stopped lines leave it, changed lines take the new posology, started drugs are added.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from rcp_workflow.ppp.model import (
    FollowUp,
    Medication,
    Monitoring,
    PlanItem,
    PPPDocument,
    Professional,
)

FOLLOWUP_DAYS = (45, 90)
# Said plainly when the RCP did not say when to monitor: the plan never invents a schedule.
WHEN_NOT_GIVEN = "non précisé par la RCP"


@dataclass(frozen=True, slots=True)
class ReviewedLine:
    """One line of the medication list under review (from the latest analysis)."""

    drug: str
    posology: str | None
    cis: str | None
    atc: str | None


@dataclass(frozen=True, slots=True)
class DecidedRecommendation:
    action: str
    drug: str
    rationale: str
    outcome: str  # accepted, refused, modified
    comment: str | None
    decided_by: str  # "name (role)"
    responsible_role: str
    before: str | None
    after: str | None
    actip_problem: str
    actip_intervention: str
    line_index: int | None
    monitoring_what: str | None
    monitoring_when: str | None
    source: str | None


@dataclass(frozen=True, slots=True)
class PPPInputs:
    case_id: str
    pathway: str
    patient_pseudonym: str
    patient_age: int | None
    patient_sex: str | None
    rcp_date: dt.date
    issued_at: dt.datetime
    issued_by: Professional
    kb_version: str
    reviewed_lines: tuple[ReviewedLine, ...]
    recommendations: tuple[DecidedRecommendation, ...]  # in recommendation order
    participants: tuple[Professional, ...]
    version: int = 1


def followup_dates(issued_at: dt.datetime) -> tuple[FollowUp, ...]:
    """J45 and J90, counted in calendar days from the PPP's issue date."""
    day = issued_at.date()
    return tuple(FollowUp(label=f"Suivi J{n}", due=day + dt.timedelta(days=n)) for n in FOLLOWUP_DAYS)


def build_ppp(inputs: PPPInputs) -> PPPDocument:
    kept = tuple(r for r in inputs.recommendations if r.outcome in ("accepted", "modified"))
    items = tuple(
        PlanItem(
            action=r.action,  # type: ignore[arg-type]  # validated as PlanAction on input
            drug=r.drug,
            reason=r.rationale,
            decision=r.outcome,  # type: ignore[arg-type]
            decided_by=r.decided_by,
            responsible_role=r.responsible_role,
            before=r.before,
            after=r.after,
            comment=r.comment,
            actip_problem=r.actip_problem,
            actip_intervention=r.actip_intervention,
            source=r.source,
        )
        for r in kept
    )
    return PPPDocument(
        case_id=inputs.case_id,
        pathway=inputs.pathway,
        patient_pseudonym=inputs.patient_pseudonym,
        rcp_date=inputs.rcp_date,
        issued_at=inputs.issued_at,
        issued_by=inputs.issued_by,
        kb_version=inputs.kb_version,
        items=items,
        new_medications=_new_medications(inputs.reviewed_lines, kept),
        monitoring=_monitoring(kept),
        follow_ups=followup_dates(inputs.issued_at),
        participants=inputs.participants,
        patient_age=inputs.patient_age,
        patient_sex=inputs.patient_sex,
        version=inputs.version,
    )


def _new_medications(
    lines: tuple[ReviewedLine, ...], kept: tuple[DecidedRecommendation, ...]
) -> tuple[Medication, ...]:
    stopped: set[int] = set()
    changed: dict[int, str | None] = {}
    for r in kept:
        if r.line_index is None or not 0 <= r.line_index < len(lines):
            continue
        if r.action == "stop":
            stopped.add(r.line_index)
        elif r.action == "change":
            changed[r.line_index] = r.after
    out = [
        Medication(
            drug=line.drug,
            posology=changed[i] if i in changed and changed[i] is not None else line.posology,
            status="changed" if i in changed else "unchanged",
            cis=line.cis,
            atc=line.atc,
        )
        for i, line in enumerate(lines)
        if i not in stopped
    ]
    out.extend(Medication(drug=r.drug, posology=r.after, status="new") for r in kept if r.action == "start")
    return tuple(out)


def _monitoring(kept: tuple[DecidedRecommendation, ...]) -> tuple[Monitoring, ...]:
    out = []
    for r in kept:
        what = r.monitoring_what or (r.drug if r.action == "monitor" else None)
        if what:
            out.append(
                Monitoring(what=what, when=r.monitoring_when or WHEN_NOT_GIVEN, who=r.responsible_role)
            )
    return tuple(out)


_ADAPTER = TypeAdapter(PPPDocument)


def document_to_json(doc: PPPDocument) -> dict[str, Any]:
    """The stored form of an issued PPP (JSON types only)."""
    data: dict[str, Any] = _ADAPTER.dump_python(doc, mode="json")
    return data


def document_from_json(data: dict[str, Any]) -> PPPDocument:
    return _ADAPTER.validate_python(data)
