"""ANSM drug-drug interactions: detection through substances and classes, qualification, one alert per pair.

Built once per KB (:class:`InteractionIndex`): for every KB substance, the rules it meets and on
which side, through its ANSM index entries and their classes. Checking a prescription walks those
memberships only, so the cost grows with the prescription, not with the thesaurus.

Detection is symmetric by construction: a rule is an unordered pair, each exposure is bucketed
by the side it meets, and the pair key is the sorted pair of substance ids. Two exposures of the
same substance, or two substances of the same line (a fixed combination), are never an
interaction. Each rule's level is qualified for this patient (``iatro.checks.qualify``); the
pair's alert carries the worst qualified level and every rule that matched.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import yaml

from iatro.checks.context import CheckContext, Exposure
from iatro.checks.qualify import QualifiedLevel, qualify
from iatro.errors import KnowledgeBaseCorrupt
from iatro.kb.qualifications import Qualification
from iatro.kb.store import KnowledgeBase
from iatro.kb.thesaurus import LEVEL_LABEL, LEVEL_RANK, InteractionRule, ThesaurusEdition, name_key
from iatro.model.prescription import Patient
from iatro.model.report import Alert, SubstanceRef

SOURCE = "ANSM thésaurus des interactions médicamenteuses"
_NOBODY = Exposure(line=-1, substance_id=-1, name="", atc=())


@dataclass(frozen=True, slots=True)
class Finding:
    rule: InteractionRule
    level: QualifiedLevel
    first: Exposure  # the exposure matched to rule.a
    second: Exposure  # the exposure matched to rule.b
    via_first: str
    via_second: str


class InteractionIndex:
    """Rule memberships of every KB substance for one thesaurus edition."""

    def __init__(self, kb: KnowledgeBase, edition: str | None = None) -> None:
        thesaurus: ThesaurusEdition = kb.thesaurus(edition)
        self.kb = kb
        self.edition = thesaurus.edition
        self.rules = thesaurus.rules
        active = kb.raw.get("ansm_active_edition")
        # Curation is written against one edition's text: it never qualifies another edition's rules.
        self.qualifications: dict[str, Qualification] = kb.qualifications() if self.edition == active else {}
        by_key: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for index, rule in enumerate(self.rules):
            by_key[rule.a_key].append((index, 0))
            by_key[rule.b_key].append((index, 1))
        restricted = _class_conditions(kb)
        # Conditional memberships: (rule, side, name, routes) met only by an exposure of those routes.
        self.conditional: dict[int, tuple[tuple[int, int, str, frozenset[str]], ...]] = {}
        memberships: list[tuple[tuple[int, int, str], ...]] = []
        for substance in kb.substances:
            names: dict[str, None] = {}
            for ansm_name in substance.ansm:
                for name in thesaurus.names_of(ansm_name) or (ansm_name,):
                    names[name] = None
            found: dict[tuple[int, int], str] = {}
            conditional: list[tuple[int, int, str, frozenset[str]]] = []
            limits = [r for keys, r in restricted if not keys.isdisjoint(map(name_key, substance.ansm))]
            for name in names:
                routes = next((rs for classes, rs in limits for c in classes if c == name_key(name)), None)
                for rule_side in by_key.get(name_key(name), ()):
                    if routes is not None:
                        conditional.append((*rule_side, name, routes))
                    else:
                        found.setdefault(rule_side, name)
            memberships.append(tuple((r, side, name) for (r, side), name in sorted(found.items())))
            if conditional:
                self.conditional[substance.id] = tuple(sorted(conditional))
        self.memberships = tuple(memberships)
        # Most rules carry no qualification: their level is the same for every pair, computed once.
        self._unqualified = tuple(qualify(rule, None, _NOBODY, _NOBODY, Patient()) for rule in self.rules)
        # Sides that name a route ("médicaments administrés par voie orale"): met through the route.
        self.route_sides: dict[str, list[tuple[int, int, str, frozenset[str] | None]]] = defaultdict(list)
        for side_name, side_routes, only in _route_sides(kb):
            for rule_index, side in by_key.get(name_key(side_name), ()):
                for route in side_routes:
                    self.route_sides[route].append((rule_index, side, side_name, only))

    def findings(self, ctx: CheckContext, line: int | None = None) -> dict[tuple[int, int], list[Finding]]:
        """Qualified findings grouped by unordered substance-id pair (only pairs with ``line`` if given)."""
        buckets: dict[int, tuple[list[tuple[Exposure, str]], list[tuple[Exposure, str]]]] = {}
        for exposure in ctx.exposures:
            for rule_index, side, name in self.memberships[exposure.substance_id]:
                buckets.setdefault(rule_index, ([], []))[side].append((exposure, name))
            for rule_index, side, name, routes in self.conditional.get(exposure.substance_id, ()):
                # An unknown route keeps the membership: the worse reading.
                if exposure.route is None or exposure.route in routes:
                    buckets.setdefault(rule_index, ([], []))[side].append((exposure, name))
            if exposure.route is not None:
                for rule_index, side, name, only in self.route_sides.get(exposure.route, ()):
                    if only is None or not only.isdisjoint(map(name_key, exposure.aliases)):
                        buckets.setdefault(rule_index, ([], []))[side].append((exposure, name))
        pairs: dict[tuple[int, int], list[Finding]] = defaultdict(list)
        for rule_index in sorted(buckets):
            side_a, side_b = buckets[rule_index]
            if not side_a or not side_b:
                continue
            rule = self.rules[rule_index]
            for first, via_first in side_a:
                for second, via_second in side_b:
                    if first.substance_id == second.substance_id or first.line == second.line:
                        continue
                    if line is not None and line not in (first.line, second.line):
                        continue
                    qualification = self.qualifications.get(rule.rule_id)
                    level = (
                        qualify(rule, qualification, first, second, ctx.patient)
                        if qualification is not None
                        else self._unqualified[rule_index]
                    )
                    if level.level is None:
                        continue  # the thesaurus text excludes this combination from the rule
                    key = (
                        min(first.substance_id, second.substance_id),
                        max(first.substance_id, second.substance_id),
                    )
                    pairs[key].append(Finding(rule, level, first, second, via_first, via_second))
        return pairs

    def check(self, ctx: CheckContext, line: int | None = None) -> list[Alert]:
        """Alerts of the prescription; with ``line``, only those involving that line (re-checks)."""
        alerts = [self._alert(key, found) for key, found in self.findings(ctx, line).items()]
        return sorted(alerts, key=_alert_order)

    def _alert(self, key: tuple[int, int], found: list[Finding]) -> Alert:
        found = sorted(found, key=lambda f: (-_rank(f), f.rule.rule_id, f.first.line, f.second.line))
        main = found[0]
        level = main.level.level
        assert level is not None  # excluded findings were dropped in findings()
        substances = tuple(
            SubstanceRef(name=self.kb.substances[sid].name, atc=_atc(self.kb, sid, found)) for sid in key
        )
        lines = tuple(sorted({f.first.line for f in found} | {f.second.line for f in found}))
        via = tuple(dict.fromkeys(name for f in found for name in (f.via_first, f.via_second)))
        condition = next((e.condition for e in main.rule.levels if e.level == level), "")
        unresolved = tuple(dict.fromkeys(c for f in found for c in f.level.unresolved_conditions))
        others = [f.rule.rule_id for f in found[1:] if f.rule.rule_id != main.rule.rule_id]
        why = main.level.why + (f"; also {', '.join(dict.fromkeys(others))}" if others else "")
        names = " + ".join(s.name for s in substances)
        message = f"{LEVEL_LABEL[level]} : {names}"
        if main.rule.mechanism:
            # The thesaurus keeps the PDF's line breaks; a message reads as one sentence.
            message += ". " + " ".join(main.rule.mechanism.split())
        return Alert(
            type="interaction",
            severity=level,
            substances=substances,
            lines=lines,
            source=f"{SOURCE}, {self.edition}",
            edition=self.edition,
            rule_id=main.rule.rule_id,
            related_rules=tuple(dict.fromkeys(others)),
            via=via,
            message=message,
            recommendation=condition or None,
            unresolved_conditions=unresolved,
            why=why,
        )


def _class_conditions(
    kb: KnowledgeBase,
) -> list[tuple[frozenset[str], tuple[frozenset[str], frozenset[str]]]]:
    """(substance keys, (class keys, routes)) from the compiled ansm_class_conditions.yaml."""
    data = _compiled_yaml(kb, "ansm_class_conditions.yaml")
    out = []
    for entry in data.get("conditions", []):
        out.append(
            (
                frozenset(name_key(n) for n in entry["substances"]),
                (frozenset(name_key(c) for c in entry["classes"]), frozenset(entry["routes"])),
            )
        )
    return out


def _route_sides(kb: KnowledgeBase) -> list[tuple[str, list[str], frozenset[str] | None]]:
    data = _compiled_yaml(kb, "ansm_route_sides.yaml")
    return [
        (
            entry["side"],
            list(entry["routes"]),
            frozenset(name_key(n) for n in entry["ansm"]) if entry.get("ansm") else None,
        )
        for entry in data.get("sides", [])
    ]


def _compiled_yaml(kb: KnowledgeBase, name: str) -> dict[str, Any]:
    if kb.directory is None or not (kb.directory / name).exists():
        raise KnowledgeBaseCorrupt(f"{name} is not compiled into this knowledge base: rebuild it")
    loaded = yaml.safe_load((kb.directory / name).read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise KnowledgeBaseCorrupt(f"{name}: expected a mapping")
    return loaded


def _rank(finding: Finding) -> int:
    level = finding.level.level
    return LEVEL_RANK[level] if level is not None else 0


def _atc(kb: KnowledgeBase, substance_id: int, found: list[Finding]) -> str | None:
    for f in found:
        for exposure in (f.first, f.second):
            if exposure.substance_id == substance_id and exposure.atc:
                return exposure.atc[0]
    atc = kb.substances[substance_id].atc
    return atc[0] if atc else None


def _alert_order(alert: Alert) -> tuple[int, tuple[str, ...], tuple[int, ...]]:
    rank = LEVEL_RANK.get(alert.severity, 0)  # type: ignore[call-overload]
    return (-rank, tuple(s.name for s in alert.substances), alert.lines)
