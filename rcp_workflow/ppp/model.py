"""The plan pharmaceutique personnalisé as a value object: what the PDF and the FHIR export render.

The workflow builds one :class:`PPPDocument` from a case's accepted and modified RCP decisions; the
renderers (:mod:`rcp_workflow.ppp.pdf`, :mod:`rcp_workflow.ppp.fhir`) read nothing else, so a PPP can
be rendered, tested and re-issued without a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

# What the plan asks for a drug. Kept in French-neutral codes; the renderers label them.
Action = Literal["stop", "start", "change", "continue", "monitor"]
# Only decisions the RCP accepted (as proposed) or modified reach the plan; refused ones do not.
DecisionOutcome = Literal["accepted", "modified"]
MedicationStatus = Literal["new", "changed", "unchanged"]


@dataclass(frozen=True, slots=True)
class Professional:
    name: str
    role: str  # medecin_traitant, pharmacien_officine, pharmacien_hospitalier, geriatre, coordinateur
    organisation: str


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One decision of the RCP as it enters the plan."""

    action: Action
    drug: str  # as prescribed (stop, change, continue) or as proposed (start)
    reason: str  # the recommendation's rationale, in French
    decision: DecisionOutcome
    decided_by: str  # who recorded the decision at the RCP (name, role)
    responsible_role: str  # who carries it out (e.g. medecin_traitant)
    before: str | None = None  # posology before, when the action changes or stops a line
    after: str | None = None  # posology after, when the action starts or changes a line
    comment: str | None = None  # the RCP's comment; mandatory in spirit for "modified"
    actip_problem: str | None = None  # SFPC Act-IP problem code, e.g. "6.4"
    actip_intervention: str | None = None  # SFPC Act-IP intervention code, e.g. "2"
    source: str | None = None  # the alert it came from: rule id and edition


@dataclass(frozen=True, slots=True)
class Medication:
    """One line of the new medication list after the plan."""

    drug: str
    posology: str | None
    status: MedicationStatus
    cis: str | None = None
    atc: str | None = None


@dataclass(frozen=True, slots=True)
class Monitoring:
    what: str  # e.g. "kaliémie et créatininémie"
    when: str  # e.g. "à J7 puis mensuelle"
    who: str  # role


@dataclass(frozen=True, slots=True)
class FollowUp:
    label: str  # "Suivi J45", "Suivi J90"
    due: date


@dataclass(frozen=True, slots=True)
class PPPDocument:
    case_id: str
    pathway: str  # iatroprev, optimedoc, bpm
    patient_pseudonym: str  # never a name: the identity table stays in the workflow database
    rcp_date: date
    issued_at: datetime
    issued_by: Professional
    kb_version: str  # the knowledge base the analysis ran on
    items: tuple[PlanItem, ...]
    new_medications: tuple[Medication, ...]
    monitoring: tuple[Monitoring, ...]
    follow_ups: tuple[FollowUp, ...]
    participants: tuple[Professional, ...]
    patient_age: int | None = None
    patient_sex: str | None = None  # "F", "M" or None
    version: int = 1  # a re-issued plan increments this
