"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import StateDep
from api.schemas import Health, Ready

router = APIRouter(tags=["health"])


@router.get("/health", summary="The process is up")
async def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    summary="The knowledge base is loaded and the engine can answer",
    response_model_exclude_none=True,
    responses={503: {"model": Ready, "description": "Not ready: the reason is given"}},
)
async def ready(state: StateDep, response: Response) -> Ready:
    if state.loaded is None:
        # A probe reads the status code; the body says why for the person looking.
        response.status_code = 503
        return Ready(status="not_ready", reason=str(state.error) if state.error else "starting")
    return Ready(status="ready", kb_version=state.loaded.kb.version)
