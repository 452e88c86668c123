"""Request limits: body size (an ASGI middleware) and prescription length (a check the routes call).

The body limit is enforced before any parsing, on the bytes actually received rather than on the
declared Content-Length alone: a chunked upload has no Content-Length, and a client can lie.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import LimitExceeded, body_for

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def check_line_count(count: int, limit: int, field: str = "lines") -> None:
    """Refuse a prescription longer than ``limit`` lines (HTTP 413 through the error handler)."""
    if count > limit:
        raise LimitExceeded(field, f"{count} lines; this server accepts at most {limit}", limit)


class BodySizeLimit:
    """Answers 413 to a body over ``max_bytes``; otherwise hands the app the body it buffered.

    Buffering is bounded by the limit itself (1 MB by default), and it lets the refusal happen before
    the framework starts parsing, so a refused request never costs a JSON parse.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, path_limits: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # A route that takes larger bodies than the rest (an uploaded image): its own limit, by path.
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope["path"], self.max_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(send, declared, limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left; nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(send, size, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # later calls wait for the disconnect, as the server would

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, size: int, limit: int) -> None:
        error = LimitExceeded("(body)", f"{size} bytes or more; this server accepts at most {limit}", limit)
        status, body = body_for(error)
        payload = orjson.dumps(body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    # The rest of the body is not read: the connection cannot be reused safely.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
