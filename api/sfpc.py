"""SFPC pharmaceutical-intervention codes proposed for each alert (problem + intervention).

The codes are the SFPC hospital classification as published in the Interop'Santé FHIR IG: the
workflow's table (``rcp_workflow/data/sfpc_codes.csv``, with its provenance) is the one copy.
The mapping from an alert to a code is Iatro's proposal, for a pharmacist to confirm when the
intervention is logged; each choice is explained below.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from iatro.model.report import Alert
from rcp_workflow import actip

Axis = Literal["problem", "intervention", "outcome"]


class SfpcCode(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    label: str
    system: str


class SfpcProposal(BaseModel):
    """What a pharmacist would most likely log for this alert, and why."""

    model_config = ConfigDict(frozen=True)

    problem: SfpcCode
    intervention: SfpcCode
    why: str


@lru_cache(maxsize=1)
def _codes() -> dict[tuple[str, str], SfpcCode]:
    return {
        key: SfpcCode(code=c.code, label=c.label, system=c.source_ref) for key, c in actip.codes().items()
    }


def code(axis: Axis, value: str) -> SfpcCode:
    return _codes()[(axis, value)]


# ANSM levels map one to one onto the SFPC problem codes 6.1-6.4 (the SFPC sheet names them so).
_INTERACTION_PROBLEM = {
    "a-prendre-en-compte": "6.1",
    "precaution-emploi": "6.2",
    "association-deconseillee": "6.3",
    "contre-indication": "6.4",
}


class _Facts(NamedTuple):
    """Everything of an alert the proposal depends on. The rules below read this, never the alert,
    so the cache key cannot miss a field they read. (A tuple: the cheapest hashable record.)"""

    kind: str
    severity: str
    same_substance: bool  # a duplicate of one substance on several lines (rule ``duplicate:substance``)
    has_alternatives: bool  # a proven substitute is listed


def _facts(alert: Alert) -> _Facts:
    return _Facts(
        alert.type, alert.severity, alert.rule_id == "duplicate:substance", bool(alert.alternatives)
    )


def propose(alert: Alert) -> SfpcProposal:
    return _propose(_facts(alert))


def propose_json(alert: Alert) -> dict[str, Any]:
    """``propose(alert).model_dump(mode="json")`` without the dump (a report has dozens of alerts).
    A new dict each call, copied from a cached one: the caller may change it."""
    cached = _propose_json(_facts(alert))
    return {
        "problem": cached["problem"].copy(),
        "intervention": cached["intervention"].copy(),
        "why": cached["why"],
    }


# Every report proposes codes for each of its alerts, and the proposals are few (alert types x
# severities x two flags): built once each, rather than two pydantic models and a string per alert.
# The models are frozen, so one instance can be shared. Bounded: a stored report (the web pages)
# may carry an alert type or severity from an older version.
@lru_cache(maxsize=512)
def _propose(facts: _Facts) -> SfpcProposal:
    problem, why = _problem(facts)
    intervention, how = _intervention(facts)
    return SfpcProposal(
        problem=code("problem", problem), intervention=code("intervention", intervention), why=f"{why}; {how}"
    )


@lru_cache(maxsize=512)
def _propose_json(facts: _Facts) -> dict[str, Any]:
    return _propose(facts).model_dump(mode="json")  # never handed out: propose_json copies it


def _problem(facts: _Facts) -> tuple[str, str]:
    kind, severity = facts.kind, facts.severity
    if kind == "interaction":
        return _INTERACTION_PROBLEM.get(severity, "6.1"), f"ANSM level {severity}"
    if kind == "cyp":
        # A pharmacokinetic interaction predicted from the FDA tables, not an ANSM thesaurus entry:
        # SFPC 6.5 is "interaction publiée, hors thésaurus".
        return "6.5", "CYP interaction outside the ANSM thesaurus"
    if kind == "pim":
        return "1", "STOPP criterion: not in line with a reference list"
    if kind in ("omission", "vaccine"):
        return "2", "recommended treatment missing"
    if kind == "duplicate":
        # One substance on several lines is an overdose risk (4); two drugs of one class are a
        # redundancy, a drug without its own indication (5).
        if facts.same_substance:
            return "4", "same substance on several lines"
        return "5", "two drugs of the same class"
    if kind == "renal":
        if severity == "high":
            return "1", "contraindicated at this renal function"
        if severity == "moderate":
            return "4", "dose above the maximum for this renal function"
        return "10", "caution at this renal function: monitoring"
    if kind == "dose":
        return "4", "dose above the reference"
    if kind == "anticholinergic":
        return "7", "anticholinergic burden: adverse-effect risk"
    if kind == "qt":
        return "10", "QT prolongation risk: ECG and potassium monitoring"
    return "10", f"{kind} alert: monitoring"


def _intervention(facts: _Facts) -> tuple[str, str]:
    kind, severity = facts.kind, facts.severity
    serious = severity in ("contre-indication", "association-deconseillee", "high")
    if kind in ("omission", "vaccine"):
        return "1", "add the missing treatment"
    if kind == "duplicate":
        return "2", "stop one of the duplicates"
    if kind == "renal" or kind == "dose":
        if severity == "high":
            return "2", "stop the drug"
        return "7", "adapt the dose"
    if kind == "cyp" and not serious:
        return "7", "adapt the dose of the victim drug"
    if serious or kind == "pim":
        # A proven alternative makes the proposal a substitution; without one, stopping is the action.
        if facts.has_alternatives:
            return "3", "replace by a proven alternative"
        return "2", "stop one of the drugs"
    return "5", "monitor (clinical, biological or ECG follow-up)"
