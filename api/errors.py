"""The error hierarchy, mapped to HTTP in one place.

Domain code raises :mod:`iatro.errors` classes and never an HTTP error; :func:`status_of` is the one
table from error class to status, and :func:`error_body` the one shape every error response has:

    {"error": {"type": "invalid_input", "message": "...", "field": "lines.3.cip13", "reason": "..."}}

Two API-level errors are added here, as subclasses of the core hierarchy so the CLI would treat them
the same way (exit 2 / exit 1): a request over a configured limit, and an unknown API resource.
"""

from __future__ import annotations

from typing import Any

from iatro.errors import (
    ConflictError,
    FieldError,
    IatroError,
    InputError,
    InvalidTransition,
    KnowledgeBaseError,
    PermissionDenied,
    WorkflowError,
)


class LimitExceeded(FieldError):
    """The request is larger than the server accepts (body bytes, prescription lines): HTTP 413."""

    def __init__(self, field: str, reason: str, limit: int) -> None:
        super().__init__(field, reason)
        self.limit = limit


class NotFoundError(IatroError):
    """The caller named an API resource that does not exist (a CDS service id): HTTP 404."""


# Most specific first: the first class an error is an instance of gives its status and type.
_TABLE: tuple[tuple[type[IatroError], int, str], ...] = (
    (LimitExceeded, 413, "payload_too_large"),
    (InputError, 422, "invalid_input"),
    (NotFoundError, 404, "not_found"),
    (KnowledgeBaseError, 503, "knowledge_base_unavailable"),
    (PermissionDenied, 403, "forbidden"),
    (InvalidTransition, 409, "invalid_transition"),
    (ConflictError, 409, "conflict"),
    (WorkflowError, 409, "workflow_refused"),
)


def status_of(error: IatroError) -> tuple[int, str]:
    for cls, status, kind in _TABLE:
        if isinstance(error, cls):
            return status, kind
    # An IatroError with no more specific class is still a deliberate refusal, not a crash.
    return 500, "internal_error"


def error_body(
    kind: str,
    message: str,
    field: str | None = None,
    reason: str | None = None,
    errors: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {"type": kind, "message": message}
    if field is not None:
        error["field"] = field
    if reason is not None:
        error["reason"] = reason
    if errors:
        error["errors"] = errors
    return {"error": error}


def body_for(error: IatroError) -> tuple[int, dict[str, Any]]:
    status, kind = status_of(error)
    if isinstance(error, FieldError):
        return status, error_body(kind, str(error), field=error.field, reason=error.reason)
    if isinstance(error, KnowledgeBaseError):
        # The KB path is deployment detail; the message says what is wrong without it.
        return status, error_body(kind, "the knowledge base is not loaded; see /ready")
    return status, error_body(kind, str(error))
