"""The FastAPI application: factory, lifespan, and the one mapping of errors to HTTP.

``create_app()`` builds nothing heavy: the KB, the engine and the indexes are loaded in the lifespan,
once per process, so importing this module (the OpenAPI tooling, the tests) costs no KB load.

Errors. Domain code raises the :mod:`iatro.errors` hierarchy; :func:`_iatro_error` maps it to HTTP
with :mod:`api.errors` (invalid input 422 with the field path, over a limit 413, KB unavailable 503,
workflow refusals 409/403). Request validation by the framework gets the same body shape, so a
client reads every error the same way. Anything else is a bug: the client gets a bare 500 and the
log gets the exception's type and where it was raised, never its message, which may quote the
request (a patient's data).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import web
from api.analysis_fast_path import AnalysisFastPath
from api.auth import NotAuthenticated
from api.errors import body_for, error_body
from api.limits import BodySizeLimit
from api.routes import analyses, cds_hooks, drugs, fhir, health, kb, lines, ocr, workflow
from api.routes.workflow import PreconditionRequired
from api.state import ApiState, gc_policy, load, open_workflow
from api.web.errors import html_error, html_not_found, is_page
from iatro.errors import IatroError, KnowledgeBaseMissing
from iatro.settings import Settings, get_settings

log = logging.getLogger("iatro.api")

DESCRIPTION = """\
Medication-safety analysis for polymedicated older patients (France): ANSM interactions, CYP,
STOPP/START, duplicates, QT, anticholinergic burden, renal function, vaccines.

- `POST /v1/analyses`: the analysis contract (JSON in, report out);
- `POST /cds-services/{id}`: CDS Hooks 2.0 (`order-select`, `order-sign`);
- `POST /fhir/$analyze`: a FHIR R4 Bundle in, DetectedIssue resources out;
- `POST /v1/prescriptions/ocr`: a scanned or photographed ordonnance (multipart `file`) to lines;
- `/v1/auth/…`, `/v1/cases/…`: the RCP workflow (bearer token, `If-Match` on every change); the
  French web pages at `/`.

Errors have one shape: `{"error": {"type", "message", "field", "reason"}}`.
"""


def _version() -> str:
    try:
        return version("iatro")
    except PackageNotFoundError:  # a source tree without an installed distribution
        return "0+unknown"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = load(settings)
        state.workflow = open_workflow(settings)
        # Once started: the policy freezes what the startup left, then the engine's caches as they
        # fill, so that full collections stop walking them under load (api/gc_policy.py).
        state.gc_policy = gc_policy(settings)
        if state.gc_policy is not None:
            state.gc_policy.install()
        app.state.iatro = state
        try:
            yield
        finally:
            if state.gc_policy is not None:
                state.gc_policy.remove()
            state.workflow.db.dispose()

    app = FastAPI(
        title="Iatro",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    # Until the lifespan has run, every KB-backed route answers 503 rather than failing on a missing
    # attribute (a client that forgot to start the app, a request racing the startup).
    app.state.iatro = ApiState(settings=settings, error=KnowledgeBaseMissing("the knowledge base is loading"))
    app.add_exception_handler(IatroError, _iatro_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(NotAuthenticated, _not_authenticated)  # type: ignore[arg-type]
    app.add_exception_handler(PreconditionRequired, _precondition_required)  # type: ignore[arg-type]
    for router in (analyses.router, lines.router, drugs.router, kb.router, cds_hooks.router, fhir.router):
        app.include_router(router)
    app.include_router(workflow.router)
    app.include_router(workflow.auth_router)
    app.include_router(health.router)
    app.include_router(ocr.router)
    web.install(app)  # the French pages of the RCP workflow and their static files
    # Innermost: the common POST /v1/analyses is answered there, anything else goes on to the route.
    app.add_middleware(AnalysisFastPath)
    # Last added runs first: the access log sees every response, the 413s of the body limit included.
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        path_limits={ocr.PATH: settings.ocr_max_bytes + ocr.MULTIPART_SLACK},
    )
    app.add_middleware(AccessLog)
    return app


async def _iatro_error(request: Request, exc: IatroError) -> Response:
    if is_page(request):
        return html_error(request, exc)
    status, body = body_for(exc)
    return JSONResponse(body, status_code=status)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        if error.get("type") == "json_invalid":
            field = "(document)"
            reason = f"not valid JSON: {error.get('ctx', {}).get('error', error.get('msg', ''))}"
        else:
            # "body" is where FastAPI puts the request body; the contract's paths start inside it.
            field = ".".join(loc[1:] if loc[:1] == ["body"] else loc) or "(document)"
            reason = str(error.get("msg", "invalid"))
        problems.append({"field": field, "reason": reason})
    first = problems[0] if problems else {"field": "(document)", "reason": "invalid"}
    body = error_body(
        "invalid_input", f"{first['field']}: {first['reason']}", first["field"], first["reason"], problems
    )
    return JSONResponse(body, status_code=422)


async def _not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
    if is_page(request):
        return html_error(request, exc)  # the login page
    return JSONResponse(
        error_body("unauthorized", str(exc)), status_code=401, headers={"WWW-Authenticate": "Bearer"}
    )


async def _precondition_required(request: Request, exc: PreconditionRequired) -> JSONResponse:
    return JSONResponse(error_body("precondition_required", str(exc), "If-Match", str(exc)), status_code=428)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 404 and is_page(request):
        return html_not_found(request)
    if exc.status_code == 400:
        # FastAPI's only 400 is a body it cannot decode (bytes that are not UTF-8 text): an invalid
        # document like any other, so the same 422 and body as a JSON syntax error.
        reason = f"not valid JSON: {exc.detail}"
        return JSONResponse(
            error_body("invalid_input", f"(document): {reason}", "(document)", reason), status_code=422
        )
    kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(error_body(kind, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)


class AccessLog:
    """One log line per request: method, path, status, duration. No query string, no body, no
    header: they are where a patient's data would be. Also the last line of defence: an unhandled
    exception becomes a 500 with the error body, logged by type and location only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        started = False

        async def send_status(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except Exception as exc:
            frames = traceback.extract_tb(exc.__traceback__)
            where = " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in reversed(frames[-4:]))
            log.error(
                "unhandled %s in %s %s at %s", type(exc).__name__, scope["method"], scope["path"], where
            )
            if not started:
                await _send_json(
                    send, 500, error_body("internal_error", "internal error; the server log has the details")
                )
            status = 500
        log.info(
            "%s %s %d %.1f ms", scope["method"], scope["path"], status, (time.perf_counter() - start) * 1000
        )


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
