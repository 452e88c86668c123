"""The ANSM "Thésaurus des interactions médicamenteuses" as frozen runtime objects.

This module is the data model only: the engine imports it without the build code. The build
(``knowledge_base/builder/ansm.py``) fills it from the structured JSON of the thesaurus.

One :class:`InteractionRule` stands for one *unordered* pair {a, b} of thesaurus names. A name is
an index substance ("SIMVASTATINE"), a class label of the index ("INHIBITEURS PUISSANTS DU
CYP3A4") or, rarely, something else (alcohol, grapefruit, "médicaments administrés par voie
orale"); ``a_kind`` / ``b_kind`` say which.

Rule identifier — stable across editions because it depends on the two names only::

    key(name) = iatro.text.fold_words(name)       # lower case, no accents, letters/digits/spaces
    k1, k2    = sorted((key(a), key(b)))           # plain str ordering
    rule_id   = "ansm:" + k1 + "+" + k2

e.g. ``"ansm:inhibiteurs puissants du cyp3a4+simvastatine"``. ``fold_words`` drops every "+", so the
separator cannot be confused with a name ("OMBITASVIR + PARITAPRÉVIR" -> "ombitasvir paritaprevir").
The rule's ``a`` is always the name whose key sorts first. Curated data keyed on ``rule_id`` keeps
working when a later edition changes levels or texts, and stops matching only when ANSM renames
one side of the pair — which is a different rule.

Matching is done on folded keys: a prescribed substance matches a rule side when the side's key
is the substance's own key or the key of one of its index classes (see
:meth:`ThesaurusEdition.names_of`). That covers the one name that is both an index substance and
a class label ("insuline"), classified as a class.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from iatro.model.report import InteractionLevel
from iatro.text import fold_words

# The report contract already names the four ANSM levels; the KB uses the very same codes so a
# rule's level flows into a report without translation.
Level = InteractionLevel

SideKind = Literal["substance", "class", "other"]

#: Worst first, the order in which the thesaurus lists the levels of a multi-level rule.
LEVELS: tuple[Level, ...] = (
    "contre-indication",
    "association-deconseillee",
    "precaution-emploi",
    "a-prendre-en-compte",
)

#: Higher is worse (CI 4 ... APEC 1), so ``max`` over ranks gives the worst level.
LEVEL_RANK: Mapping[Level, int] = MappingProxyType(
    {"contre-indication": 4, "association-deconseillee": 3, "precaution-emploi": 2, "a-prendre-en-compte": 1}
)

#: The level names as the thesaurus prints them in running text (sentence case; ANSM writes
#: "A prendre en compte" without the accent on the capital).
LEVEL_LABEL: Mapping[Level, str] = MappingProxyType(
    {
        "contre-indication": "Contre-indication",
        "association-deconseillee": "Association déconseillée",
        "precaution-emploi": "Précaution d'emploi",
        "a-prendre-en-compte": "A prendre en compte",
    }
)

#: The abbreviations of the thesaurus' multi-level headers ("CI - ASDEC - APEC").
LEVEL_ABBREVIATION: Mapping[Level, str] = MappingProxyType(
    {
        "contre-indication": "CI",
        "association-deconseillee": "ASDEC",
        "precaution-emploi": "PE",
        "a-prendre-en-compte": "APEC",
    }
)


def name_key(name: str) -> str:
    """The folded key under which a thesaurus or index name is matched."""
    return fold_words(name)


def make_rule_id(a: str, b: str) -> str:
    """``"ansm:" + k1 + "+" + k2`` with k1 <= k2 the folded names (see the module docstring)."""
    k1, k2 = sorted((name_key(a), name_key(b)))
    return f"ansm:{k1}+{k2}"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LevelEntry(_Frozen):
    """One level of a rule with the text the thesaurus attaches to it.

    ``condition`` is the conduct / condition column of the thesaurus for this level (the JSON
    ``info``): when it applies ("avec le diltiazem IV") and what to do ("surveillance clinique et
    ECG"). It is often empty for single-level rules.
    """

    level: Level
    condition: str = ""

    @property
    def rank(self) -> int:
        return LEVEL_RANK[self.level]

    @property
    def label(self) -> str:
        return LEVEL_LABEL[self.level]


class RuleDirection(_Frozen):
    """One listing of the pair in the thesaurus: ``plus`` printed as "+ PLUS" under heading ``main``."""

    main: str
    plus: str
    position: int = Field(description="0-based index of the entry in the source JSON list")


class InteractionRule(_Frozen):
    rule_id: str
    edition: str
    a: str = Field(description="Name as the thesaurus prints it; its key sorts before b's")
    b: str
    a_kind: SideKind
    b_kind: SideKind
    levels: tuple[LevelEntry, ...] = Field(
        description="Worst first; several when the level depends on context"
    )
    mechanism: str = Field(description="The thesaurus' 'nature du risque et mécanisme' text")
    see_also: tuple[str, ...] = Field(
        default=(), description="'Voir aussi' cross references printed under the headings of a then b"
    )
    directions: tuple[RuleDirection, ...] = Field(description="Source listings merged into this rule")
    disagreements: tuple[str, ...] = Field(
        default=(),
        description="Fields on which the merged listings differ: 'levels', 'conditions', 'mechanism'; "
        "the rule then holds the union",
    )

    @property
    def a_key(self) -> str:
        return name_key(self.a)

    @property
    def b_key(self) -> str:
        return name_key(self.b)

    @property
    def worst(self) -> Level:
        return max(self.levels, key=lambda entry: entry.rank).level

    @property
    def rank(self) -> int:
        return LEVEL_RANK[self.worst]

    @property
    def level_codes(self) -> tuple[Level, ...]:
        """Distinct levels, worst first."""
        return tuple(dict.fromkeys(entry.level for entry in self.levels))

    @property
    def one_direction(self) -> bool:
        """True when the thesaurus lists the pair under one of its two headings only."""
        return len({name_key(d.main) for d in self.directions}) == 1

    def involves(self, name: str) -> bool:
        key = name_key(name)
        return key in (self.a_key, self.b_key)

    def other_side(self, name: str) -> str | None:
        """The side that is not ``name`` (``name`` itself for a pair of one name, None if absent)."""
        key = name_key(name)
        if key == self.a_key:
            return self.b
        if key == self.b_key:
            return self.a
        return None


class Heading(_Frozen):
    """What the thesaurus prints under an entry heading, before its first "+" line."""

    name: str
    see_also: tuple[str, ...] = ()
    note: str = Field(default="", description="A class heading's introduction, without its member list")


class ThesaurusEdition(_Frozen):
    edition: str = Field(description="ANSM edition, e.g. '2020-10'")
    source: str
    rules: tuple[InteractionRule, ...]
    substance_classes: dict[str, tuple[str, ...]] = Field(
        description="Index substance display name -> its class labels (index spelling)"
    )
    class_labels: tuple[str, ...]
    substance_aliases: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="Display name -> other index spellings merged into it (accent variants)",
    )
    alt_class_labels: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="'autres X' labels of the index -> the class labels they stand for (altClassLabels)",
    )
    headings: dict[str, Heading] = Field(default_factory=dict)

    # Lookup tables derived from the fields; private so they are neither serialised nor validated.
    _rules_by_key: dict[str, tuple[InteractionRule, ...]] = PrivateAttr(default_factory=dict)
    _rules_by_id: dict[str, InteractionRule] = PrivateAttr(default_factory=dict)
    _substance_by_key: dict[str, str] = PrivateAttr(default_factory=dict)
    _class_by_key: dict[str, str] = PrivateAttr(default_factory=dict)
    _heading_by_key: dict[str, Heading] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        by_key: dict[str, list[InteractionRule]] = {}
        for rule in self.rules:
            for key in dict.fromkeys((rule.a_key, rule.b_key)):
                by_key.setdefault(key, []).append(rule)
        self._rules_by_key = {key: tuple(rules) for key, rules in by_key.items()}
        self._rules_by_id = {rule.rule_id: rule for rule in self.rules}
        self._substance_by_key = {name_key(name): name for name in self.substance_classes}
        for name, aliases in self.substance_aliases.items():
            for alias in aliases:
                self._substance_by_key.setdefault(name_key(alias), name)
        self._class_by_key = {name_key(label): label for label in self.class_labels}
        self._heading_by_key = {name_key(name): heading for name, heading in self.headings.items()}

    def rule(self, rule_id: str) -> InteractionRule | None:
        return self._rules_by_id.get(rule_id)

    def rules_for_name(self, name: str) -> tuple[InteractionRule, ...]:
        """Rules with ``name`` (any case/accents) on one side, in edition order."""
        return self._rules_by_key.get(name_key(name), ())

    def substance(self, name: str) -> str | None:
        """The index display name of a substance, whatever its case/accents, or None."""
        return self._substance_by_key.get(name_key(name))

    def class_label(self, name: str) -> str | None:
        """The index spelling of a class label (e.g. from a rule's upper-case side), or None."""
        return self._class_by_key.get(name_key(name))

    def classes_of(self, substance: str) -> tuple[str, ...]:
        """Class labels of an index substance; () when the substance is unknown or in no class."""
        display = self.substance(substance)
        return self.substance_classes[display] if display is not None else ()

    def names_of(self, substance: str) -> tuple[str, ...]:
        """The names under which a substance meets rule sides: itself, then its classes."""
        display = self.substance(substance)
        if display is None:
            return ()
        return (display, *self.substance_classes[display])

    def rules_for_substance(self, substance: str) -> tuple[InteractionRule, ...]:
        """Rules one side of which is the substance or one of its classes, without duplicates."""
        seen: dict[str, InteractionRule] = {}
        for name in self.names_of(substance):
            for rule in self.rules_for_name(name):
                seen.setdefault(rule.rule_id, rule)
        return tuple(seen.values())

    def kind_of(self, name: str) -> SideKind:
        """How a name is classified on a rule side (class first, as for "insuline")."""
        key = name_key(name)
        if key in self._class_by_key:
            return "class"
        if key in self._substance_by_key:
            return "substance"
        return "other"

    def heading(self, name: str) -> Heading | None:
        return self._heading_by_key.get(name_key(name))
