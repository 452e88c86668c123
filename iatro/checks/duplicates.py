"""Duplications: one substance through several lines, and two substances of a duplicated class.

The same substance on several lines (DOLIPRANE + DAFALGAN + IXPRIM: paracétamol ×3) is reported
with the total daily dose the posologies give, and the lines whose dose is unknown. Class
duplications beyond those the STOPP A3 algorithm already encodes come from
``curated/duplicate_classes.yaml``. No maximum daily dose is applied: the KB holds no sourced
maxima, and the report says the dose check did not run rather than guess one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import partial

from iatro.checks.context import CheckContext, Exposure
from iatro.checks.result import AlertMemo, CheckResult, compiled_table
from iatro.kb.store import KnowledgeBase
from iatro.kb.yaml_tables import read_yaml
from iatro.model.report import Alert, SubstanceRef

TABLE = "duplicate_classes.yaml"
SAME_SUBSTANCE_SOURCE = "Iatro: the same active substance prescribed on several lines"


@dataclass(frozen=True, slots=True)
class DuplicateGroup:
    group_id: str
    label: str
    atc: tuple[str, ...]
    exclude_atc: tuple[str, ...]

    def holds(self, exposure: Exposure) -> bool:
        return any(
            c.startswith(self.atc) and not c.startswith(self.exclude_atc or ("\0",)) for c in exposure.atc
        )


class DuplicateCheck:
    def __init__(self, kb: KnowledgeBase) -> None:
        raw = read_yaml(compiled_table(kb, TABLE).read_text(encoding="utf-8"))
        self.source: str = raw["source"]
        self.groups = tuple(
            DuplicateGroup(g["id"], g["label"], tuple(g["atc"]), tuple(g.get("exclude_atc", ())))
            for g in raw["groups"]
        )
        # ATC codes of an exposure -> indices of the groups it belongs to (``holds`` reads only them).
        self._groups_of: dict[tuple[str, ...], tuple[int, ...]] = {}
        self._alerts = AlertMemo()

    def run(self, ctx: CheckContext) -> CheckResult:
        alerts = [*self._same_substance(ctx), *self._same_class(ctx)]
        return CheckResult(alerts=tuple(alerts), scores={}, eligibility={}, missing_inputs=())

    def _same_substance(self, ctx: CheckContext) -> list[Alert]:
        by_substance: dict[int, list[Exposure]] = defaultdict(list)
        for exposure in ctx.exposures:
            by_substance[exposure.substance_id].append(exposure)
        alerts = []
        for exposures in by_substance.values():
            lines = sorted({e.line for e in exposures})
            if len(lines) < 2:
                continue
            first = exposures[0]
            known = [e.mg_per_day for e in exposures if e.mg_per_day is not None]
            unknown = sorted({e.line for e in exposures if e.mg_per_day is None})
            total = sum(known)
            dose = f"{total:g} mg/j au total" if known else "dose totale inconnue"
            if known and unknown:
                dose += f" (sans les lignes {', '.join(map(str, unknown))}, dose inconnue)"
            alerts.append(
                Alert(
                    type="duplicate",
                    severity="moderate",
                    substances=(SubstanceRef(name=first.name, atc=first.atc[0] if first.atc else None),),
                    lines=tuple(lines),
                    source=SAME_SUBSTANCE_SOURCE,
                    rule_id="duplicate:substance",
                    message=f"{first.name} prescrit sur {len(lines)} lignes : {dose}",
                    recommendation=(
                        "Vérifier qu'il ne s'agit pas d'un doublon (princeps et générique, associations)."
                    ),
                    why=f"the same substance on lines {', '.join(map(str, lines))}",
                    unresolved_conditions=tuple(f"mg_per_day of line {line}" for line in unknown),
                )
            )
        return alerts

    def _same_class(self, ctx: CheckContext) -> list[Alert]:
        members_of: dict[int, list[Exposure]] = {}
        for exposure in ctx.exposures:
            groups = self._groups_of.get(exposure.atc)
            if groups is None:
                groups = tuple(i for i, g in enumerate(self.groups) if g.holds(exposure))
                self._groups_of[exposure.atc] = groups
            for i in groups:
                members_of.setdefault(i, []).append(exposure)
        alerts = []
        for i, group in enumerate(self.groups):
            members = members_of.get(i)
            if not members:
                continue
            substances = {e.substance_id: e for e in members}
            if len(substances) < 2 or len({e.line for e in members}) < 2:
                continue
            ordered = sorted(substances.values(), key=lambda e: (e.line, e.name))
            # What the alert shows but its lines: built once per combination (AlertMemo).
            key = (i, tuple((e.name, e.atc[0] if e.atc else None) for e in ordered))
            lines = tuple(sorted({e.line for e in members}))
            alerts.append(self._alerts.get(key, lines, partial(self._class_alert, group, key[1], lines)))
        return alerts

    def _class_alert(
        self, group: DuplicateGroup, substances: tuple[tuple[str, str | None], ...], lines: tuple[int, ...]
    ) -> Alert:
        names = ", ".join(name for name, _ in substances)
        return Alert(
            type="duplicate",
            severity="moderate",
            substances=tuple(SubstanceRef(name=name, atc=atc) for name, atc in substances),
            lines=lines,
            source=self.source,
            rule_id=f"duplicate:class:{group.group_id}",
            message=f"Deux {group.label} ou plus : {names}",
            recommendation="Privilégier une monothérapie optimisée dans la classe (STOPP A3).",
            why=f"ATC {', '.join(group.atc)}: {len(substances)} different substances on different lines",
        )
