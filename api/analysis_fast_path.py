"""``POST /v1/analyses`` answered without the framework's per-request machinery, when nothing is unusual.

Why. Around the route's own work (parse, analyse, render: about 1 ms of CPU), FastAPI's per-request
machinery (routing, the dependency graph, the body parsed twice over: ``json.loads`` then model
validation, the response model) cost about 0.2 ms more: the ASGI app called in process takes 1.01 ms
of CPU per 15-line analysis through the route, 0.82 ms through this path (issue 6).

What. An ASGI middleware that takes the common request (exactly this path, ``Content-Type:
application/json``, a body the contract's model accepts, no limit exceeded, the engine loaded) and
answers it itself: the body is validated once, from its bytes, into the contract's ``Prescription``
(``parse_prescription``), the engine analyses it and :class:`api.report_json.ReportJson` renders
the report; the response is the one the route would send (the same ``Response`` class and headers).
Everything else (an invalid body, an unknown check, too many lines, another content type, a KB not
loaded, any error) is handed, body and all, to the FastAPI route, which answers it as it always has:
the error bodies, the statuses and the OpenAPI description stay the route's alone.
``tests/api/test_analysis_fast_path.py`` sends the same requests both ways and compares the bytes.
"""

from __future__ import annotations

from starlette.datastructures import QueryParams
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.limits import check_line_count
from api.routes.analyses import parse_checks
from api.state import ApiState
from iatro.analysis import parse_prescription
from iatro.errors import IatroError

PATH = "/v1/analyses"
# What the route would read as JSON and this path reads the same way (UTF-8 bytes): other spellings
# (``application/fhir+json``, another charset, none at all) go to the route.
_JSON = frozenset(
    {b"application/json", b"application/json; charset=utf-8", b"application/json;charset=utf-8"}
)


class AnalysisFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "POST"
            or scope.get("root_path")
            or _content_type(scope) not in _JSON
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the route see it as it would
                await self.app(scope, _replay(chunks, message, receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        answer = _answer(scope, body)
        if answer is None:
            await self.app(scope, _replay([body], None, receive), send)
            return
        await Response(answer, media_type="application/json")(scope, receive, send)


def _answer(scope: Scope, body: bytes) -> bytes | None:
    """The report's bytes, or None when the route should answer (an error, or anything unusual)."""
    state = getattr(scope["app"].state, "iatro", None)
    if not isinstance(state, ApiState) or state.loaded is None or not body:
        return None
    loaded = state.loaded
    try:
        checks = parse_checks(QueryParams(scope["query_string"]).get("checks"))
        prescription = parse_prescription(body)
        check_line_count(len(prescription.lines), state.settings.max_lines)
        report = loaded.engine.analyze(prescription, checks=checks)
    except IatroError:
        return None  # the route raises the same error again, and the app's handler answers it
    return loaded.reports(report)


def _content_type(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bytes(value).lower()
    return None


def _replay(chunks: list[bytes], last: Message | None, receive: Receive) -> Receive:
    """``receive`` for the route: the body already read, then (or the message that ended it) the rest."""
    pending: list[Message] = [
        {"type": "http.request", "body": b"".join(chunks), "more_body": last is not None}
    ]
    if last is not None:
        pending.append(last)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
