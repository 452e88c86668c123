"""The RCP workflow over HTTP (JSON): cases, transitions, recommendations, decisions, PPP, follow-ups.

Every route needs ``Authorization: Bearer <token>`` (:mod:`api.auth`); a token comes from
``POST /v1/auth/login`` (a session) or ``POST /v1/auth/tokens`` (a named token for other software).

Concurrency. A case carries a version. ``GET /v1/cases/{id}`` answers it as the ``ETag`` (``"7"``); every
request that changes the case must send it back in ``If-Match``. Missing: 428 Precondition Required (a
client that forgot it would otherwise overwrite blindly). Stale (someone changed the case since): 409
``conflict``, the change is not applied; read the case again. Each successful change answers the new
case with its new ``ETag``. Messages do not change the case and need no ``If-Match``.

Errors have the API's one shape. An unknown case and a case the caller may not see both answer 403
(ids cannot be probed); a state that does not allow the action answers 409 ``invalid_transition``
with the allowed actions in the message.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import ApiActorDep, NotAuthenticated
from api.deps import AuthDep, EngineDep, WorkflowServiceDep
from api.schemas import ErrorBody
from iatro.errors import FieldError, IatroError
from rcp_workflow.service import (
    AdherenceFollowUp,
    AuditEntry,
    BillingUpdate,
    BpmAnalysisInput,
    BpmQuestionnaire,
    CaseSummary,
    CaseView,
    Decision,
    DueFollowUp,
    FollowUpInput,
    Inclusion,
    MessageView,
    NewCase,
    NewMessage,
    NewRecommendation,
    OrganisationView,
    ProfessionalView,
    RcpPlan,
)

router = APIRouter(prefix="/v1", tags=["workflow"])
auth_router = APIRouter(prefix="/v1/auth", tags=["authentication"])


class PreconditionRequired(IatroError):
    """A change of a case sent without ``If-Match``: HTTP 428."""


# ---------------------------------------------------------------------------------------------------
# Versions: ETag out, If-Match in
# ---------------------------------------------------------------------------------------------------


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(if_match: str | None) -> int:
    """The version an ``If-Match`` header names: ``"7"``, ``W/"7"`` or ``7``."""
    if if_match is None or not if_match.strip():
        raise PreconditionRequired(
            "If-Match is required on a change: send the case's ETag (its version) as read by GET"
        )
    value = if_match.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    if not value.isdigit():
        raise FieldError("If-Match", f'{if_match!r} is not a case version (an ETag such as "7")')
    return int(value)


_DESCRIPTIONS = {
    401: "No valid bearer token",
    403: "The case is unknown or not visible to the caller, or the role may not do this",
    409: "Stale If-Match (conflict), or the case's state does not allow the action",
    422: "Invalid input: the field path and the reason",
    428: "If-Match missing on a change",
    503: "Knowledge base not loaded (the analysis cannot run)",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]} for status in statuses}


IfMatch = Annotated[
    str | None, Header(alias="If-Match", description='The case\'s ETag as read by GET, e.g. "7"')
]


def case_response(
    case: CaseView, status_code: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        case.model_dump(mode="json"),
        status_code=status_code,
        headers={"ETag": etag(case.version), **(headers or {})},
    )


CaseId = Annotated[str, Path(description="The case id", max_length=64)]
_WRITE_ERRORS = errors(401, 403, 409, 422, 428)
_READ_ERRORS = errors(401, 403, 422)

# ---------------------------------------------------------------------------------------------------
# Authentication
# ---------------------------------------------------------------------------------------------------


class Credentials(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1000)


class TokenRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="What the token is for (shown in lists)")
    days: int | None = Field(default=None, ge=1, le=3650, description="Lifetime; none: until revoked")


class StopRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str = Field(min_length=3, max_length=2000)


class ParticipantRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str = Field(min_length=1, max_length=64)


class TextRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(min_length=1, max_length=8000)


@auth_router.post("/login", summary="A session token for e-mail and password", responses=errors(401, 422))
def login(credentials: Credentials, auth: AuthDep) -> dict[str, Any]:
    session = auth.login(credentials.email, credentials.password)
    if session is None:
        raise NotAuthenticated("unknown e-mail or wrong password")
    return {
        "token": session.token,
        "token_type": "Bearer",
        "expires_at": session.expires_at.isoformat(),
        "actor": session.actor.model_dump(mode="json"),
    }


@auth_router.post(
    "/logout", summary="End the session of this bearer token", status_code=204, responses=errors(401)
)
def logout(request: Request, actor: ApiActorDep, auth: AuthDep) -> Response:
    token = request.headers["authorization"].partition(" ")[2].strip()
    auth.logout(token)
    return Response(status_code=204)


@auth_router.post(
    "/tokens",
    summary="A named API token for other software (shown once)",
    status_code=201,
    responses=errors(401, 422),
)
def create_token(body: TokenRequest, actor: ApiActorDep, auth: AuthDep) -> dict[str, Any]:
    ttl = dt.timedelta(days=body.days) if body.days else None
    token = auth.create_api_token(actor.user_id, body.name, ttl=ttl)
    return token.model_dump(mode="json")


@auth_router.get("/me", summary="Who this token belongs to", responses=errors(401))
def me(actor: ApiActorDep) -> dict[str, Any]:
    return actor.model_dump(mode="json")


# ---------------------------------------------------------------------------------------------------
# Directory and lists
# ---------------------------------------------------------------------------------------------------


@router.get("/organisations", summary="Organisations (to pick a hospital)", responses=_READ_ERRORS)
def organisations(actor: ApiActorDep, work: WorkflowServiceDep) -> list[OrganisationView]:
    return list(work.list_organisations(actor))


@router.get("/professionals", summary="Professionals (RCP participants, recipients)", responses=_READ_ERRORS)
def professionals(actor: ApiActorDep, work: WorkflowServiceDep) -> list[ProfessionalView]:
    return list(work.list_professionals(actor))


class CaseList(BaseModel):
    cases: list[CaseSummary]
    due_followups: list[DueFollowUp]


@router.get("/cases", summary="The cases the caller may see, with the follow-ups due", responses=_READ_ERRORS)
def list_cases(
    actor: ApiActorDep,
    work: WorkflowServiceDep,
    pathway: Literal["iatroprev", "optimedoc", "bpm"] | None = None,
    state: str | None = None,
) -> CaseList:
    return CaseList(
        cases=list(work.list_cases(actor, pathway=pathway, state=state)),
        due_followups=list(work.due_followups(actor)),
    )


@router.get("/followups/due", summary="Follow-ups due, overdue first", responses=_READ_ERRORS)
def due_followups(actor: ApiActorDep, work: WorkflowServiceDep) -> list[DueFollowUp]:
    return list(work.due_followups(actor))


# ---------------------------------------------------------------------------------------------------
# A case
# ---------------------------------------------------------------------------------------------------


@router.post(
    "/cases",
    summary="Open a case from a prescription (repérage); the analysis runs on the app's engine",
    status_code=201,
    response_model=CaseView,
    responses=errors(401, 403, 422, 503),
)
def create_case(
    new: NewCase, actor: ApiActorDep, work: WorkflowServiceDep, engine: EngineDep
) -> JSONResponse:
    case = work.create_case(actor, new, engine=engine)
    return case_response(case, 201, {"Location": f"/v1/cases/{case.id}"})


@router.get(
    "/cases/{case_id}",
    summary="One case (audited read); ETag = version",
    response_model=CaseView,
    responses=_READ_ERRORS,
)
def get_case(case_id: CaseId, actor: ApiActorDep, work: WorkflowServiceDep) -> JSONResponse:
    return case_response(work.get_case(actor, case_id))


@router.post(
    "/cases/{case_id}/include", summary="Inclusion", response_model=CaseView, responses=_WRITE_ERRORS
)
def include(
    case_id: CaseId,
    inclusion: Inclusion,
    actor: ApiActorDep,
    work: WorkflowServiceDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    return case_response(work.include(actor, case_id, expected_version(if_match), inclusion))


@router.post(
    "/cases/{case_id}/participants",
    summary="Add a professional to the case",
    response_model=CaseView,
    responses=_WRITE_ERRORS,
)
def add_participant(
    case_id: CaseId,
    body: ParticipantRequest,
    actor: ApiActorDep,
    work: WorkflowServiceDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    return case_response(work.add_participant(actor, case_id, expected_version(if_match), body.user_id))


@router.post(
    "/cases/{case_id}/start-review",
    summary="Start the medication review",
    response_model=CaseView,
    responses=_WRITE_ERRORS,
)
def start_review(
    case_id: CaseId, actor: ApiActorDep, work: WorkflowServiceDep, if_match: IfMatch = None
) -> JSONResponse:
    return case_response(work.start_review(actor, case_id, expected_version(if_match)))


@router.post(
    "/cases/{case_id}/analyses",
    summary="Replace the medication list under review and attach its analysis",
    response_model=CaseView,
    responses=errors(401, 403, 409, 422, 428, 503),
)
def attach_analysis(
    case_id: CaseId,
    prescription: Annotated[dict[str, Any], Body(description="The analysis contract's input document")],
    actor: ApiActorDep,
    work: WorkflowServiceDep,
    engine: EngineDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    version = expected_version(if_match)
    return case_response(work.attach_analysis(actor, case_id, version, prescription, engine=engine))


@router.post(
    "/cases/{case_id}/recommendations",
    summary="Add a recommendation (Act-IP coded)",
    response_model=CaseView,
    responses=_WRITE_ERRORS,
)
def add_recommendation(
    case_id: CaseId,
    recommendation: NewRecommendation,
    actor: ApiActorDep,
    work: WorkflowServiceDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    return case_response(work.add_recommendation(actor, case_id, expected_version(if_match), recommendation))


@router.post("/cases/{case_id}/rcp", summary="Plan the RCP", response_model=CaseView, responses=_WRITE_ERRORS)
def plan_rcp(
    case_id: CaseId, plan: RcpPlan, actor: ApiActorDep, work: WorkflowServiceDep, if_match: IfMatch = None
) -> JSONResponse:
    return case_response(work.plan_rcp(actor, case_id, expected_version(if_match), plan))


@router.post(
    "/cases/{case_id}/decisions",
    summary="Record the RCP's decision on one recommendation",
    response_model=CaseView,
    responses=_WRITE_ERRORS,
)
def record_decision(
    case_id: CaseId,
    decision: Decision,
    actor: ApiActorDep,
    work: WorkflowServiceDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    return case_response(work.record_decision(actor, case_id, expected_version(if_match), decision))


@router.post(
    "/cases/{case_id}/rcp/hold",
    summary="Mark the RCP held (every recommendation decided)",
    response_model=CaseView,
    responses=_WRITE_ERRORS,
)
def hold_rcp(
    case_id: CaseId, actor: ApiActorDep, work: WorkflowServiceDep, if_match: IfMatch = None
) -> JSONResponse:
    return case_response(work.hold_rcp(actor, case_id, expected_version(if_match)))


@router.post(
    "/cases/{case_id}/ppp",
    summary="Issue the plan pharmaceutique personnalisé",
    response_model=CaseView,
    responses=_WRITE_ERRORS,
)
def issue_ppp(
    case_id: CaseId, actor: ApiActorDep, work: WorkflowServiceDep, if_match: IfMatch = None
) -> JSONResponse:
    return case_response(work.issue_ppp(actor, case_id, expected_version(if_match)))


@router.get(
    "/cases/{case_id}/ppp",
    summary="The issued PPP as JSON (the document the PDF renders)",
    responses=_READ_ERRORS,
)
def get_ppp(case_id: CaseId, actor: ApiActorDep, work: WorkflowServiceDep) -> dict[str, Any]:
    return ppp_json(work.get_ppp(actor, case_id))


@router.get(
    "/cases/{case_id}/ppp.pdf",
    summary="The issued PPP as PDF (download audited)",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, **_READ_ERRORS},
)
def download_ppp_pdf(case_id: CaseId, actor: ApiActorDep, work: WorkflowServiceDep) -> Response:
    from rcp_workflow.ppp.pdf import render_pdf  # reportlab is loaded on the first download only

    document = work.get_ppp(actor, case_id, download=True)
    return Response(
        render_pdf(document),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{ppp_filename(document, "pdf")}"'},
    )


@router.get(
    "/cases/{case_id}/ppp.fhir.json",
    summary="The issued PPP as a FHIR R4 Bundle (CarePlan + proposed MedicationRequests; download audited)",
    responses=_READ_ERRORS,
)
def download_ppp_fhir(case_id: CaseId, actor: ApiActorDep, work: WorkflowServiceDep) -> JSONResponse:
    from rcp_workflow.ppp.fhir import to_fhir

    document = work.get_ppp(actor, case_id, download=True)
    return JSONResponse(
        to_fhir(document),
        media_type="application/fhir+json",
        headers={"Content-Disposition": f'attachment; filename="{ppp_filename(document, "fhir.json")}"'},
    )


@router.post(
    "/cases/{case_id}/followups/{day}",
    summary="Record the day-45 or day-90 follow-up",
    response_model=CaseView,
    responses=errors(401, 403, 409, 422, 428, 503),
)
def record_followup(
    case_id: CaseId,
    day: Annotated[int, Path(description="45 or 90")],
    followup: FollowUpInput,
    actor: ApiActorDep,
    work: WorkflowServiceDep,
    request: Request,
    if_match: IfMatch = None,
) -> JSONResponse:
    if day not in (45, 90):
        raise FieldError("day", "the follow-ups are at day 45 and day 90")
    version = expected_version(if_match)
    # The engine only when a new medication list is to be re-analysed: a follow-up without one is
    # recorded even while the knowledge base is unavailable.
    engine = None
    if followup.new_prescription is not None:
        loaded = request.app.state.iatro.loaded
        if loaded is None:
            raise request.app.state.iatro.error or IatroError("the knowledge base is not loaded")
        engine = loaded.engine
    return case_response(work.record_followup(actor, case_id, version, day, followup, engine=engine))


@router.post(
    "/cases/{case_id}/billing",
    summary="Update the billing checklist",
    response_model=CaseView,
    responses=_WRITE_ERRORS,
)
def update_billing(
    case_id: CaseId,
    update: BillingUpdate,
    actor: ApiActorDep,
    work: WorkflowServiceDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    return case_response(work.update_billing(actor, case_id, expected_version(if_match), update))


@router.post(
    "/cases/{case_id}/close",
    summary="Close (billing checklist complete)",
    response_model=CaseView,
    responses=_WRITE_ERRORS,
)
def close(
    case_id: CaseId, actor: ApiActorDep, work: WorkflowServiceDep, if_match: IfMatch = None
) -> JSONResponse:
    return case_response(work.close(actor, case_id, expected_version(if_match)))


@router.post(
    "/cases/{case_id}/stop",
    summary="Stop the pathway (reason)",
    response_model=CaseView,
    responses=_WRITE_ERRORS,
)
def stop(
    case_id: CaseId, body: StopRequest, actor: ApiActorDep, work: WorkflowServiceDep, if_match: IfMatch = None
) -> JSONResponse:
    return case_response(work.stop(actor, case_id, expected_version(if_match), body.reason))


# --- BPM --------------------------------------------------------------------------------------------


@router.post(
    "/cases/{case_id}/bpm/information-interview",
    summary="BPM: information interview",
    response_model=CaseView,
    responses=_WRITE_ERRORS,
)
def bpm_information(
    case_id: CaseId,
    body: BpmQuestionnaire,
    actor: ApiActorDep,
    work: WorkflowServiceDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    return case_response(work.record_information_interview(actor, case_id, expected_version(if_match), body))


@router.post(
    "/cases/{case_id}/bpm/analysis",
    summary="BPM: analysis of the treatments",
    response_model=CaseView,
    responses=errors(401, 403, 409, 422, 428, 503),
)
def bpm_analysis(
    case_id: CaseId,
    body: BpmAnalysisInput,
    actor: ApiActorDep,
    work: WorkflowServiceDep,
    engine: EngineDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    version = expected_version(if_match)
    return case_response(work.record_bpm_analysis(actor, case_id, version, body, engine=engine))


@router.post(
    "/cases/{case_id}/bpm/summary",
    summary="BPM: summary sent to the médecin traitant",
    response_model=CaseView,
    responses=_WRITE_ERRORS,
)
def bpm_summary(
    case_id: CaseId, body: TextRequest, actor: ApiActorDep, work: WorkflowServiceDep, if_match: IfMatch = None
) -> JSONResponse:
    return case_response(work.send_summary(actor, case_id, expected_version(if_match), body.text))


@router.post(
    "/cases/{case_id}/bpm/advice-interview",
    summary="BPM: advice interview",
    response_model=CaseView,
    responses=_WRITE_ERRORS,
)
def bpm_advice(
    case_id: CaseId, body: TextRequest, actor: ApiActorDep, work: WorkflowServiceDep, if_match: IfMatch = None
) -> JSONResponse:
    return case_response(work.record_advice_interview(actor, case_id, expected_version(if_match), body.text))


@router.post(
    "/cases/{case_id}/bpm/adherence-followup",
    summary="BPM: adherence follow-up",
    response_model=CaseView,
    responses=_WRITE_ERRORS,
)
def bpm_adherence(
    case_id: CaseId,
    body: AdherenceFollowUp,
    actor: ApiActorDep,
    work: WorkflowServiceDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    return case_response(work.record_adherence_followup(actor, case_id, expected_version(if_match), body))


# --- messages and audit -----------------------------------------------------------------------------


@router.get("/cases/{case_id}/messages", summary="The case's message thread", responses=_READ_ERRORS)
def list_messages(case_id: CaseId, actor: ApiActorDep, work: WorkflowServiceDep) -> list[MessageView]:
    return list(work.list_messages(actor, case_id))


@router.post(
    "/cases/{case_id}/messages",
    summary="Record a message (Iatro does not deliver it)",
    status_code=201,
    responses=errors(401, 403, 422),
)
def post_message(
    case_id: CaseId, message: NewMessage, actor: ApiActorDep, work: WorkflowServiceDep
) -> MessageView:
    return work.post_message(actor, case_id, message)


@router.get(
    "/cases/{case_id}/audit", summary="Who read or changed the case, oldest first", responses=_READ_ERRORS
)
def audit(case_id: CaseId, actor: ApiActorDep, work: WorkflowServiceDep) -> list[AuditEntry]:
    return list(work.audit_trail(actor, case_id))


# ---------------------------------------------------------------------------------------------------


def ppp_json(document: Any) -> dict[str, Any]:
    """The PPP value object as JSON data (dates as ISO strings)."""

    def iso(value: Any) -> Any:
        if isinstance(value, dt.date | dt.datetime):
            return value.isoformat()
        if isinstance(value, list | tuple):
            return [iso(v) for v in value]
        if isinstance(value, dict):
            return {k: iso(v) for k, v in value.items()}
        return value

    data: dict[str, Any] = iso(dataclasses.asdict(document))
    return data


def ppp_filename(document: Any, extension: str) -> str:
    return f"ppp-{document.patient_pseudonym}-v{document.version}.{extension}"
