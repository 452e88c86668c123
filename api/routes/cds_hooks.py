"""CDS Hooks 2.0: discovery, the two services, and their feedback endpoint (see :mod:`api.cds`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path

from api.cds import SERVICES, CdsServices
from api.deps import CdsDep, FeedbackDep
from api.examples import ORDER_SELECT, ORDER_SIGN
from api.schemas import (
    CdsDiscovery,
    CdsFeedbackRequest,
    CdsFeedbackResponse,
    CdsRequest,
    CdsResponse,
    errors,
)

router = APIRouter(prefix="/cds-services", tags=["CDS Hooks"])

ServiceId = Annotated[str, Path(description="A service id from the discovery", examples=sorted(SERVICES))]


@router.get("", summary="CDS Hooks discovery", response_model_exclude_none=True)
async def discovery() -> CdsDiscovery:
    return CdsDiscovery(services=list(SERVICES.values()))


@router.post(
    "/{service_id}",
    summary="Call a CDS service (order-select or order-sign)",
    response_model_exclude_none=True,
    responses=errors(404, 413, 422, 503),
)
async def call_service(
    service_id: ServiceId,
    request: Annotated[
        CdsRequest,
        Body(
            openapi_examples={
                "order-sign": {"summary": "iatro-order-sign", "value": ORDER_SIGN},
                "order-select": {"summary": "iatro-order-select", "value": ORDER_SELECT},
            }
        ),
    ],
    cds: CdsDep,
) -> CdsResponse:
    # On the event loop, like POST /v1/analyses (see api/routes/analyses.py for the measurements): an
    # analysis in memory, no I/O (the card log is in memory, its lock held for a dict insertion).
    return cds.call(service_id, request)


@router.post(
    "/{service_id}/feedback",
    summary="Feedback on cards (accepted suggestions, overrides); kept in memory for now",
    responses=errors(404, 422),
)
def feedback(service_id: ServiceId, body: CdsFeedbackRequest, log: FeedbackDep) -> CdsFeedbackResponse:
    CdsServices.describe(service_id)
    recorded, unknown = log.record(service_id, body.feedback)
    return CdsFeedbackResponse(recorded=recorded, unknown_cards=unknown)
