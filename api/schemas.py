"""Request and response models where the API differs from the contract models (``iatro.model``).

The analysis itself takes and returns the contract (``Prescription`` in, ``Report`` out), with one
addition per alert: the SFPC codes a pharmacist would log for it (``sfpc``). The CDS Hooks models
follow the CDS Hooks 2.0 specification field for field (camelCase included).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.sfpc import SfpcProposal
from iatro.model.prescription import LineInput
from iatro.model.report import Alert, LineReport, Report


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


# -- errors -------------------------------------------------------------------------------------
class FieldProblem(_Model):
    field: str
    reason: str


class ErrorDetail(_Model):
    type: str = Field(
        description="invalid_input, payload_too_large, not_found, knowledge_base_unavailable, …"
    )
    message: str
    field: str | None = Field(default=None, description="Dotted path of the offending input (lines.3.cip13)")
    reason: str | None = None
    errors: list[FieldProblem] | None = Field(default=None, description="Every problem found, when several")


class ErrorBody(_Model):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown resource"},
    413: {"model": ErrorBody, "description": "Body or prescription over the server's limits"},
    422: {"model": ErrorBody, "description": "Invalid input: the field path and the reason"},
    503: {"model": ErrorBody, "description": "Knowledge base not loaded"},
}


def errors(*statuses: int, json_media_type: bool = False) -> dict[int | str, dict[str, Any]]:
    """Documented error responses. ``json_media_type`` for a route whose success is not
    application/json (FHIR): errors are still the JSON error body, and say so."""
    if not json_media_type:
        return {status: ERROR_RESPONSES[status] for status in statuses}
    ref = {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
    return {
        status: {"description": ERROR_RESPONSES[status]["description"], "content": {"application/json": ref}}
        for status in statuses
    }


# -- analysis ----------------------------------------------------------------------------------
class ApiAlert(Alert):
    sfpc: SfpcProposal | None = Field(
        default=None, description="SFPC problem and intervention codes proposed for this alert"
    )


class ApiReport(Report):
    """The contract report; each alert also carries its proposed SFPC codes."""

    alerts: tuple[ApiAlert, ...] = ()


class ResolveRequest(_Model):
    model_config = ConfigDict(frozen=True, extra="forbid")

    lines: tuple[LineInput, ...] = Field(description="Lines as in the contract's prescription")


class ResolveResponse(_Model):
    kb_version: str
    lines: tuple[LineReport, ...]


# -- drugs ----------------------------------------------------------------------------------------
class DrugResult(_Model):
    kind: Literal["product", "substance"]
    name: str
    cis: str | None = None
    cip13: str | None = Field(default=None, description="The presentation matched, for a CIP query")
    atc: str | None = None
    marketed: bool
    match: Literal["cis", "cip13", "cip7", "exact", "prefix", "word", "fuzzy"]
    score: float


class DrugSearchResponse(_Model):
    query: str
    results: list[DrugResult]


# -- knowledge base and health --------------------------------------------------------------------
class KbSource(_Model):
    title: str
    edition: str
    licence: str


class KbInfo(_Model):
    kb_version: str
    built_at: str
    schema_version: int
    sources: dict[str, KbSource]
    coverage: dict[str, Any] = Field(
        description="Coverage figures computed from the loaded KB (lists as counts)"
    )
    checks: list[str] = Field(description="Checks a caller may select with ?checks=")


class Health(_Model):
    status: Literal["ok"]


class Ready(_Model):
    status: Literal["ready", "not_ready"]
    kb_version: str | None = None
    reason: str | None = None


# -- CDS Hooks 2.0 --------------------------------------------------------------------------------
class CdsCoding(_Model):
    system: str | None = None
    code: str
    display: str | None = None


class CdsServiceDescription(_Model):
    hook: str
    title: str
    description: str
    id: str
    prefetch: dict[str, str] = Field(default_factory=dict)
    usageRequirements: str | None = None


class CdsDiscovery(_Model):
    services: list[CdsServiceDescription]


class CdsRequest(_Model):
    """A hook call. ``context`` is checked against the hook's definition by the service."""

    hook: str
    hookInstance: str
    fhirServer: str | None = None
    fhirAuthorization: dict[str, Any] | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None


class CdsSource(_Model):
    label: str
    url: str | None = None
    topic: CdsCoding | None = None


class CdsAction(_Model):
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None
    resourceId: str | None = None


class CdsSuggestion(_Model):
    label: str
    uuid: str
    isRecommended: bool | None = None
    actions: list[CdsAction] = Field(default_factory=list)


class CdsCard(_Model):
    uuid: str
    summary: str = Field(max_length=140)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: CdsSource
    suggestions: list[CdsSuggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[CdsCoding] | None = None


class CdsResponse(_Model):
    cards: list[CdsCard]


class CdsAcceptedSuggestion(_Model):
    id: str


class CdsOverrideReason(_Model):
    reason: CdsCoding | None = None
    userComment: str | None = Field(default=None, max_length=2000)


class CdsFeedbackItem(_Model):
    card: str
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[CdsAcceptedSuggestion] | None = None
    overrideReason: CdsOverrideReason | None = None
    outcomeTimestamp: dt.datetime

    @model_validator(mode="after")
    def _accepted_names_its_suggestions(self) -> CdsFeedbackItem:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("an accepted outcome lists its acceptedSuggestions")
        return self


class CdsFeedbackRequest(_Model):
    feedback: list[CdsFeedbackItem] = Field(max_length=1000)


class CdsFeedbackResponse(_Model):
    recorded: int
    unknown_cards: int = Field(
        description="Feedback for cards this process did not issue (kept all the same)"
    )
