"""The RCP meeting view, the PPP (preview and downloads) and the follow-up forms (J45, J90).

The RCP view records one decision per recommendation without leaving the page: each row is a small
form posted by htmx, answered with the row as saved. Each decision moves the case's version on, so the
page keeps the current version in one hidden input (``#case-version``) that every row sends and every
answer replaces (an out-of-band swap). A decision recorded meanwhile by someone else makes the next
save answer 409, shown above the rows: nothing is overwritten silently.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.auth import PageActorDep, check_csrf
from api.deps import WorkflowServiceDep
from api.routes.workflow import ppp_filename
from api.web.context import render
from api.web.forms import build, read_form
from api.web.pages.cases import to_case
from api.web.prescription_form import parse_prescription
from iatro.errors import FieldError, IatroError
from rcp_workflow.service import Decision, FollowUpInput

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])


@router.get("/dossiers/{case_id}/rcp", name="web_rcp", response_class=HTMLResponse)
async def rcp_view(
    request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep
) -> HTMLResponse:
    def load() -> tuple[Any, ...]:
        return work.get_case(actor, case_id), work.list_professionals(actor)

    case, professionals = await run_in_threadpool(load)
    names = {p.user_id: p for p in professionals}
    return render(request, "rcp.html", nav="cases", case=case, names=names)


@router.post("/dossiers/{case_id}/rcp/decisions/{recommendation_id}", name="web_record_decision")
async def record_decision(
    request: Request, case_id: str, recommendation_id: str, actor: PageActorDep, work: WorkflowServiceDep
) -> Response:
    form = await read_form(request)
    decision = build(
        Decision,
        {
            "recommendation_id": recommendation_id,
            "outcome": form.get("outcome"),
            "comment": form.optional("comment"),
        },
    )
    case = await run_in_threadpool(work.record_decision, actor, case_id, form.version(), decision)
    if not request.headers.get("hx-request"):
        # Without JavaScript the row's form posts normally: back to the RCP view.
        return RedirectResponse(f"/dossiers/{case_id}/rcp", status_code=303)
    recommendation = next(r for r in case.recommendations if r.id == recommendation_id)
    return render(request, "_decision_row.html", case=case, rec=recommendation, saved=True, oob_version=True)


# ---------------------------------------------------------------------------------------------------
# PPP
# ---------------------------------------------------------------------------------------------------


@router.get("/dossiers/{case_id}/ppp", name="web_ppp", response_class=HTMLResponse)
async def ppp_preview(
    request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep
) -> HTMLResponse:
    def load() -> tuple[Any, ...]:
        return work.get_case(actor, case_id), work.get_ppp(actor, case_id)

    case, document = await run_in_threadpool(load)
    return render(request, "ppp.html", nav="cases", case=case, ppp=document)


@router.get("/dossiers/{case_id}/ppp.pdf", name="web_ppp_pdf")
async def ppp_pdf(request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep) -> Response:
    from rcp_workflow.ppp.pdf import render_pdf

    def load() -> tuple[Any, bytes]:
        document = work.get_ppp(actor, case_id, download=True)
        return document, render_pdf(document)

    document, pdf = await run_in_threadpool(load)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{ppp_filename(document, "pdf")}"'},
    )


@router.get("/dossiers/{case_id}/ppp.fhir.json", name="web_ppp_fhir")
async def ppp_fhir(request: Request, case_id: str, actor: PageActorDep, work: WorkflowServiceDep) -> Response:
    from rcp_workflow.ppp.fhir import to_fhir

    def load() -> tuple[Any, dict[str, Any]]:
        document = work.get_ppp(actor, case_id, download=True)
        return document, to_fhir(document)

    document, bundle = await run_in_threadpool(load)
    return JSONResponse(
        bundle,
        media_type="application/fhir+json",
        headers={"Content-Disposition": f'attachment; filename="{ppp_filename(document, "fhir.json")}"'},
    )


# ---------------------------------------------------------------------------------------------------
# Follow-ups
# ---------------------------------------------------------------------------------------------------


def _day(day: int) -> int:
    if day not in (45, 90):
        raise FieldError("day", "le suivi se fait à J45 ou J90")
    return day


@router.get("/dossiers/{case_id}/suivi/{day}", name="web_followup", response_class=HTMLResponse)
async def followup_form(
    request: Request, case_id: str, day: int, actor: PageActorDep, work: WorkflowServiceDep
) -> HTMLResponse:
    _day(day)

    def load() -> tuple[Any, ...]:
        return work.get_case(actor, case_id), work.get_ppp(actor, case_id)

    case, document = await run_in_threadpool(load)
    due = next((f.due for f in case.followups if f.day == day), None)
    return render(request, "followup.html", nav="cases", case=case, ppp=document, day=day, due=due)


@router.post("/dossiers/{case_id}/suivi/{day}")
async def record_followup(
    request: Request, case_id: str, day: int, actor: PageActorDep, work: WorkflowServiceDep
) -> Response:
    _day(day)
    form = await read_form(request)
    count = form.integer("item_count") or 0
    items = []
    for index in range(count):
        answer = form.get(f"implemented_{index}")
        if answer not in ("oui", "non"):
            raise FieldError(
                f"items.{index}.implemented", "dites si la mesure a été mise en œuvre (oui ou non)"
            )
        items.append(
            {
                "item_index": index,
                "implemented": answer == "oui",
                "outcome": form.optional(f"outcome_{index}"),
            }
        )
    new_prescription = None
    engine = None
    if form.get("lines"):
        new_prescription = parse_prescription(form.single).model_dump(mode="json", exclude_none=True)
        loaded = request.app.state.iatro.loaded
        if loaded is None:
            raise request.app.state.iatro.error or IatroError("the knowledge base is not loaded")
        engine = loaded.engine
    followup = build(
        FollowUpInput, {"items": items, "notes": form.optional("notes"), "new_prescription": new_prescription}
    )
    version = form.version()
    await run_in_threadpool(
        lambda: work.record_followup(actor, case_id, version, day, followup, engine=engine)
    )
    return to_case(case_id, "followup", "#suivis")
