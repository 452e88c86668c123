"""OCR of an ordonnance over HTTP: a scan, a photograph or a PDF uploaded, its lines read (issue 7).

The upload is read by :class:`ocr.pipeline.OcrPipeline` in a worker thread (Tesseract itself runs as
a child process of that thread), never on the event loop; at most one upload per core is read at a
time, the others wait their turn. The answer is the document ``iatro ocr FILE --format json``
prints; with ``?analyze=true`` it also carries the analysis of the lines read (``analysis``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from pydantic import Field

from api.deps import EngineDep, SettingsDep
from api.errors import LimitExceeded
from api.limits import check_line_count
from api.routes._responses import FastJSONResponse
from api.routes.analyses import parse_checks, report_document
from api.schemas import ApiReport, errors
from iatro.analysis import CHECKS, Engine
from iatro.settings import Settings
from ocr.model import OcrResult
from ocr.pipeline import OcrPipeline
from ocr.workers import cores

PATH = "/v1/prescriptions/ocr"
FIELD = "file"
# A multipart body is the file plus its part headers and boundaries: the body limit of this route is
# the file limit plus this much, so that the route itself, which names the field, refuses a file.
MULTIPART_SLACK = 64 * 1024

router = APIRouter(prefix="/v1", tags=["ocr"])


class OcrResponse(OcrResult):
    """The OCR document (as ``iatro ocr --format json``); ``analysis`` only with ``?analyze=true``."""

    analysis: ApiReport | None = Field(
        default=None,
        description=(
            "The analysis of the lines read (the contract's report): report line i is OCR line i. "
            "Lines with needs_review are analysed as read: confirm them before acting on an alert."
        ),
    )


@dataclass(frozen=True)
class OcrService:
    pipeline: OcrPipeline
    limiter: anyio.CapacityLimiter


async def get_ocr(request: Request, engine: EngineDep, settings: SettingsDep) -> OcrService:
    """The app's OCR pipeline, built on the first upload (the engine exists only once the KB is loaded)."""
    service: OcrService | None = getattr(request.app.state, "ocr", None)
    if service is None or service.pipeline.engine is not engine:
        service = OcrService(_pipeline(engine, settings), anyio.CapacityLimiter(cores()))
        request.app.state.ocr = service
    return service


def _pipeline(engine: Engine, settings: Settings) -> OcrPipeline:
    return OcrPipeline(
        engine,
        workers=settings.ocr_workers,
        page_timeout=settings.ocr_page_timeout_s,
        pool="thread",  # a server's process has threads: forking it is not safe (see ocr.workers)
        max_bytes=settings.ocr_max_bytes,
    )


OcrDep = Annotated[OcrService, Depends(get_ocr)]


@router.post(
    "/prescriptions/ocr",
    summary="Read a scanned or photographed ordonnance (multipart upload)",
    description=(
        "Upload the ordonnance as the multipart field `file`: a PDF (with or without a text layer, up "
        "to 30 pages), a JPEG, PNG, TIFF or HEIC image. The answer has the lines of the analysis "
        "contract, each with `confidence`, `needs_review` and its `reasons`, `page`, `bbox` and `zone` "
        "(ALD or not), and the header's hints (RPPS, date, age, weight). A strength that does not "
        "exist for the product is snapped to the nearest that does and always flagged. A page with no "
        "drug line, or one stopped at the time limit, is named in `warnings`. `analyze=true` also runs "
        "the analysis on the lines read (`analysis`). Not an image or a PDF, or unreadable: 422 naming "
        "`file`; larger than the server's OCR limit: 413."
    ),
    response_model=OcrResponse,
    response_model_exclude_none=True,
    response_class=FastJSONResponse,
    responses=errors(413, 422, 503),
)
async def ocr_prescription(
    file: Annotated[
        UploadFile, File(description="The ordonnance: PDF, JPEG, PNG, TIFF or HEIC (scan or photograph)")
    ],
    service: OcrDep,
    engine: EngineDep,
    settings: SettingsDep,
    analyze: Annotated[bool, Query(description="Also analyse the lines read (the `analysis` field)")] = False,
    checks: Annotated[
        str | None,
        Query(description=f"With analyze: comma-separated checks, among: {', '.join(CHECKS)}"),
    ] = None,
) -> FastJSONResponse:
    selected = parse_checks(checks)
    data = await file.read()
    if len(data) > settings.ocr_max_bytes:
        raise LimitExceeded(
            FIELD, f"{len(data)} bytes; this server reads files of at most {settings.ocr_max_bytes}",
            settings.ocr_max_bytes,
        )  # fmt: skip
    result = await anyio.to_thread.run_sync(service.pipeline.read_bytes, data, FIELD, limiter=service.limiter)
    document = result.model_dump(mode="json", exclude_none=True)
    if analyze:
        check_line_count(len(result.lines), settings.max_lines)
        report = await anyio.to_thread.run_sync(engine.analyze, result.to_prescription(), selected)
        document["analysis"] = report_document(report)
    return FastJSONResponse(document)
