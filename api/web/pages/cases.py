"""The case pages: list with due follow-ups, new case from a prescription, the case view and its actions.

Every page here needs a session (:data:`PageActorDep`: the login page otherwise) and every form post
the CSRF check. A form carries the case version it was rendered with; a stale one is refused (409 page
saying someone changed the case) rather than applied over the other person's change.

After a successful post the browser is redirected (303) to the case view with a fixed confirmation
(``?ok=...``), so reloading the page never posts twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api import sfpc
from api.auth import PageActorDep, check_csrf
from api.deps import EngineDep, SettingsDep, WorkflowServiceDep
from api.limits import check_line_count
from api.web.analysis_view import analysis_view
from api.web.context import render
from api.web.forms import build, read_form
from api.web.prescription_form import form_field, parse_prescription
from api.web.templating import DISPLAY_ZONE
from iatro.errors import FieldError
from iatro.model.report import Alert
from rcp_workflow import actip
from rcp_workflow.service import (
    Actor,
    AdherenceFollowUp,
    BillingUpdate,
    BpmAnalysisInput,
    BpmQuestionnaire,
    CaseView,
    Inclusion,
    NewCase,
    NewMessage,
    NewRecommendation,
    RcpPlan,
    WorkflowService,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])

EXAMPLE_LINES = "CORDARONE 200 mg, 1 cp/j\nSEROPLEX 10 mg, 1 cp le matin\nELIQUIS 2,5 mg, 1 cp matin et soir"


def to_case(case_id: str, ok: str, anchor: str = "") -> RedirectResponse:
    return RedirectResponse(f"/dossiers/{case_id}?ok={ok}{anchor}", status_code=303)


def with_sfpc(report: dict[str, Any]) -> dict[str, Any]:
    """The stored report with each alert's proposed SFPC codes (as the analysis API serves it)."""
    alerts = []
    for data in report.get("alerts", ()):
        if "sfpc" not in data:
            proposal = sfpc.propose(Alert.model_validate(data))
            data = {**data, "sfpc": proposal.model_dump(mode="json")}
        alerts.append(data)
    return {**report, "alerts": alerts}


def latest_report(case: CaseView) -> dict[str, Any] | None:
    return with_sfpc(case.analyses[-1].report) if case.analyses else None


# ---------------------------------------------------------------------------------------------------
# List and creation
# ---------------------------------------------------------------------------------------------------


@router.get("/dossiers", name="web_cases", response_class=HTMLResponse)
async def case_list(request: Request, actor: PageActorDep, work: WorkflowServiceDep) -> HTMLResponse:
    def load() -> tuple[Any, Any]:
        return work.list_cases(actor), work.due_followups(actor)

    cases, due = await run_in_threadpool(load)
    return render(request, "cases.html", nav="cases", cases=cases, due=due, today=dt.date.today())


def _hospitals(work: WorkflowService, actor: Actor) -> list[Any]:
    return [o for o in work.list_organisations(actor) if o.kind == "hospital"]


@router.get("/dossiers/nouveau", name="web_case_new", response_class=HTMLResponse)
async def new_case_form(request: Request, actor: PageActorDep, work: WorkflowServiceDep) -> HTMLResponse:
    hospitals = await run_in_threadpool(_hospitals, work, actor)
    return render(request, "case_new.html", nav="new", form={}, example=EXAMPLE_LINES, hospitals=hospitals)


@router.post("/dossiers/nouveau", response_class=HTMLResponse)
async def new_case(
    request: Request, actor: PageActorDep, work: WorkflowServiceDep, engine: EngineDep, settings: SettingsDep
) -> Response:
    form = await read_form(request)
    try:
        prescription = parse_prescription(form.single)
        check_line_count(len(prescription.lines), settings.max_lines)
        pathway = form.get("pathway")
        patient: dict[str, Any] = {
            "pseudonym": form.optional("pseudonym"),
            "birth_year": form.integer("birth_year"),
            "sex": prescription.patient.sex,
        }
        new = build(
            NewCase,
            {
                "pathway": pathway,
                "prescription": prescription.model_dump(mode="json", exclude_none=True),
                "patient": patient,
                # A BPM belongs to the pharmacist's own officine; the choice is for hospital pathways.
                "organisation_id": form.optional("organisation_id") if pathway != "bpm" else None,
            },
        )
        case = await run_in_threadpool(lambda: work.create_case(actor, new, engine=engine))
    except FieldError as exc:
        hospitals = await run_in_threadpool(_hospitals, work, actor)
        return render(
            request,
            "case_new.html",
            status_code=422,
            nav="new",
            form=form.single,
            example=EXAMPLE_LINES,
            hospitals=hospitals,
            error=exc,
            error_field=form_field(exc.field.removeprefix("prescription.").removeprefix("patient.")),
        )
    return to_case(case.id, "created")


