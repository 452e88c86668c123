"""« Analyser une ordonnance »: the engine on a typed or pasted prescription, nothing stored.

Open like ``POST /v1/analyses`` (no login): the page keeps nothing, it shows the report and forgets
it. The workflow's pages, which store cases, require a login.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from api.deps import EngineDep, SettingsDep
from api.limits import check_line_count
from api.routes.analyses import report_document
from api.web.analysis_view import analysis_view
from api.web.context import page
from api.web.prescription_form import form_field, parse_prescription
from iatro.errors import FieldError

router = APIRouter(include_in_schema=False)

EXAMPLE_LINES = "CORDARONE 200 mg, 1 cp/j\nSEROPLEX 10 mg, 1 cp le matin\nELIQUIS 2,5 mg, 1 cp matin et soir"


@router.get("/analyser", name="web_analyze", response_class=HTMLResponse)
async def analyze_form(request: Request) -> HTMLResponse:
    return await page(request, "analyze.html", nav="analyze", form={"lines": ""}, example=EXAMPLE_LINES)


@router.post("/analyser", response_class=HTMLResponse)
async def analyze(request: Request, engine: EngineDep, settings: SettingsDep) -> HTMLResponse:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    try:
        prescription = parse_prescription(form)
        check_line_count(len(prescription.lines), settings.max_lines)
    except FieldError as exc:
        return await page(
            request,
            "analyze.html",
            status_code=422,
            nav="analyze",
            form=form,
            example=EXAMPLE_LINES,
            error=exc,
            error_field=form_field(exc.field),
        )
    # The engine is CPU-bound: off the event loop, as the sync JSON route is.
    report = await run_in_threadpool(engine.analyze, prescription)
    view = analysis_view(report_document(report))
    return await page(request, "analyze.html", nav="analyze", form=form, example=EXAMPLE_LINES, view=view)
