"""Curated, versioned qualification of multi-level (and member-restricted) ANSM thesaurus rules.

The thesaurus gives some pairs several levels (or restricts a level to some members of a class) in
free text: "avec le diltiazem IV", "pour des doses de méthotrexate supérieures à 20 mg par
semaine", "entre l'oxybate de sodium et les opiacés". A :class:`Qualification` turns that text into
ordered, machine-checkable :class:`Case` s; :mod:`iatro.checks.qualify` evaluates them.

Versioning: each qualification records ``condition_sha256``, the digest of the rule's level/condition
texts it was written from (:func:`condition_digest`). When a later edition rewrites the text the
digest no longer matches and :func:`check_against` lists the rule for review, instead of the engine
silently applying a reading of a text that is gone.

Every case carries ``quote``: the exact thesaurus words that justify it. The tests check each quote
against the rule's condition texts, so no case can be invented.

Case ``level`` may be ``None``: the text *excludes* that combination from the rule ("sauf
osimertinib et vandétanib", "seules les formes administrées par voie intraveineuse sont
concernées"). The evaluator then reports that the rule does not apply.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from iatro.errors import SourceError
from iatro.kb.thesaurus import InteractionRule, Level, ThesaurusEdition
from iatro.kb.yaml_tables import read_yaml
from iatro.text import fold_words

#: Routes as :class:`iatro.checks.context.Exposure` normalises them ("buccale" / "sublinguale" for
#: the sublingual midazolam of the thesaurus).
Route = Literal[
    "orale",
    "injectable",
    "cutanee",
    "ophtalmique",
    "transdermique",
    "inhalee",
    "nasale",
    "rectale",
    "vaginale",
    "buccale",
    "sublinguale",
    "auriculaire",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Range(_Frozen):
    """Bounds on one number; every bound given must hold (``ge`` 50 and ``le`` 375 = [50, 375])."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> Range:
        if self.ge is None and self.gt is None and self.le is None and self.lt is None:
            raise ValueError("a range needs at least one of ge, gt, le, lt")
        return self

    def contains(self, value: float) -> bool:
        return (
            (self.ge is None or value >= self.ge)
            and (self.gt is None or value > self.gt)
            and (self.le is None or value <= self.le)
            and (self.lt is None or value < self.lt)
        )

    def describe(self) -> str:
        parts = [
            f"{op} {bound:g}"
            for op, bound in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
            if bound is not None
        ]
        return " and ".join(parts)


def _folded_set(names: tuple[str, ...] | None) -> frozenset[str] | None:
    return None if names is None else frozenset(fold_words(name) for name in names)


@dataclass(frozen=True, slots=True)
class CompiledSide:
    substances: frozenset[str] | None
    not_substances: frozenset[str] | None
    routes: tuple[str, ...] | None
    mg_per_intake: Range | None
    mg_per_day: Range | None
    mg_per_week: Range | None


@dataclass(frozen=True, slots=True)
class CompiledCase:
    sides: tuple[CompiledSide, CompiledSide]
    patient: bool  # whether any patient condition is set


