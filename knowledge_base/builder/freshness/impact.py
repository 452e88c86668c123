"""What an edition change does to real prescriptions (``iatro kb diff OLD NEW --impact FILE.jsonl``).

Every contract prescription of the file is resolved once, then its ANSM interaction alerts are
computed under the old and the new edition with the engine's own :class:`InteractionIndex`. An alert
is identified by its pair of substances; between the two runs it can appear, disappear, change level,
or keep its level under another rule (a renamed or regrouped rule: the same alert for the
prescriber, a different id for curation).

Each edition is run as if it were the KB's active edition: the curated qualifications apply to its
rules whose condition text still hashes to what the curation was written from
(:func:`~iatro.kb.qualifications.check_against`), which is what ``build`` does for the active
edition. The engine itself qualifies only the active edition's rules, so without this a 2019-09 vs
2020-10 run would report the curation, not ANSM's changes (AAS + méthotrexate: same text in both,
yet CI under 2019-09 and no alert at 75 mg/day under 2020-10). A change whose rule has a curation
to review under that edition is marked, because the alert then stands at the rule's worst level.

The engine builds an index only from an edition compiled into the KB (``kb.thesaurus(name)``) and
qualifies only ``ansm_active_edition``. ``iatro/`` has no hook for either, so
:class:`EditionOverlay` provides both here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iatro.analysis import Engine, parse_prescription
from iatro.checks.interactions import InteractionIndex
from iatro.errors import FieldError
from iatro.kb.qualifications import Qualification, check_against, load_qualifications
from iatro.kb.store import QUALIFICATIONS, KnowledgeBase
from iatro.kb.thesaurus import LEVEL_RANK, ThesaurusEdition
from iatro.model.report import Alert
from knowledge_base.builder.freshness.editions import LoadedEdition


class EditionOverlay(KnowledgeBase):
    """A loaded KB presented with ``edition`` as its active thesaurus edition.

    It shares the base KB's loaded tables (running ``KnowledgeBase.__init__`` again would rebuild
    400,000 objects for nothing) and overrides what the interaction index reads: the thesaurus,
    the active edition's name and the curation.
    """

    def __init__(self, base: KnowledgeBase, edition: ThesaurusEdition) -> None:
        self.__dict__.update(vars(base))
        self.edition_override = edition
        # A shallow copy: only this key differs, the tables stay shared with the base KB.
        self.raw = {**base.raw, "ansm_active_edition": edition.edition}
        self.curation_to_review: frozenset[str] = frozenset()
        if self.directory is not None and (self.directory / QUALIFICATIONS).exists():
            self._curated = load_qualifications(self.directory / QUALIFICATIONS)
            self.curation_to_review = frozenset(check_against(self._curated, edition))
        else:
            self._curated = {}

    def thesaurus(self, edition: str | None = None) -> ThesaurusEdition:
        return self.edition_override

    def qualifications(self) -> dict[str, Qualification]:
        """The curation whose text digest matches this edition's rule; the rest is never reused."""
        return {rule_id: q for rule_id, q in self._curated.items() if rule_id not in self.curation_to_review}


def interaction_index(kb: KnowledgeBase, edition: LoadedEdition) -> tuple[InteractionIndex, frozenset[str]]:
    """The engine's index for ``edition`` run as the active one, and its curation to review."""
    overlay = EditionOverlay(kb, edition.edition)
    return InteractionIndex(overlay), overlay.curation_to_review


@dataclass(frozen=True)
class AlertChange:
    prescription: int  # 1-based line of the JSONL file
    substances: tuple[str, ...]
    change: str  # appeared | disappeared | level-changed | rule-changed
    old_level: str | None
    new_level: str | None
    old_rule_id: str | None
    new_rule_id: str | None
    #: "old" / "new": that side's alert comes from a rule whose curation must be reviewed for that
    #: edition, so it stands at the rule's worst level there.
    curation_to_review: tuple[str, ...] = ()


@dataclass
class ImpactReport:
    old_edition: str
    new_edition: str
    prescriptions: int = 0
    alerts_old: int = 0
    alerts_new: int = 0
    changes: list[AlertChange] = field(default_factory=list)
    invalid: list[dict[str, Any]] = field(default_factory=list)  # {"line", "field", "reason"}

    def summary(self) -> dict[str, Any]:
        kinds = Counter(c.change for c in self.changes)
        transitions = Counter(
            f"{c.old_level} -> {c.new_level}" for c in self.changes if c.change == "level-changed"
        )
        return {
            "prescriptions": self.prescriptions,
            "prescriptions_changed": len({c.prescription for c in self.changes}),
            "invalid_lines": len(self.invalid),
            "alerts_old": self.alerts_old,
            "alerts_new": self.alerts_new,
            "appeared": kinds["appeared"],
            "disappeared": kinds["disappeared"],
            "level_changed": kinds["level-changed"],
            "level_worse": sum(1 for c in self.changes if c.change == "level-changed" and _worse(c)),
            "rule_changed": kinds["rule-changed"],
            "changes_with_curation_to_review": sum(1 for c in self.changes if c.curation_to_review),
            "level_transitions": dict(sorted(transitions.items())),
        }

    def to_json(self) -> dict[str, Any]:
        per_prescription: dict[int, list[dict[str, Any]]] = {}
        for c in self.changes:
            per_prescription.setdefault(c.prescription, []).append(
                {k: v for k, v in vars(c).items() if k != "prescription"}
            )
        return {
            "old_edition": self.old_edition,
            "new_edition": self.new_edition,
            "summary": self.summary(),
            "prescriptions": [
                {"line": line, "changes": rows} for line, rows in sorted(per_prescription.items())
            ],
            "invalid": self.invalid,
        }


