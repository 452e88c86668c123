"""Explicit-criteria lists (STOPP/START v2, and any list added as data) as `pim` / `omission` alerts.

The lists are compiled into the KB; findings of several lists about the same drug merge into one
alert that cites each list and criterion. Criteria that need an input the patient record lacks are
not guessed: they are named in ``missing_inputs`` with what would settle them.
"""

from __future__ import annotations

from iatro.checks.context import CheckContext
from iatro.checks.explicit_criteria import MergedFinding, evaluate_all, merge_hits, precompile
from iatro.checks.result import CheckResult, compiled_table
from iatro.kb.criteria import CriteriaList
from iatro.kb.store import KnowledgeBase
from iatro.model.report import Alert, SubstanceRef

_ALERT_MEMO = 50_000


class ExplicitCriteriaCheck:
    def __init__(self, kb: KnowledgeBase) -> None:
        names: list[str] = kb.raw.get("criteria_lists", [])
        self.lists = tuple(
            CriteriaList.model_validate_json(compiled_table(kb, name).read_bytes()) for name in names
        )
        for criteria in self.lists:
            precompile(criteria)
        # The worst severity any loaded criterion can give (lists may grade their criteria).
        ranks = {"high": 4, "moderate": 2, "low": 1}
        self.max_rank = max(
            (ranks[crit_list.severity_of(c)] for crit_list in self.lists for c in crit_list.criteria),
            default=0,
        )
        self._atc = {s.name: (s.atc[0] if s.atc else None) for s in kb.substances}
        # A finding's alert depends on the finding only: prescriptions repeat the same findings.
        self._alerts: dict[MergedFinding, Alert] = {}

    def run(self, ctx: CheckContext, kinds: frozenset[str] = frozenset({"pim", "omission"})) -> CheckResult:
        # Not-assessed criteria are only named below: their explanations are not rendered.
        result = evaluate_all(self.lists, ctx, explain_unknown=False)
        alerts = tuple(self._alert(f) for f in merge_hits(result.hits) if f.kind in kinds)
        waiting: dict[str, list[str]] = {}
        for hit in result.not_assessed:
            if hit.kind not in kinds:
                continue
            for need in hit.missing_inputs:
                waiting.setdefault(need, []).append(hit.criterion_id)
        missing = tuple(f"{need} ({', '.join(ids)})" for need, ids in sorted(waiting.items()))
        return CheckResult(alerts=alerts, scores={}, eligibility={}, missing_inputs=missing)

    def _alert(self, finding: MergedFinding) -> Alert:
        try:
            return self._alerts[finding]
        except KeyError:
            if len(self._alerts) >= _ALERT_MEMO:
                self._alerts.clear()
            alert = self._alerts[finding] = self._build_alert(finding)
            return alert

    def _build_alert(self, finding: MergedFinding) -> Alert:
        first = finding.hits[0]
        cited = "; ".join(f"{c.list_id} {c.criterion_id}" for c in finding.citations)
        sources = "; ".join(dict.fromkeys(f"{c.list_id} ({c.edition})" for c in finding.citations))
        why = " | ".join(" ".join(hit.why) for hit in finding.hits)
        if not first.severity_from_source:
            why += " | severity: the list does not grade its criteria; Iatro's default"
        return Alert(
            type=finding.kind,
            severity=finding.severity,
            substances=tuple(SubstanceRef(name=n, atc=self._atc.get(n)) for n in finding.substances),
            lines=finding.lines,
            source=sources,
            edition=first.edition,
            rule_id=first.criterion_id,
            related_rules=tuple(c.criterion_id for c in finding.citations[1:]),
            message=" / ".join(dict.fromkeys(c.description for c in finding.citations)),
            recommendation=("Missing: " + ", ".join(first.absent_drugs)) if first.absent_drugs else None,
            why=f"{cited}: {why}",
        )
