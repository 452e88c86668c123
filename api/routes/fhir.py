"""FHIR R4: ``POST /fhir/$analyze``, a Bundle in, a Bundle of DetectedIssue out.

``$analyze`` is a system-level operation in the FHIR sense (``[base]/$operation`` with base
``/fhir``) that takes its one input, a Bundle, as the request body, as FHIR allows for an operation
with a single resource parameter. See :mod:`api.fhir.inbound` for what is read and
:mod:`api.fhir.outbound` for what is returned.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fhir.resources.R4B.bundle import Bundle

from api.deps import EngineDep, FhirReaderDep, SettingsDep
from api.examples import FHIR_BUNDLE
from api.fhir.inbound import bundle_resources, validate_resource
from api.fhir.outbound import report_bundle
from api.limits import check_line_count
from api.routes._responses import FhirJSONResponse
from api.schemas import errors

router = APIRouter(prefix="/fhir", tags=["FHIR"])

_BUNDLE_SCHEMA = {
    "type": "object",
    "required": ["resourceType", "type"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["Bundle"]},
        "type": {"type": "string"},
        "timestamp": {"type": "string"},
        "entry": {"type": "array", "items": {"type": "object"}},
    },
    "description": "A FHIR R4 Bundle: Patient, MedicationRequest/-Statement, Condition, Observation",
}
_RESULT_SCHEMA = {
    "type": "object",
    "required": ["resourceType", "type"],
    "properties": {"resourceType": {"type": "string", "enum": ["Bundle"]}, "type": {"type": "string"}},
    "description": "A FHIR R4 collection Bundle of DetectedIssue and one OperationOutcome",
}


@router.post(
    "/$analyze",
    summary="Analyse a FHIR Bundle; the alerts come back as DetectedIssue resources",
    response_class=FhirJSONResponse,
    responses={
        200: {"content": {"application/fhir+json": {"schema": _RESULT_SCHEMA}}},
        **errors(413, 422, 503, json_media_type=True),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/fhir+json": {
                    "schema": _BUNDLE_SCHEMA,
                    "examples": {"treatment": {"value": FHIR_BUNDLE}},
                },
                "application/json": {"schema": _BUNDLE_SCHEMA},
            },
        }
    },
)
async def fhir_analyze(
    document: Annotated[dict[str, Any], Body()],
    engine: EngineDep,
    reader: FhirReaderDep,
    settings: SettingsDep,
) -> FhirJSONResponse:
    # On the event loop, like POST /v1/analyses (see api/routes/analyses.py for the measurements): the
    # FHIR models and the analysis are CPU-bound Python with no I/O. (fhir.resources imports a
    # resource type's module the first time it meets one: the types Iatro reads are imported with
    # api.fhir.inbound; any other type a client sends costs one import, once per process.)
    bundle = validate_resource(document, "", "Bundle")
    assert isinstance(bundle, Bundle)
    reading = reader.read(bundle_resources(bundle, ""), bundle.timestamp.date() if bundle.timestamp else None)
    check_line_count(len(reading.lines), settings.max_lines, "entry")
    report = engine.analyze(reading.prescription)
    return FhirJSONResponse(report_bundle(report, reading).model_dump_json(exclude_none=True))
