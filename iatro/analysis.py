"""The analysis entry point: a prescription in, a report out (``shared/contract/analysis.md``)."""

from __future__ import annotations

from typing import Protocol

from pydantic import ValidationError

from iatro.checks.alternatives import AlternativeFinder
from iatro.checks.anticholinergic import AnticholinergicCheck
from iatro.checks.context import CheckContext, Exposure
from iatro.checks.cyp import CypModel
from iatro.checks.duplicates import DuplicateCheck
from iatro.checks.eligibility import EligibilityCheck
from iatro.checks.exposures import ExposureKey, build_exposures
from iatro.checks.interactions import InteractionIndex
from iatro.checks.pim import ExplicitCriteriaCheck
from iatro.checks.qt import QtCheck
from iatro.checks.renal import RenalCheck
from iatro.checks.result import CheckResult
from iatro.checks.vaccines import VaccineCheck, compiled_vaccine_rules
from iatro.errors import FieldError
from iatro.kb.store import KnowledgeBase
from iatro.model.prescription import Prescription
from iatro.model.report import Alert, LineReport, Report
from iatro.resolve.lines import Resolver

# Checks that later work adds; until then the report says plainly that they did not run.
# The checks a caller may select (``--checks``); "interactions" is the ANSM check.
CHECKS = (
    "interactions",
    "cyp",
    "pim",
    "omission",
    "duplicate",
    "anticholinergic",
    "qt",
    "renal",
    "vaccine",
    "eligibility",
    "alternatives",
)
# No sourced maximum daily doses in the KB yet: the dose check is reported as not run.
PENDING_CHECKS = ("dose",)


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


class GeriatricCheck(Protocol):
    def run(self, ctx: CheckContext) -> CheckResult: ...


class Engine:
    """Owns a loaded KB and what is derived from it once (the resolver's name index)."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.resolver = Resolver(kb)
        self.interactions = InteractionIndex(kb)
        self.cyp = CypModel.from_kb(kb)
        self.criteria = ExplicitCriteriaCheck(kb)
        self.alternatives = AlternativeFinder(kb, self._recheck)
        self._exposures: dict[ExposureKey, Exposure] = {}  # shared between prescriptions (immutable)
        # Checks that return scores and eligibility as well as alerts, in report order.
        self.geriatric: tuple[tuple[str, GeriatricCheck], ...] = (
            ("duplicate", DuplicateCheck(kb)),
            ("anticholinergic", AnticholinergicCheck(kb)),
            ("qt", QtCheck(kb)),
            ("renal", RenalCheck(kb)),
            ("vaccine", VaccineCheck(compiled_vaccine_rules(kb))),
            ("eligibility", EligibilityCheck(kb)),
        )

    def _recheck(self, ctx: CheckContext, line: int, min_rank: int) -> list[Alert]:
        """The checks a substitution can change, re-run on a modified prescription.

        Explicit-criteria findings cannot outrank the alert being replaced when their worst possible
        severity (STOPP/START: "moderate") is below it; they are then not re-run.
        """
        alerts = [*self.interactions.check(ctx, line), *self.cyp.check(ctx)]
        if min_rank <= self.criteria.max_rank:
            alerts.extend(self.criteria.run(ctx, frozenset({"pim"})).alerts)
        return alerts

    def context(self, prescription: Prescription, lines: tuple[LineReport, ...]) -> CheckContext:
        return CheckContext(
            exposures=build_exposures(self.kb, lines, prescription.lines, self._exposures),
            patient=prescription.patient,
            date=prescription.date,
            unresolved_lines=tuple(line.index for line in lines if line.status != "resolved"),
        )

    def analyze(self, prescription: Prescription, checks: frozenset[str] | None = None) -> Report:
        lines = tuple(self.resolver.resolve(line, i) for i, line in enumerate(prescription.lines))
        ctx = self.context(prescription, lines)
        alerts = []
        if checks is None or "interactions" in checks:
            alerts.extend(self.interactions.check(ctx))
        if checks is None or "cyp" in checks:
            alerts.extend(self.cyp.check(ctx))
        scores: dict[str, object] = {}
        eligibility: dict[str, object] = {}
        missing: list[str] = []
        kinds = frozenset(k for k in ("pim", "omission") if checks is None or k in checks)
        if kinds:
            found = self.criteria.run(ctx, kinds)
            alerts.extend(found.alerts)
            missing.extend(found.missing_inputs)
        for name, check in self.geriatric:
            if checks is not None and name not in checks:
                continue
            result = check.run(ctx)
            alerts.extend(result.alerts)
            scores.update(result.scores)
            eligibility.update(result.eligibility)
            missing.extend(m for m in result.missing_inputs if m not in missing)
        if checks is None or "alternatives" in checks:
            alerts = self.alternatives.attach(alerts, ctx)
        return Report(
            kb_version=self.kb.version,
            complete=all(line.status == "resolved" for line in lines),
            lines=lines,
            alerts=tuple(alerts),
            scores=scores,
            eligibility=eligibility,
            missing_inputs=tuple(missing),
            checks_not_run=PENDING_CHECKS
            + tuple(c for c in CHECKS if checks is not None and c not in checks),
        )