# ---------------------------------------------------------------------------------------------------
# The case view
# ---------------------------------------------------------------------------------------------------


def _prefill(report: dict[str, Any] | None, index: int | None) -> dict[str, Any]:
    """The recommendation form filled from one alert: the drug, the alert's text, its SFPC codes."""
    if report is None or index is None or not 0 <= index < len(report.get("alerts", ())):
        return {}
    alert = report["alerts"][index]
    drugs = [s["name"] for s in alert.get("substances", ())]
    rationale = " ".join(p for p in (alert.get("message"), alert.get("recommendation")) if p)
    return {
        "drug": drugs[0] if drugs else "",
        "rationale": rationale[:4000],
        "actip_problem": alert.get("sfpc", {}).get("problem", {}).get("code", ""),
        "actip_intervention": alert.get("sfpc", {}).get("intervention", {}).get("code", ""),
        "alert_index": index,
    }


def _prescription_text(prescription: dict[str, Any]) -> dict[str, str]:
    """A stored prescription back into the form's fields (to edit the list under review)."""
    lines = []
    for line in prescription.get("lines", ()):
        text = line.get("text") or line.get("cip13") or line.get("cis") or line.get("substance") or ""
        if line.get("posology") and not line.get("text"):
            text = f"{text} {line['posology']}"
        lines.append(text)
    patient = prescription.get("patient", {})
    return {
        "lines": "\n".join(lines),
        "age": str(patient.get("age", "") or ""),
        "sex": str(patient.get("sex", "") or ""),
        "weight_kg": str(patient.get("weight_kg", "") or ""),
        "creatinine_umol_l": str(patient.get("creatinine_umol_l", "") or ""),
        "conditions": ", ".join(patient.get("conditions", ())),
    }


@router.get("/dossiers/{case_id}", name="web_case", response_class=HTMLResponse)
async def case_view(
    request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep, alerte: int | None = None
) -> HTMLResponse:
    def load() -> tuple[Any, ...]:
        case = work.get_case(actor, case_id)
        return case, work.list_professionals(actor), work.list_messages(actor, case_id)

    case, professionals, messages = await run_in_threadpool(load)
    report = latest_report(case)
    return render(
        request,
        "case.html",
        nav="cases",
        case=case,
        view=analysis_view(report) if report else None,
        professionals=professionals,
        messages=messages,
        problems=actip.axis_codes("problem"),
        interventions=actip.axis_codes("intervention"),
        prefill=_prefill(report, alerte),
        review_form=_prescription_text(case.analyses[-1].prescription) if case.analyses else {},
        today=dt.date.today(),
    )


@router.get("/dossiers/{case_id}/journal", name="web_case_audit", response_class=HTMLResponse)
async def case_audit(
    request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep
) -> HTMLResponse:
    def load() -> tuple[Any, ...]:
        return work.get_case(actor, case_id), work.audit_trail(actor, case_id), work.list_professionals(actor)

    case, entries, professionals = await run_in_threadpool(load)
    names = {p.user_id: p.display_name for p in professionals}
    return render(request, "audit.html", nav="cases", case=case, entries=entries, names=names)


# ---------------------------------------------------------------------------------------------------
# Actions on the case (each a form post, then back to the case view)
# ---------------------------------------------------------------------------------------------------


