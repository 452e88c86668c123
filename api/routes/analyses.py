"""The analysis contract over HTTP: a prescription in, the report out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from fastapi.responses import Response

from api.deps import LoadedDep, SettingsDep
from api.limits import check_line_count
from api.report_json import report_document
from api.routes._responses import FastJSONResponse
from api.schemas import ApiReport, errors
from iatro.analysis import CHECKS
from iatro.errors import FieldError
from iatro.model.prescription import Prescription

router = APIRouter(prefix="/v1", tags=["analysis"])

EXAMPLE = {
    "date": "2026-11-24",
    "patient": {
        "age": 84,
        "sex": "F",
        "weight_kg": 52,
        "creatinine_umol_l": 110,
        "conditions": ["I48", "I10", "K25"],
        "labs": {"potassium_mmol_l": 3.2, "qtc_ms": 480, "heart_rate_bpm": 58},
        "vaccinations": [{"vaccine": "grippe", "date": "2025-10-20"}],
    },
    "lines": [
        {"text": "PREVISCAN 20 mg, 3/4 cp le soir"},
        {"cip13": "3400936110694"},
        {"substance": "amiodarone", "dose_mg_per_day": 200, "route": "orale"},
        {"substance": "clarithromycine"},
    ],
}


def parse_checks(checks: str | None) -> frozenset[str] | None:
    if checks is None:
        return None
    selected = frozenset(c.strip() for c in checks.split(",") if c.strip())
    unknown = sorted(selected - set(CHECKS))
    if unknown:
        raise FieldError("query.checks", f"unknown check(s) {unknown}; known: {', '.join(CHECKS)}")
    return selected


__all__ = ["EXAMPLE", "parse_checks", "report_document", "router"]


@router.post(
    "/analyses",
    summary="Analyse a prescription (the analysis contract)",
    description=(
        "The contract's prescription in, its report out. Unknown codes and unrecognised lines are "
        "reported as unresolved lines (200), never guessed. `checks` selects checks (default: all)."
    ),
    response_model=ApiReport,
    response_class=FastJSONResponse,
    responses=errors(413, 422, 503),
)
async def analyze(
    prescription: Annotated[Prescription, Body(openapi_examples={"contract": {"value": EXAMPLE}})],
    loaded: LoadedDep,
    settings: SettingsDep,
    checks: Annotated[
        str | None,
        Query(
            description=f"Comma-separated checks, among: {', '.join(CHECKS)}", examples=["interactions,cyp"]
        ),
    ] = None,
) -> Response:
    # The common request does not reach this function: api/analysis_fast_path.py answers it, with the
    # same bytes. ``async def`` on purpose: the analysis is CPU-bound Python, so a thread pool gains
    # no parallelism (the GIL) and costs a hop per request plus threads contending for the GIL under
    # load. On the event loop, analyses run one after another, first come first served: 15-line
    # prescriptions, 50 clients, one worker: 1.60 ms of server CPU per request against 2.00 ms in the
    # pool, p99 121 ms against 186 ms (issue 6). Parallelism comes from workers (`--workers N`).
    selected = parse_checks(checks)
    check_line_count(len(prescription.lines), settings.max_lines)
    report = loaded.engine.analyze(prescription, checks=selected)
    # The same bytes as FastJSONResponse(report_document(report)), from remembered pieces.
    return Response(loaded.reports(report), media_type="application/json")
