"""Line resolution alone: what the engine recognises in each line, without running the checks."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import EngineDep, SettingsDep
from api.limits import check_line_count
from api.schemas import ResolveRequest, ResolveResponse, errors

router = APIRouter(prefix="/v1", tags=["analysis"])


@router.post(
    "/lines/resolve",
    summary="Resolve prescription lines to products and substances",
    response_model_exclude_none=True,
    responses=errors(413, 422, 503),
)
async def resolve_lines(body: ResolveRequest, engine: EngineDep, settings: SettingsDep) -> ResolveResponse:
    # On the event loop, like POST /v1/analyses (see api/routes/analyses.py): resolution is in memory.
    check_line_count(len(body.lines), settings.max_lines)
    resolver = engine.resolver
    return ResolveResponse(
        kb_version=engine.kb.version,
        lines=tuple(resolver.resolve(line, i) for i, line in enumerate(body.lines)),
    )
