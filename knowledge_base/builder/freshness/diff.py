"""What changed between two ANSM thesaurus editions, rule by rule (``iatro kb diff``).

Rules are matched on ``rule_id`` (the folded pair of names, see ``iatro/kb/thesaurus.py``), the key
curated data uses. A rule is

* **added** / **removed** when its pair exists in one edition only;
* **renamed** when the pair is the same but a side's name changed, so the id changed and curation
  keyed on the old id no longer applies. Two cases are recognised, and nothing else is guessed:
  ANSM renamed a class ("BÊTA-BLOQUANTS (SAUF ESMOLOL)" became "… (Y COMPRIS COLLYRES)" in 2020-10:
  a class label present in the old edition only is matched to the new-only label whose index members
  overlap most, Jaccard >= 0.5), or a substance side became a new class that contains it
  ("IVACAFTOR" -> "IVACAFTOR (SEUL OU ASSOCIÉ)"). A removed rule whose sides, so mapped, give an
  added rule's id is reported as renamed instead of removed + added;
* **level changed** when its set of levels differs (a renamed pair included);
* **condition changed** when its levels are the same but the text of one of them is not. White space
  is collapsed first, as :func:`iatro.kb.qualifications.condition_digest` does, so a re-flowed line
  is not a change; a word glued to its neighbour (the JSON parser's lost line breaks) still is.

Curated qualifications are checked against the new edition with
:func:`iatro.kb.qualifications.check_against`: those listed must be reviewed before use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from iatro.kb.qualifications import Qualification, check_against
from iatro.kb.thesaurus import (
    LEVEL_ABBREVIATION,
    LEVEL_RANK,
    InteractionRule,
    Level,
    ThesaurusEdition,
    name_key,
)

#: Minimum overlap of index members for two class labels to be read as one class renamed.
RENAME_MIN_JACCARD = 0.5


@dataclass(frozen=True)
class ClassRename:
    old: str  # label as the old edition's index spells it
    new: str
    jaccard: float


@dataclass(frozen=True)
class RuleRef:
    rule_id: str
    a: str
    b: str
    levels: tuple[Level, ...]


@dataclass(frozen=True)
class LevelChange:
    rule_id: str
    old_levels: tuple[Level, ...]
    new_levels: tuple[Level, ...]
    old_rule_id: str | None = None  # set when the pair was renamed

    @property
    def direction(self) -> str:
        """ "worse" / "milder" by the worst level; "same-worst" when only a lower level moved."""
        old = max(LEVEL_RANK[level] for level in self.old_levels)
        new = max(LEVEL_RANK[level] for level in self.new_levels)
        return "worse" if new > old else "milder" if new < old else "same-worst"


@dataclass(frozen=True)
class ConditionChange:
    rule_id: str
    level: Level
    old: str
    new: str
    old_rule_id: str | None = None


@dataclass(frozen=True)
class Rename:
    old_rule_id: str
    new_rule_id: str
    how: str  # "class-renamed" | "into-new-class"


@dataclass
class EditionDiff:
    old_edition: str
    new_edition: str
    old_rules: int
    new_rules: int
    class_renames: list[ClassRename] = field(default_factory=list)
    added: list[RuleRef] = field(default_factory=list)
    removed: list[RuleRef] = field(default_factory=list)
    renamed: list[Rename] = field(default_factory=list)
    level_changed: list[LevelChange] = field(default_factory=list)
    condition_changed: list[ConditionChange] = field(default_factory=list)
    curated_to_review: list[str] | None = None  # None: no qualifications were given

    def summary(self) -> dict[str, int]:
        directions = [change.direction for change in self.level_changed]
        out = {
            "rules_old": self.old_rules,
            "rules_new": self.new_rules,
            "added": len(self.added),
            "removed": len(self.removed),
            "renamed": len(self.renamed),
            # The plain id-set figures, before renamed pairs are set apart.
            "rule_ids_added": len(self.added) + len(self.renamed),
            "rule_ids_removed": len(self.removed) + len(self.renamed),
            "level_changed": len(self.level_changed),
            "level_changed_worse": directions.count("worse"),
            "level_changed_milder": directions.count("milder"),
            "level_changed_same_worst": directions.count("same-worst"),
            "condition_changed": len({c.rule_id for c in self.condition_changed}),
        }
        if self.curated_to_review is not None:
            out["curated_qualifications_to_review"] = len(self.curated_to_review)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "old_edition": self.old_edition,
            "new_edition": self.new_edition,
            "summary": self.summary(),
            "class_renames": [vars(r) for r in self.class_renames],
            "added": [_ref_json(r) for r in self.added],
            "removed": [_ref_json(r) for r in self.removed],
            "renamed": [vars(r) for r in self.renamed],
            "level_changed": [
                {
                    "rule_id": c.rule_id,
                    "old_rule_id": c.old_rule_id,
                    "old_levels": list(c.old_levels),
                    "new_levels": list(c.new_levels),
                    "direction": c.direction,
                }
                for c in self.level_changed
            ],
            "condition_changed": [vars(c) for c in self.condition_changed],
            "curated_to_review": self.curated_to_review,
        }


def _ref_json(ref: RuleRef) -> dict[str, Any]:
    return {"rule_id": ref.rule_id, "a": ref.a, "b": ref.b, "levels": list(ref.levels)}


def _ref(rule: InteractionRule) -> RuleRef:
    return RuleRef(rule.rule_id, rule.a, rule.b, rule.level_codes)


def _members(edition: ThesaurusEdition) -> dict[str, set[str]]:
    """Class label key -> keys of the index substances filed under it."""
    out: dict[str, set[str]] = {name_key(label): set() for label in edition.class_labels}
    for substance, classes in edition.substance_classes.items():
        for label in classes:
            out.setdefault(name_key(label), set()).add(name_key(substance))
    return out


def class_renames(old: ThesaurusEdition, new: ThesaurusEdition) -> list[ClassRename]:
    """Class labels of ``old`` only, each matched to the ``new``-only label with the same members."""
    old_members, new_members = _members(old), _members(new)
    old_only = sorted(set(old_members) - set(new_members))
    new_only = set(new_members) - set(old_members)
    spelled_old = {name_key(label): label for label in old.class_labels}
    spelled_new = {name_key(label): label for label in new.class_labels}
    out = []
    for key in old_only:
        best: tuple[float, str] | None = None
        for candidate in sorted(new_only):
            union = old_members[key] | new_members[candidate]
            if not union:
                continue
            score = len(old_members[key] & new_members[candidate]) / len(union)
            if score >= RENAME_MIN_JACCARD and (best is None or score > best[0]):
                best = (score, candidate)
        if best is not None:
            new_only.discard(best[1])
            out.append(ClassRename(spelled_old[key], spelled_new[best[1]], round(best[0], 3)))
    return out


def _texts(rule: InteractionRule) -> dict[Level, str]:
    texts: dict[Level, list[str]] = {}
    for entry in rule.levels:
        texts.setdefault(entry.level, []).append(" ".join(entry.condition.split()))
    return {level: " | ".join(parts) for level, parts in texts.items()}


def _compare(old: InteractionRule, new: InteractionRule, diff: EditionDiff, renamed: bool) -> None:
    old_id = old.rule_id if renamed else None
    if set(old.level_codes) != set(new.level_codes):
        diff.level_changed.append(LevelChange(new.rule_id, old.level_codes, new.level_codes, old_id))
        return
    old_texts, new_texts = _texts(old), _texts(new)
    for level in new.level_codes:
        if old_texts[level] != new_texts[level]:
            diff.condition_changed.append(
                ConditionChange(new.rule_id, level, old_texts[level], new_texts[level], old_id)
            )


def diff_editions(
    old: ThesaurusEdition,
    new: ThesaurusEdition,
    qualifications: Mapping[str, Qualification] | None = None,
) -> EditionDiff:
    """Rule-by-rule differences from ``old`` to ``new`` (see the module docstring)."""
    diff = EditionDiff(old.edition, new.edition, len(old.rules), len(new.rules))
    diff.class_renames = class_renames(old, new)
    rename_key = {name_key(r.old): name_key(r.new) for r in diff.class_renames}
    new_members = _members(new)
    new_classes = sorted(set(new_members) - set(_members(old)))

    def side_names(key: str) -> list[tuple[str, str]]:
        """The names a side of an old rule may carry in the new edition, with how."""
        out = [(rename_key[key], "class-renamed")] if key in rename_key else [(key, "")]
        out += [(label, "into-new-class") for label in new_classes if key in new_members[label]]
        return out

    old_by_id = {rule.rule_id: rule for rule in old.rules}
    new_by_id = {rule.rule_id: rule for rule in new.rules}
    added_ids = set(new_by_id) - set(old_by_id)
    for rule_id in sorted(old_by_id):
        rule = old_by_id[rule_id]
        if rule_id in new_by_id:
            _compare(rule, new_by_id[rule_id], diff, renamed=False)
            continue
        # The id is built as make_rule_id builds it: "ansm:" + the two keys in str order.
        candidates = (
            (f"ansm:{min(a, b)}+{max(a, b)}", a_how or b_how)
            for a, a_how in side_names(rule.a_key)
            for b, b_how in side_names(rule.b_key)
        )
        found = next((c for c in candidates if c[0] in added_ids), None)
        if found is not None:
            added_ids.discard(found[0])
            diff.renamed.append(Rename(rule_id, found[0], found[1]))
            _compare(rule, new_by_id[found[0]], diff, renamed=True)
        else:
            diff.removed.append(_ref(rule))
    diff.added = [_ref(new_by_id[rule_id]) for rule_id in sorted(added_ids)]
    diff.level_changed.sort(key=lambda c: c.rule_id)
    diff.condition_changed.sort(key=lambda c: (c.rule_id, -LEVEL_RANK[c.level]))
    if qualifications is not None:
        diff.curated_to_review = check_against(qualifications, new)
    return diff


def _levels(levels: tuple[Level, ...]) -> str:
    return " - ".join(LEVEL_ABBREVIATION[level] for level in levels)


def render_text(diff: EditionDiff, old_label: str, new_label: str) -> str:
    """The diff for a pharmacist reading a terminal: figures first, then every rule by category."""
    s = diff.summary()
    lines = [
        f"ANSM thesaurus {old_label} -> {new_label}",
        f"rules: {s['rules_old']} -> {s['rules_new']}",
        f"added {s['added']}, removed {s['removed']}, renamed {s['renamed']} "
        f"(rule ids: +{s['rule_ids_added']} / -{s['rule_ids_removed']})",
        f"level changed {s['level_changed']} (worse {s['level_changed_worse']}, milder "
        f"{s['level_changed_milder']}, same worst level {s['level_changed_same_worst']}), "
        f"condition text changed {s['condition_changed']}",
    ]
    if diff.curated_to_review is not None:
        lines.append(
            f"curated qualifications to review under {diff.new_edition}: {len(diff.curated_to_review)}"
        )
    if diff.class_renames:
        lines.append("\nclasses renamed:")
        lines += [f"  {r.old}  ->  {r.new}  (members Jaccard {r.jaccard})" for r in diff.class_renames]
    sections: list[tuple[str, list[str]]] = [
        ("level changed", [_level_line(c) for c in diff.level_changed]),
        ("added", [f"  + {r.a} + {r.b}  [{_levels(r.levels)}]" for r in diff.added]),
        ("removed", [f"  - {r.a} + {r.b}  [{_levels(r.levels)}]" for r in diff.removed]),
        ("renamed", [f"  {r.old_rule_id}  ->  {r.new_rule_id}  ({r.how})" for r in diff.renamed]),
        (
            "condition text changed",
            [f"  {c.rule_id} [{LEVEL_ABBREVIATION[c.level]}]" for c in diff.condition_changed],
        ),
    ]
    for title, rows in sections:
        if rows:
            lines.append(f"\n{title} ({len(rows)}):")
            lines += rows
    if diff.curated_to_review:
        lines.append(f"\ncurated qualifications to review ({len(diff.curated_to_review)}):")
        lines += [f"  {rule_id}" for rule_id in diff.curated_to_review]
    return "\n".join(lines)


def _level_line(change: LevelChange) -> str:
    was = f" (was {change.old_rule_id})" if change.old_rule_id else ""
    return (
        f"  {change.rule_id}{was}: {_levels(change.old_levels)} -> {_levels(change.new_levels)} "
        f"[{change.direction}]"
    )
