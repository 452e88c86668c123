"""The frozen objects the workflow service takes and returns (pydantic v2, ``frozen=True``).

Inputs are validated here (a bad field raises :class:`iatro.errors.FieldError` from the service,
naming the field); outputs are read-only views built from the database inside the service's
transaction, so a caller never holds a live ORM object.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rcp_workflow.states import Pathway, Role

OrganisationKind = Literal["hospital", "officine", "cabinet"]
EntryDoor = Literal["town", "hospital"]
Modality = Literal["video", "phone", "presentiel"]
DecisionOutcome = Literal["accepted", "refused", "modified"]
PlanAction = Literal["stop", "start", "change", "continue", "monitor"]
AnalysisKind = Literal["initial", "review", "followup_45", "followup_90", "bpm"]
AuditAction = Literal["read", "create", "transition", "update", "download"]


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


# --------------------------------------------------------------------------------------------------
# Identity and access
# --------------------------------------------------------------------------------------------------


class Actor(_Out):
    """The authenticated professional on whose behalf a service call runs."""

    user_id: str
    display_name: str
    role: Role
    organisation_id: str
    organisation_kind: OrganisationKind
    organisation_name: str


class LoginSession(_Out):
    """What a successful login returns. ``token`` is shown once; only its hash is stored."""

    token: str
    expires_at: dt.datetime
    actor: Actor


class ApiToken(_Out):
    """A bearer token for other software. ``token`` is shown once; only its hash is stored."""

    id: str
    token: str
    name: str
    created_at: dt.datetime
    expires_at: dt.datetime | None


class OrganisationView(_Out):
    id: str
    name: str
    kind: OrganisationKind


class ProfessionalView(_Out):
    user_id: str
    display_name: str
    role: Role
    organisation_id: str
    organisation_name: str


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------


class PatientIdentityInput(_In):
    """The patient's identity: stored apart, read only through ``get_identity``, never logged."""

    family_name: str = Field(min_length=1, max_length=200)
    given_name: str = Field(min_length=1, max_length=200)
    birth_date: dt.date | None = None
    ins: str | None = Field(
        default=None, pattern=r"^[12]\d{12}(\d{2})?$", description="INS (NIR), 13 or 15 digits"
    )