#: Alert severities are plain strings in the report model; the rank of a missing alert is 0.
_RANK: dict[str | None, int] = {None: 0, **{level: rank for level, rank in LEVEL_RANK.items()}}


def _worse(change: AlertChange) -> bool:
    return _RANK[change.new_level] > _RANK[change.old_level]


def _by_pair(alerts: Iterable[Alert]) -> dict[tuple[str, ...], Alert]:
    # The index makes one alert per unordered substance pair, so the pair identifies it.
    return {tuple(s.name for s in alert.substances): alert for alert in alerts}


def _stale(alert: Alert | None, to_review: frozenset[str]) -> bool:
    return alert is not None and not to_review.isdisjoint((alert.rule_id, *alert.related_rules))


def compare_alerts(
    number: int,
    old: list[Alert],
    new: list[Alert],
    review_old: frozenset[str] = frozenset(),
    review_new: frozenset[str] = frozenset(),
) -> list[AlertChange]:
    """The changes between two alert lists of the same prescription.

    ``review_old`` / ``review_new``: rule ids whose curation must be reviewed under each edition.
    """
    before, after = _by_pair(old), _by_pair(new)
    out = []
    for pair in sorted(set(before) | set(after)):
        was, now = before.get(pair), after.get(pair)
        if was is not None and now is not None:
            if was.severity != now.severity:
                kind = "level-changed"
            elif was.rule_id != now.rule_id:
                kind = "rule-changed"
            else:
                continue
        else:
            kind = "appeared" if was is None else "disappeared"
        out.append(
            AlertChange(
                number,
                pair,
                kind,
                was.severity if was else None,
                now.severity if now else None,
                was.rule_id if was else None,
                now.rule_id if now else None,
                tuple(
                    side
                    for side, alert, review in (("old", was, review_old), ("new", now, review_new))
                    if _stale(alert, review)
                ),
            )
        )
    return out


def impact(kb: KnowledgeBase, old: LoadedEdition, new: LoadedEdition, prescriptions: Path) -> ImpactReport:
    """Interaction alerts of every prescription of ``prescriptions`` (JSONL) under both editions.

    A line that is not a valid contract prescription is recorded (line, field, reason) and skipped,
    as ``iatro analyze --batch`` does, so that one bad line does not hide the others' results.
    """
    engine = Engine(kb)
    (old_index, review_old), (new_index, review_new) = interaction_index(kb, old), interaction_index(kb, new)
    report = ImpactReport(old.edition.edition, new.edition.edition)
    try:
        handle = prescriptions.open("rb")
    except OSError as exc:
        raise FieldError("--impact", f"cannot read {prescriptions}: {exc.strerror}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                prescription = parse_prescription(raw)
            except FieldError as exc:
                report.invalid.append({"line": number, "field": exc.field, "reason": exc.reason})
                continue
            lines = tuple(engine.resolver.resolve(line, i) for i, line in enumerate(prescription.lines))
            ctx = engine.context(prescription, lines)
            before, after = old_index.check(ctx), new_index.check(ctx)
            report.prescriptions += 1
            report.alerts_old += len(before)
            report.alerts_new += len(after)
            report.changes.extend(compare_alerts(number, before, after, review_old, review_new))
    return report


def render_impact(report: ImpactReport) -> str:
    s = report.summary()
    lines = [
        f"impact on {s['prescriptions']} prescriptions ({s['invalid_lines']} invalid lines skipped): "
        f"{s['prescriptions_changed']} changed",
        f"interaction alerts: {s['alerts_old']} -> {s['alerts_new']}; appeared {s['appeared']}, "
        f"disappeared {s['disappeared']}, level changed {s['level_changed']} "
        f"(worse {s['level_worse']}), same level under another rule {s['rule_changed']}; "
        f"{s['changes_with_curation_to_review']} involve a curation to review",
    ]
    lines += [f"  {transition}: {count}" for transition, count in s["level_transitions"].items()]
    for c in report.changes:
        pair = " + ".join(c.substances)
        if c.change == "appeared":
            what = f"appeared {c.new_level} ({c.new_rule_id})"
        elif c.change == "disappeared":
            what = f"disappeared, was {c.old_level} ({c.old_rule_id})"
        elif c.change == "level-changed":
            what = f"{c.old_level} -> {c.new_level} ({c.new_rule_id})"
        else:
            what = f"{c.new_level}, rule {c.old_rule_id} -> {c.new_rule_id}"
        if c.curation_to_review:
            what += f" [curation to review under the {' and '.join(c.curation_to_review)} edition]"
        lines.append(f"  line {c.prescription}: {pair}: {what}")
    for bad in report.invalid:
        lines.append(f"  line {bad['line']}: invalid, {bad['field']}: {bad['reason']}")
    return "\n".join(lines)