@router.post("/dossiers/{case_id}/inclusion", name="web_include")
async def include(request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep) -> Response:
    form = await read_form(request)
    inclusion = build(
        Inclusion,
        {
            "entry_door": form.get("entry_door"),
            "consent": {
                "given_by": form.get("given_by"),
                "informed": form.checked("informed"),
                "consented": form.checked("consented"),
                "recorded_on": form.get("recorded_on") or dt.date.today().isoformat(),
                "carer_relationship": form.optional("carer_relationship"),
            },
            "medecin_traitant_agreed": form.checked("medecin_traitant_agreed"),
            "pharmacien_officine_agreed": form.checked("pharmacien_officine_agreed"),
            "eligibility_justification": form.optional("eligibility_justification"),
        },
    )
    await run_in_threadpool(work.include, actor, case_id, form.version(), inclusion)
    return to_case(case_id, "included")


@router.post("/dossiers/{case_id}/revue", name="web_start_review")
async def start_review(
    request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep
) -> Response:
    form = await read_form(request)
    await run_in_threadpool(work.start_review, actor, case_id, form.version())
    return to_case(case_id, "review")


@router.post("/dossiers/{case_id}/analyse", name="web_attach_analysis")
async def attach_analysis(
    request: Request,
    case_id: str,
    actor: PageActorDep,
    work: WorkflowServiceDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> Response:
    form = await read_form(request)
    prescription = parse_prescription(form.single)
    check_line_count(len(prescription.lines), settings.max_lines)
    document = prescription.model_dump(mode="json", exclude_none=True)
    version = form.version()
    await run_in_threadpool(lambda: work.attach_analysis(actor, case_id, version, document, engine=engine))
    return to_case(case_id, "analysis", "#analyse")


@router.post("/dossiers/{case_id}/recommandations", name="web_add_recommendation")
async def add_recommendation(
    request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep
) -> Response:
    form = await read_form(request)
    recommendation = build(
        NewRecommendation,
        {
            "action": form.get("action"),
            "drug": form.get("drug"),
            "rationale": form.get("rationale"),
            "actip_problem": form.get("actip_problem"),
            "actip_intervention": form.get("actip_intervention"),
            "responsible_role": form.get("responsible_role") or "medecin_traitant",
            "before": form.optional("before"),
            "after": form.optional("after"),
            "monitoring_what": form.optional("monitoring_what"),
            "monitoring_when": form.optional("monitoring_when"),
            "alert_index": form.integer("alert_index"),
            "line_index": form.integer("line_index"),
        },
    )
    await run_in_threadpool(work.add_recommendation, actor, case_id, form.version(), recommendation)
    return to_case(case_id, "recommendation", "#recommandations")


def _local_datetime(raw: str, field: str) -> dt.datetime:
    """A ``datetime-local`` input (wall time, no zone) read as French time."""
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise FieldError(field, f"{raw!r} n'est pas une date et heure") from None
    return value if value.tzinfo else value.replace(tzinfo=DISPLAY_ZONE)


@router.post("/dossiers/{case_id}/rcp/planifier", name="web_plan_rcp")
async def plan_rcp(request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep) -> Response:
    form = await read_form(request)
    plan = build(
        RcpPlan,
        {
            "scheduled_at": _local_datetime(form.get("scheduled_at"), "scheduled_at"),
            "modality": form.get("modality"),
            "participant_ids": form.all("participant_ids"),
        },
    )
    await run_in_threadpool(work.plan_rcp, actor, case_id, form.version(), plan)
    return to_case(case_id, "planned")


@router.post("/dossiers/{case_id}/rcp/tenir", name="web_hold_rcp")
async def hold_rcp(request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep) -> Response:
    form = await read_form(request)
    await run_in_threadpool(work.hold_rcp, actor, case_id, form.version())
    return to_case(case_id, "held")


@router.post("/dossiers/{case_id}/ppp/emettre", name="web_issue_ppp")
async def issue_ppp(
    request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep
) -> Response:
    form = await read_form(request)
    await run_in_threadpool(work.issue_ppp, actor, case_id, form.version())
    return to_case(case_id, "ppp", "#ppp")


@router.post("/dossiers/{case_id}/facturation", name="web_billing")
async def billing(request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep) -> Response:
    form = await read_form(request)
    update = BillingUpdate(
        convention_signed=form.checked("convention_signed"),
        participation_agreement_signed=form.checked("participation_agreement_signed"),
    )
    await run_in_threadpool(work.update_billing, actor, case_id, form.version(), update)
    return to_case(case_id, "billing", "#facturation")


@router.post("/dossiers/{case_id}/cloture", name="web_close")
async def close(request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep) -> Response:
    form = await read_form(request)
    await run_in_threadpool(work.close, actor, case_id, form.version())
    return to_case(case_id, "closed")


@router.post("/dossiers/{case_id}/arret", name="web_stop")
async def stop(request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep) -> Response:
    form = await read_form(request)
    reason = form.get("reason")
    if len(reason) < 3:
        raise FieldError("reason", "donnez le motif de l'arrêt")
    await run_in_threadpool(work.stop, actor, case_id, form.version(), reason)
    return to_case(case_id, "stopped")


@router.post("/dossiers/{case_id}/participants", name="web_add_participant")
async def add_participant(
    request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep
) -> Response:
    form = await read_form(request)
    user_id = form.get("user_id")
    if not user_id:
        raise FieldError("user_id", "choisissez un professionnel")
    await run_in_threadpool(work.add_participant, actor, case_id, form.version(), user_id)
    return to_case(case_id, "participant", "#participants")


@router.post("/dossiers/{case_id}/messages", name="web_post_message")
async def post_message(
    request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep
) -> Response:
    form = await read_form(request)
    message = build(
        NewMessage,
        {
            "body": form.get("body"),
            "recipient_roles": form.all("recipient_roles"),
            "recipient_ids": form.all("recipient_ids"),
        },
    )
    await run_in_threadpool(work.post_message, actor, case_id, message)
    return to_case(case_id, "message", "#messages")


# --- BPM ---------------------------------------------------------------------------------------------


@router.post("/dossiers/{case_id}/bpm/recueil", name="web_bpm_information")
async def bpm_information(
    request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep
) -> Response:
    form = await read_form(request)
    questionnaire = build(
        BpmQuestionnaire,
        {
            "adherence": form.get("adherence"),
            "missed_doses_last_week": form.integer("missed_doses_last_week") or 0,
            "self_medication": form.checked("self_medication"),
            "self_medication_details": form.optional("self_medication_details"),
            "difficulties": form.all("difficulties"),
            "difficulties_details": form.optional("difficulties_details"),
            "manages_own_medication": form.checked("manages_own_medication"),
            "notes": form.optional("notes"),
        },
    )
    await run_in_threadpool(work.record_information_interview, actor, case_id, form.version(), questionnaire)
    return to_case(case_id, "bpm")


@router.post("/dossiers/{case_id}/bpm/analyse", name="web_bpm_analysis")
async def bpm_analysis(
    request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep, engine: EngineDep
) -> Response:
    form = await read_form(request)
    new_prescription = None
    if form.get("lines"):
        new_prescription = parse_prescription(form.single).model_dump(mode="json", exclude_none=True)
    analysis = build(
        BpmAnalysisInput, {"conclusions": form.get("conclusions"), "new_prescription": new_prescription}
    )
    version = form.version()
    await run_in_threadpool(
        lambda: work.record_bpm_analysis(actor, case_id, version, analysis, engine=engine)
    )
    return to_case(case_id, "bpm")


@router.post("/dossiers/{case_id}/bpm/synthese", name="web_bpm_summary")
async def bpm_summary(
    request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep
) -> Response:
    form = await read_form(request)
    if not form.get("text"):
        raise FieldError("text", "la synthèse est vide")
    await run_in_threadpool(work.send_summary, actor, case_id, form.version(), form.get("text"))
    return to_case(case_id, "bpm")


@router.post("/dossiers/{case_id}/bpm/conseil", name="web_bpm_advice")
async def bpm_advice(
    request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep
) -> Response:
    form = await read_form(request)
    if not form.get("text"):
        raise FieldError("text", "les notes de l'entretien sont vides")
    await run_in_threadpool(work.record_advice_interview, actor, case_id, form.version(), form.get("text"))
    return to_case(case_id, "bpm")


@router.post("/dossiers/{case_id}/bpm/observance", name="web_bpm_adherence")
async def bpm_adherence(
    request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep
) -> Response:
    form = await read_form(request)
    followup = build(AdherenceFollowUp, {"adherence": form.get("adherence"), "notes": form.optional("notes")})
    await run_in_threadpool(work.record_adherence_followup, actor, case_id, form.version(), followup)
    return to_case(case_id, "bpm")