class Case(_Frozen):
    """One reading of the text: when all its conditions hold, the rule has ``level``.

    Side ``a`` is the rule's ``a`` (the name whose key sorts first). ``either_side`` also tries the
    case with the two exposures swapped: needed when one substance belongs to both sides' classes
    (the sedatives, the torsadogens) and the caller's side assignment is arbitrary.
    """

    level: Level | None
    quote: str = Field(min_length=3)
    either_side: bool = False
    substances_a: tuple[str, ...] | None = None
    substances_b: tuple[str, ...] | None = None
    not_substances_a: tuple[str, ...] | None = None
    not_substances_b: tuple[str, ...] | None = None
    route_a: tuple[Route, ...] | None = None
    route_b: tuple[Route, ...] | None = None
    mg_per_intake_a: Range | None = None
    mg_per_intake_b: Range | None = None
    mg_per_day_a: Range | None = None
    mg_per_day_b: Range | None = None
    # Weekly dose = mg_per_day x 7 (methotrexate "> 20 mg/semaine"); the exposure's mg_per_day is
    # taken as the average daily dose.
    mg_per_week_a: Range | None = None
    mg_per_week_b: Range | None = None
    patient_conditions: tuple[str, ...] | None = Field(default=None, description="CIM-10 prefixes, any")
    not_patient_conditions: tuple[str, ...] | None = None
    patient_sex: Literal["F", "M"] | None = None
    age: Range | None = None
    egfr_ml_min: Range | None = None
    potassium_mmol_l: Range | None = None

    @field_validator("patient_conditions", "not_patient_conditions")
    @classmethod
    def _cim10_prefixes(cls, codes: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if codes is None:
            return None
        out = tuple(code.strip().upper().replace(".", "") for code in codes)
        for code in out:
            if not code or not code[0].isalpha():
                raise ValueError(f"{code!r} is not a CIM-10 prefix")
        return out

    @model_validator(mode="after")
    def _has_condition(self) -> Case:
        conditions = self.model_dump(exclude={"level", "quote", "either_side"}, exclude_none=True)
        if not conditions:
            raise ValueError("a case needs a condition; the unconditional level is the default")
        return self

    @cached_property
    def compiled(self) -> CompiledCase:
        """Folded sets and per-side tuples, built once: pydantic attribute access and name folding
        cost more than the whole evaluation, which must stay at a few microseconds."""
        return CompiledCase(
            sides=(
                CompiledSide(
                    _folded_set(self.substances_a),
                    _folded_set(self.not_substances_a),
                    self.route_a,
                    self.mg_per_intake_a,
                    self.mg_per_day_a,
                    self.mg_per_week_a,
                ),
                CompiledSide(
                    _folded_set(self.substances_b),
                    _folded_set(self.not_substances_b),
                    self.route_b,
                    self.mg_per_intake_b,
                    self.mg_per_day_b,
                    self.mg_per_week_b,
                ),
            ),
            patient=any(
                v is not None
                for v in (
                    self.patient_conditions,
                    self.not_patient_conditions,
                    self.patient_sex,
                    self.age,
                    self.egfr_ml_min,
                    self.potassium_mmol_l,
                )
            ),
        )


class Default(_Frozen):
    """The level when no case applies. ``quote`` may be empty when the thesaurus attaches no text
    to that level (the ``note`` then says why this level)."""

    level: Level | None
    quote: str = ""


class Qualification(_Frozen):
    rule_id: str = Field(pattern=r"^ansm:.+\+.+$")
    edition: str
    condition_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    cases: tuple[Case, ...] = ()
    default: Default
    note: str = ""


def condition_digest(rule: InteractionRule) -> str:
    """sha256 of the rule's (level, condition) list, worst first, white space collapsed.

    Collapsing white space keeps a re-flowed PDF line from flagging a curation whose words did not
    change; any change of a word or of a level does.
    """
    payload = "\x1e".join(f"{entry.level}\x1f{' '.join(entry.condition.split())}" for entry in rule.levels)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def check_against(qualifications: Mapping[str, Qualification], edition: ThesaurusEdition) -> list[str]:
    """Rule ids whose curation must be reviewed before use with ``edition``, sorted.

    A rule id is listed when the edition has no such rule (renamed side) or when its condition
    texts changed since the curation (digest mismatch).
    """
    flagged: list[str] = []
    for rule_id, qualification in qualifications.items():
        rule = edition.rule(rule_id)
        if rule is None or condition_digest(rule) != qualification.condition_sha256:
            flagged.append(rule_id)
    return sorted(flagged)


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def load_qualifications(path: Path) -> dict[str, Qualification]:
    """Read the curated YAML: ``{edition: str, qualifications: [ {rule_id, cases, default, ...} ]}``.

    An entry may omit ``edition``; it then inherits the file's. Errors name the rule id and the field.
    """
    try:
        raw = read_yaml(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SourceError(f"{path}: cannot read qualifications: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("qualifications"), list):
        raise SourceError(f"{path}: expected a mapping with a 'qualifications' list")
    file_edition = raw.get("edition")
    out: dict[str, Qualification] = {}
    for position, entry in enumerate(raw["qualifications"]):
        if not isinstance(entry, dict):
            raise SourceError(f"{path}: qualification #{position} is not a mapping")
        rule_id = str(entry.get("rule_id", f"#{position}"))
        if "edition" not in entry and file_edition is not None:
            entry = {**entry, "edition": file_edition}
        try:
            qualification = Qualification.model_validate(entry)
        except ValidationError as exc:
            details = "; ".join(f"{_location(err['loc'])}: {err['msg']}" for err in exc.errors())
            raise SourceError(f"{path}: {rule_id}: {details}") from exc
        if rule_id in out:
            raise SourceError(f"{path}: {rule_id}: rule_id curated twice")
        out[rule_id] = qualification
    return out
