"""Qualified levels against the naive engine that reports every rule's worst level.

Over every pair of ANSM index substances that some rule joins (directly or through classes), the
naive level is the worst level of the matching rules; the qualified level is what
:mod:`iatro.checks.qualify` gives for a patient about whom nothing is known (no dose, route or
history). With no inputs, a level can only be lowered by the substance identities themselves
(a case restricted to some members of a class, or a default that the text sets for "the others"):
every such lowering is listed with the case that justified it, so that a pharmacist can audit it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from iatro.checks.context import Exposure
from iatro.checks.interactions import InteractionIndex
from iatro.checks.qualify import qualify
from iatro.kb.thesaurus import LEVEL_RANK, LEVELS, Level
from iatro.model.prescription import Patient

_BY_RANK = {rank: level for level, rank in LEVEL_RANK.items()}


@dataclass(frozen=True, slots=True)
class Lowered:
    first: str
    second: str
    naive: Level
    qualified: Level | None  # None: the text excludes the pair from every matching rule
    rule_id: str  # the rule that gives the qualified level
    why: str  # why each rule worse than that level was lowered, with the thesaurus words


@dataclass(frozen=True, slots=True)
class QualificationReport:
    edition: str
    pairs: int
    naive: dict[str, int]
    qualified: dict[str, int]
    lowered: tuple[Lowered, ...]
    raised_or_unresolved: int  # pairs whose qualified level needs an input to be decided

    def summary(self) -> dict[str, object]:
        moves = Counter(f"{low.naive} -> {low.qualified or 'excluded'}" for low in self.lowered)
        return {
            "edition": self.edition,
            "pairs": self.pairs,
            "naive": self.naive,
            "qualified_without_inputs": self.qualified,
            "lowered": len(self.lowered),
            "lowered_by_move": dict(sorted(moves.items())),
            "pairs_with_unresolved_conditions": self.raised_or_unresolved,
        }


def compare(index: InteractionIndex) -> QualificationReport:
    kb = index.kb
    # One representative KB substance per ANSM index entry: the index is the unit of the report.
    exposures: dict[str, Exposure] = {}
    for name, entry in sorted(kb.ansm_index.items()):
        if not entry["substances"]:
            continue
        sid = entry["substances"][0]
        sub = kb.substances[sid]
        exposures[name] = Exposure(line=0, substance_id=sid, name=name, atc=sub.atc[:1], aliases=sub.ansm)
    members: list[tuple[list[str], list[str]]] = [([], []) for _ in index.rules]
    for name, exposure in exposures.items():
        for rule_index, side, _via in index.memberships[exposure.substance_id]:
            members[rule_index][side].append(name)

    patient = Patient()
    naive: dict[tuple[str, str], int] = {}
    qualified: dict[tuple[str, str], tuple[int, str, str]] = {}
    unresolved: set[tuple[str, str]] = set()
    reasons: dict[tuple[str, str], list[str]] = {}
    for rule_index, (side_a, side_b) in enumerate(members):
        rule = index.rules[rule_index]
        qualification = index.qualifications.get(rule.rule_id)
        for first in side_a:
            for second in side_b:
                if first == second:
                    continue
                key = (min(first, second), max(first, second))
                naive[key] = max(naive.get(key, 0), rule.rank)
                a = exposures[first]
                b = Exposure(
                    line=1,
                    substance_id=exposures[second].substance_id,
                    name=second,
                    atc=exposures[second].atc,
                    aliases=exposures[second].aliases,
                )
                result = qualify(rule, qualification, a, b, patient)
                rank = LEVEL_RANK[result.level] if result.level is not None else 0
                if result.unresolved_conditions:
                    unresolved.add(key)
                if key not in qualified or rank > qualified[key][0]:
                    qualified[key] = (rank, rule.rule_id, result.why)
                if rank < rule.rank:
                    # Why this rule's own worst level does not hold for the pair.
                    reasons.setdefault(key, []).append(f"{rule.rule_id}: {result.why}")
    lowered = tuple(
        Lowered(
            key[0],
            key[1],
            _BY_RANK[naive[key]],
            _BY_RANK.get(qualified[key][0]),
            qualified[key][1],
            " | ".join(reasons.get(key, [])),
        )
        for key in sorted(naive)
        if qualified[key][0] < naive[key]
    )
    count = Counter(_BY_RANK[rank] for rank in naive.values())
    count_q = Counter(_BY_RANK.get(q[0], "excluded") for q in qualified.values())
    return QualificationReport(
        edition=index.edition,
        pairs=len(naive),
        naive={level: count.get(level, 0) for level in LEVELS},
        qualified={level: count_q.get(level, 0) for level in (*LEVELS, "excluded")},
        lowered=lowered,
        raised_or_unresolved=len(unresolved),
    )
