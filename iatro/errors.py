"""The one error hierarchy of Iatro.

Every error a caller can meet derives from :class:`IatroError`; no built-in exception is meant to
cross a package boundary. The API maps these classes to HTTP statuses in a single handler and the
CLI maps them to exit codes; domain code never raises HTTP errors.

    IatroError
    ├── KnowledgeBaseError              the compiled knowledge base cannot be used
    │   ├── KnowledgeBaseMissing        no compiled KB at the configured path (run `iatro kb build`)
    │   ├── KnowledgeBaseCorrupt        an artefact's hash or the schema version does not match the manifest
    │   └── SourceError                 a source file is missing or malformed during the build
    ├── InputError                      the caller's input is invalid (exit 2, HTTP 422)
    │   └── FieldError                  one field is invalid; carries the field path and the reason
    └── WorkflowError                   a workflow action is refused
        ├── InvalidTransition           the case is not in a state that allows the action
        ├── PermissionDenied            the user may not see or change this object
        └── ConflictError               the object changed since the caller read it (version mismatch)
"""

from __future__ import annotations


class IatroError(Exception):
    """Base of every error raised on purpose by Iatro."""


class KnowledgeBaseError(IatroError):
    """The compiled knowledge base cannot be built or used."""


class KnowledgeBaseMissing(KnowledgeBaseError):
    """No compiled knowledge base where the settings point."""


class KnowledgeBaseCorrupt(KnowledgeBaseError):
    """An artefact does not match the manifest (hash, schema version or missing file)."""


class SourceError(KnowledgeBaseError):
    """A knowledge source is missing or malformed at build time."""


class InputError(IatroError):
    """The caller's input is invalid."""


class FieldError(InputError):
    """One field of the input is invalid.

    ``field`` is a dotted path into the input document (``lines.3.cip13``) so that a person or a
    program can find the offending value without reading a stack trace.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class WorkflowError(IatroError):
    """A workflow action is refused."""


class InvalidTransition(WorkflowError):
    """The case's current state does not allow the requested action."""


class PermissionDenied(WorkflowError):
    """The user may not see or change this object."""


class ConflictError(WorkflowError):
    """The object changed since the caller read it."""