class PatientInput(_In):
    """A new pseudonymised patient. The pseudonym is generated when not given."""

    pseudonym: str | None = Field(default=None, min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    birth_year: int | None = Field(default=None, ge=1890, le=2100)
    sex: Literal["F", "M"] | None = None
    identity: PatientIdentityInput | None = None


class NewCase(_In):
    """Repérage: open a case from a prescription (the analysis contract's input JSON).

    ``patient_id`` reuses a patient already known to the actor; otherwise ``patient`` creates one.
    ``organisation_id`` is the hospital whose team runs an Iatroprev/Optimedoc case (defaults to the
    actor's own hospital) or the officine of a BPM (always the actor's own officine).
    """

    pathway: Pathway
    prescription: dict[str, Any]
    patient_id: str | None = None
    patient: PatientInput | None = None
    organisation_id: str | None = None
    participant_ids: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_patient(self) -> NewCase:
        if (self.patient_id is None) == (self.patient is None):
            raise ValueError("give exactly one of patient_id and patient")
        return self


class Consent(_In):
    """Information and consent of the patient or of their carer (aidant)."""

    given_by: Literal["patient", "carer"]
    informed: bool
    consented: bool
    recorded_on: dt.date
    carer_relationship: str | None = Field(default=None, max_length=100)


class Inclusion(_In):
    entry_door: EntryDoor
    consent: Consent
    # Hospital door: the agreement of the patient's médecin traitant AND pharmacien d'officine.
    medecin_traitant_agreed: bool = False
    pharmacien_officine_agreed: bool = False
    # When the analysis does not say the patient is eligible, the team may still include with a reason.
    eligibility_justification: str | None = Field(default=None, min_length=5, max_length=2000)


class NewRecommendation(_In):
    action: PlanAction
    drug: str = Field(min_length=1, max_length=300)
    rationale: str = Field(min_length=1, max_length=4000)
    actip_problem: str = Field(description="SFPC problem code, e.g. '6.4' (see rcp_workflow.actip)")
    actip_intervention: str = Field(description="SFPC intervention code, e.g. '2'")
    responsible_role: Role = "medecin_traitant"
    before: str | None = Field(default=None, max_length=500)
    after: str | None = Field(default=None, max_length=500)
    monitoring_what: str | None = Field(default=None, max_length=500)
    monitoring_when: str | None = Field(default=None, max_length=200)
    alert_index: int | None = Field(
        default=None, ge=0, description="Index of the alert in the latest analysis"
    )
    # Which line of the reviewed medication list a stop/change/continue concerns; found by name when
    # omitted (product name, line text or substance), and required when the name matches no line.
    line_index: int | None = Field(default=None, ge=0)


class RcpPlan(_In):
    scheduled_at: dt.datetime
    modality: Modality
    participant_ids: tuple[str, ...] = Field(min_length=1)


class Decision(_In):
    recommendation_id: str
    outcome: DecisionOutcome
    comment: str | None = Field(default=None, max_length=4000)

    @model_validator(mode="after")
    def _modified_has_comment(self) -> Decision:
        if self.outcome == "modified" and not self.comment:
            raise ValueError("a modified decision needs a comment saying what was changed")
        return self


class ItemFollowUp(_In):
    item_index: int = Field(ge=0, description="Index of the item in the issued PPP")
    implemented: bool
    outcome: str | None = Field(default=None, max_length=2000)


class FollowUpInput(_In):
    items: tuple[ItemFollowUp, ...]
    notes: str | None = Field(default=None, max_length=4000)
    # A new medication list (analysis-contract input), re-analysed when given.
    new_prescription: dict[str, Any] | None = None


class BillingUpdate(_In):
    convention_signed: bool | None = None
    participation_agreement_signed: bool | None = None


class BpmQuestionnaire(_In):
    """The BPM information interview, as structured data."""

    adherence: Literal["good", "partial", "poor"]
    missed_doses_last_week: int = Field(ge=0, le=100)
    self_medication: bool
    self_medication_details: str | None = Field(default=None, max_length=2000)
    difficulties: tuple[
        Literal[
            "swallowing", "opening_packaging", "understanding", "remembering", "side_effects", "cost", "other"
        ],
        ...,
    ] = ()
    difficulties_details: str | None = Field(default=None, max_length=2000)
    manages_own_medication: bool = True
    notes: str | None = Field(default=None, max_length=4000)

    @model_validator(mode="after")
    def _details(self) -> BpmQuestionnaire:
        if self.self_medication and not self.self_medication_details:
            raise ValueError("self_medication_details: say which products when self_medication is true")
        return self


class BpmAnalysisInput(_In):
    conclusions: str = Field(min_length=1, max_length=8000)
    new_prescription: dict[str, Any] | None = None


class AdherenceFollowUp(_In):
    adherence: Literal["good", "partial", "poor"]
    notes: str | None = Field(default=None, max_length=4000)


class NewMessage(_In):
    body: str = Field(min_length=1, max_length=8000)
    recipient_roles: tuple[Role, ...] = ()
    recipient_ids: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _someone(self) -> NewMessage:
        if not self.recipient_roles and not self.recipient_ids:
            raise ValueError("a message needs at least one recipient (role or professional)")
        return self


# --------------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------------


class PatientView(_Out):
    id: str
    pseudonym: str
    birth_year: int | None
    sex: str | None
    has_identity: bool


class PatientIdentityView(_Out):
    family_name: str
    given_name: str
    birth_date: dt.date | None
    ins: str | None


class AnalysisView(_Out):
    id: str
    kind: AnalysisKind
    kb_version: str
    created_at: dt.datetime
    created_by: str
    prescription: dict[str, Any]
    report: dict[str, Any]


class DecisionView(_Out):
    outcome: DecisionOutcome
    comment: str | None
    decided_by: str
    decided_by_name: str
    decided_at: dt.datetime


class RecommendationView(_Out):
    id: str
    position: int
    action: PlanAction
    drug: str
    rationale: str
    actip_problem: str
    actip_problem_label: str
    actip_intervention: str
    actip_intervention_label: str
    responsible_role: str
    before: str | None
    after: str | None
    monitoring_what: str | None
    monitoring_when: str | None
    alert_index: int | None
    line_index: int | None
    alert_rule_id: str | None
    alert_source: str | None
    author_id: str
    created_at: dt.datetime
    decision: DecisionView | None


class ParticipantView(_Out):
    user_id: str
    display_name: str
    role: str
    organisation_id: str
    organisation_name: str


class RcpView(_Out):
    scheduled_at: dt.datetime
    modality: Modality
    participant_ids: tuple[str, ...]
    held_at: dt.datetime | None


class PPPInfo(_Out):
    version: int
    issued_at: dt.datetime
    issued_by: str
    item_count: int


class ItemFollowUpView(_Out):
    item_index: int
    implemented: bool
    outcome: str | None


class FollowUpView(_Out):
    day: Literal[45, 90]
    due: dt.date
    recorded_at: dt.datetime | None
    recorded_by: str | None
    items: tuple[ItemFollowUpView, ...]
    notes: str | None
    analysis_id: str | None


class BillingChecklist(_Out):
    convention_signed: bool
    participation_agreement_signed: bool
    followup_45_proof: bool
    followup_90_proof: bool

    def missing(self) -> tuple[str, ...]:
        """The items still missing, in the order the checklist lists them."""
        return tuple(name for name, done in self.model_dump().items() if not done)


class BpmView(_Out):
    questionnaire: BpmQuestionnaire | None
    conclusions: str | None
    summary: str | None
    summary_sent_at: dt.datetime | None
    advice_notes: str | None
    adherence_followup: AdherenceFollowUp | None


class CaseSummary(_Out):
    id: str
    version: int
    pathway: Pathway
    state: str
    patient_pseudonym: str
    organisation_id: str
    organisation_name: str
    created_at: dt.datetime
    updated_at: dt.datetime
    next_followup_due: dt.date | None


class CaseView(_Out):
    """Everything the case page shows. ``allowed_actions`` is for the actor who read it."""

    id: str
    version: int
    pathway: Pathway
    state: str
    patient: PatientView
    organisation_id: str
    organisation_name: str
    created_at: dt.datetime
    created_by: str
    updated_at: dt.datetime
    entry_door: EntryDoor | None
    eligibility: dict[str, Any] | None
    eligibility_justification: str | None
    consent: Consent | None
    medecin_traitant_agreed: bool
    pharmacien_officine_agreed: bool
    participants: tuple[ParticipantView, ...]
    analyses: tuple[AnalysisView, ...]
    recommendations: tuple[RecommendationView, ...]
    rcp: RcpView | None
    ppp: PPPInfo | None
    followups: tuple[FollowUpView, ...]
    billing: BillingChecklist
    bpm: BpmView | None
    stop_reason: str | None
    allowed_actions: tuple[str, ...]


class DueFollowUp(_Out):
    case_id: str
    pathway: Pathway
    patient_pseudonym: str
    day: Literal[45, 90]
    due: dt.date
    overdue: bool


class MessageView(_Out):
    id: str
    case_id: str
    author_id: str
    author_name: str
    recipient_roles: tuple[str, ...]
    recipient_ids: tuple[str, ...]
    body: str
    sent_at: dt.datetime


class AuditEntry(_Out):
    id: int
    at: dt.datetime
    user_id: str
    action: AuditAction
    case_id: str | None
    detail: str
