"""An analysis report (the contract's JSON) arranged for a page: alerts grouped by severity, in French.

The templates read only what this module builds, so the grouping and the labels are tested without a
browser. The input is the report document as the API serves it (``api.routes.analyses.report_document``:
the contract's report, each alert with its proposed SFPC codes) or as the workflow stored it.

Order of the groups: the four ANSM levels from the most serious, then the other kinds of alert, each
kind ordered by its worst severity (high, moderate, low) and then by the order below. Nothing is
dropped: an alert type or a severity this module does not know goes into a group of its own, labelled
with its raw name, after the known ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The ANSM levels, most serious first, with the labels of the thésaurus.
ANSM_LEVELS: tuple[tuple[str, str], ...] = (
    ("contre-indication", "Contre-indication"),
    ("association-deconseillee", "Association déconseillée"),
    ("precaution-emploi", "Précaution d'emploi"),
    ("a-prendre-en-compte", "À prendre en compte"),
)

# Other alert types of the contract, in the order a reader meets them when severities tie.
KIND_LABELS: dict[str, str] = {
    "cyp": "Interactions pharmacocinétiques (CYP, prédites)",
    "qt": "Risque d'allongement du QT",
    "pim": "Médicaments potentiellement inappropriés (STOPP)",
    "omission": "Omissions de traitement (START)",
    "renal": "Adaptation à la fonction rénale",
    "dose": "Posologie",
    "duplicate": "Doublons",
    "anticholinergic": "Charge anticholinergique",
    "vaccine": "Vaccinations à proposer",
    "interaction": "Interactions (niveau non reconnu)",
}

SEVERITY_LABELS: dict[str, str] = {"high": "élevée", "moderate": "modérée", "low": "faible"}
_SEVERITY_RANK = {"high": 0, "moderate": 1, "low": 2}

LINE_STATUS_LABELS: dict[str, str] = {
    "resolved": "reconnue",
    "ambiguous": "ambiguë",
    "unresolved": "non reconnue",
}

PATHWAY_LABELS: dict[str, str] = {
    "iatroprev": "Iatroprev",
    "optimedoc": "Optimedoc",
    "bilan_partage_medication": "Bilan partagé de médication",
    "bpm": "Bilan partagé de médication",
}


@dataclass(frozen=True, slots=True)
class AlertView:
    index: int  # position in the report's alerts: what a recommendation links to
    alert: Mapping[str, Any]
    severity_label: str
    drugs: str  # the substances, or the lines' inputs when the alert names none


@dataclass(frozen=True, slots=True)
class AlertGroup:
    key: str  # css-friendly: the ANSM level or the alert type
    label: str
    ansm: bool  # an ANSM interaction level (drawn with its level's colour)
    alerts: tuple[AlertView, ...]


@dataclass(frozen=True, slots=True)
class Eligibility:
    key: str
    label: str
    value: bool | None  # None: undecided, the reasons say what is missing
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AnalysisView:
    report: Mapping[str, Any]
    complete: bool
    kb_version: str
    lines: tuple[Mapping[str, Any], ...]
    unresolved: tuple[Mapping[str, Any], ...]  # lines not resolved: the analysis does not cover them
    groups: tuple[AlertGroup, ...]
    alert_count: int
    eligibility: tuple[Eligibility, ...]
    anticholinergic: Mapping[str, Any] | None
    qt: Mapping[str, Any] | None
    renal: Mapping[str, Any] | None
    missing_inputs: tuple[str, ...]
    checks_not_run: tuple[str, ...]


def _drugs(alert: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]) -> str:
    names = [s.get("name", "") for s in alert.get("substances", ()) if s.get("name")]
    if not names:
        by_index = {line.get("index"): line for line in lines}
        names = [str(by_index[i].get("input", "")) for i in alert.get("lines", ()) if i in by_index]
    return " + ".join(dict.fromkeys(names))


def group_alerts(report: Mapping[str, Any]) -> tuple[AlertGroup, ...]:
    lines = report.get("lines", ())
    alerts = [
        AlertView(
            index=i,
            alert=a,
            severity_label=SEVERITY_LABELS.get(str(a.get("severity")), str(a.get("severity"))),
            drugs=_drugs(a, lines),
        )
        for i, a in enumerate(report.get("alerts", ()))
    ]
    groups: list[AlertGroup] = []
    ansm_keys = {level for level, _ in ANSM_LEVELS}
    for level, label in ANSM_LEVELS:
        members = [
            v for v in alerts if v.alert.get("type") == "interaction" and v.alert.get("severity") == level
        ]
        if members:
            groups.append(AlertGroup(key=level, label=label, ansm=True, alerts=tuple(members)))
    others: dict[str, list[AlertView]] = {}
    for view in alerts:
        kind = str(view.alert.get("type"))
        if kind == "interaction" and view.alert.get("severity") in ansm_keys:
            continue
        others.setdefault(kind, []).append(view)
    known_order = list(KIND_LABELS)

    def kind_order(kind: str) -> tuple[int, int, str]:
        worst = min(_SEVERITY_RANK.get(str(v.alert.get("severity")), 3) for v in others[kind])
        position = known_order.index(kind) if kind in KIND_LABELS else len(known_order)
        return worst, position, kind

    for kind in sorted(others, key=kind_order):
        members = sorted(
            others[kind], key=lambda v: (_SEVERITY_RANK.get(str(v.alert.get("severity")), 3), v.index)
        )
        groups.append(
            AlertGroup(key=kind, label=KIND_LABELS.get(kind, kind), ansm=False, alerts=tuple(members))
        )
    return tuple(groups)


def _eligibility(report: Mapping[str, Any]) -> tuple[Eligibility, ...]:
    data = report.get("eligibility") or {}
    reasons = data.get("reasons") or {}
    out = []
    for key in ("iatroprev", "optimedoc", "bilan_partage_medication"):
        if key in data:
            value = data[key]
            out.append(
                Eligibility(
                    key=key,
                    label=PATHWAY_LABELS[key],
                    value=value if isinstance(value, bool) else None,
                    reasons=tuple(str(r) for r in reasons.get(key, ())),
                )
            )
    return tuple(out)


def analysis_view(report: Mapping[str, Any]) -> AnalysisView:
    lines = tuple(report.get("lines", ()))
    scores = report.get("scores") or {}
    groups = group_alerts(report)
    return AnalysisView(
        report=report,
        complete=bool(report.get("complete", False)),
        kb_version=str(report.get("kb_version", "")),
        lines=lines,
        unresolved=tuple(line for line in lines if line.get("status") != "resolved"),
        groups=groups,
        alert_count=sum(len(g.alerts) for g in groups),
        eligibility=_eligibility(report),
        anticholinergic=scores.get("anticholinergic"),
        qt=scores.get("qt"),
        renal=scores.get("renal"),
        missing_inputs=tuple(str(m) for m in report.get("missing_inputs", ())),
        checks_not_run=tuple(str(c) for c in report.get("checks_not_run", ())),
    )
