"""The analysis entry point: a prescription in, a report out (``shared/contract/analysis.md``)."""

from __future__ import annotations

from pydantic import ValidationError

from iatro.errors import FieldError
from iatro.kb.store import KnowledgeBase
from iatro.model.prescription import Prescription
from iatro.model.report import Report
from iatro.resolve.lines import Resolver

# Checks that later work adds; until then the report says plainly that they did not run.
PENDING_CHECKS = (
    "interactions",
    "cyp",
    "pim",
    "omission",
    "qt",
    "anticholinergic",
    "renal",
    "duplicate",
    "dose",
    "vaccine",
    "eligibility",
)


def parse_prescription(document: str | bytes) -> Prescription:
    """Validate a contract input document; the first problem is raised as a FieldError naming its path."""
    try:
        return Prescription.model_validate_json(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        path = ".".join(str(part) for part in error["loc"]) or "(document)"
        if error["type"] == "json_invalid":
            raise FieldError("(document)", f"not valid JSON: {error['msg']}") from None
        raise FieldError(path, error["msg"]) from None


class Engine:
    """Owns a loaded KB and what is derived from it once (the resolver's name index)."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.resolver = Resolver(kb)

    def analyze(self, prescription: Prescription) -> Report:
        lines = tuple(self.resolver.resolve(line, i) for i, line in enumerate(prescription.lines))
        return Report(
            kb_version=self.kb.version,
            complete=all(line.status == "resolved" for line in lines),
            lines=lines,
            checks_not_run=PENDING_CHECKS,
        )
