"""Explicit criteria lists (STOPP/START, Laroche, REMEDI[e]S…) in one documented, validated format.

A list is data, not code: a pharmacist writes it in YAML (``knowledge_base/curated/criteria/FORMAT.md``)
and :func:`load_criteria_yaml` validates it at load, naming the criterion and the field of every error.
The STOPP/START v2 XML is converted into the same models by ``knowledge_base/builder/stoppstart.py``,
so one evaluator (``iatro/checks/explicit_criteria.py``) serves every list.

Shape of a criterion::

    Criterion
      any_of: Match, Match, ...       alternatives: the criterion is met when one of them is met
        Match                         every element below must hold (AND)
          drugs          DrugCondition each one present, on distinct substances
          absent_drugs   DrugSelector  none of them present (omissions, "without a PPI")
          conditions     ConditionGroup each group present (a group is "any of these CIM-10 codes")
          excluded_conditions          no group present
          labs           LabCondition  each comparison true
          age_min / age_max / sex

A criterion with a single alternative may be written flat: its match fields directly under the criterion.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from iatro.errors import SourceError
from iatro.kb.yaml_tables import read_yaml
from iatro.text import fold_words

Severity = Literal["high", "moderate", "low"]
Kind = Literal["pim", "omission"]
Comparator = Literal["<", "<=", ">", ">=", "=", "!="]

SEVERITY_RANK: dict[str, int] = {"low": 0, "moderate": 1, "high": 2}

# Patient values a lab condition may read: field name -> (attribute path on Patient, unit).
# The unit is the one of the input contract; a criterion's threshold must be written in it.
LAB_FIELDS: dict[str, tuple[str, str]] = {
    "potassium_mmol_l": ("labs.potassium_mmol_l", "mmol/L"),
    "sodium_mmol_l": ("labs.sodium_mmol_l", "mmol/L"),
    "calcium_mmol_l": ("labs.calcium_mmol_l", "mmol/L"),
    "magnesium_mmol_l": ("labs.magnesium_mmol_l", "mmol/L"),
    "qtc_ms": ("labs.qtc_ms", "ms"),
    "heart_rate_bpm": ("labs.heart_rate_bpm", "/min"),
    "egfr_ml_min": ("egfr_ml_min", "mL/min"),
    "creatinine_umol_l": ("creatinine_umol_l", "µmol/L"),
}
LabField = Literal[
    "potassium_mmol_l",
    "sodium_mmol_l",
    "calcium_mmol_l",
    "magnesium_mmol_l",
    "qtc_ms",
    "heart_rate_bpm",
    "egfr_ml_min",
    "creatinine_umol_l",
]
if set(LAB_FIELDS) != set(get_args(LabField)):  # the two spellings of the same list must agree
    raise RuntimeError("LAB_FIELDS and LabField disagree")

# ATC prefixes at any WHO level: A, A10, A10B, A10BA, A10BA02.
_ATC = re.compile(r"^[A-Z](?:[0-9]{2}(?:[A-Z](?:[A-Z](?:[0-9]{2})?)?)?)?$")
# CIM-10 prefixes: at least the category (letter + two digits), then up to four more characters.
_CIM10 = re.compile(r"^[A-Z][0-9]{2}[0-9A-Z]{0,4}$")
_LOINC = re.compile(r"^[0-9]{1,7}-[0-9]$")
_LIST_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_THRESHOLD_TEXT = re.compile(r"^\s*(<=|>=|!=|<|>|=|≤|≥)\s*(-?[0-9]+(?:[.,][0-9]+)?)\s*$")

# Match fields that may be written directly under a criterion (the one-alternative shorthand).
_MATCH_KEYS = (
    "drugs",
    "absent_drugs",
    "conditions",
    "excluded_conditions",
    "labs",
    "age_min",
    "age_max",
    "sex",
)


class _Frozen(BaseModel):
    # extra="forbid": a misspelt key ("durtion_days") must be an error, not a condition silently dropped.
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


def normalise_cim10(code: str) -> str:
    """Upper case without the dot (``k25.0`` -> ``K250``): the dot is presentation only."""
    return code.strip().upper().replace(".", "")


def _atc_tuple(values: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for raw in values:
        code = str(raw).strip().upper()
        if not _ATC.match(code):
            raise ValueError(f"{raw!r} is not an ATC code or prefix (A, A10, A10B, A10BA or A10BA02)")
        if code not in out:
            out.append(code)
    return tuple(out)


class Threshold(_Frozen):
    """A comparison with a number: ``{op: ">", value: 160}`` or, in YAML, the string ``"> 160"``."""

    op: Comparator
    value: float

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            found = _THRESHOLD_TEXT.match(data)
            if not found:
                raise ValueError(f"{data!r} is not a comparison such as '> 160' or '<= 30'")
            op = {"≤": "<=", "≥": ">="}.get(found.group(1), found.group(1))
            return {"op": op, "value": float(found.group(2).replace(",", "."))}
        if isinstance(data, int | float) and not isinstance(data, bool):
            raise ValueError("a threshold needs a comparator: write '> 160', not 160")
        return data

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("threshold must be a finite number")
        return value

    def text(self) -> str:
        return f"{self.op} {self.value:g}"


class DrugSelector(_Frozen):
    """Which substances: ATC prefixes and/or French DCI names, minus excluded ATC prefixes.

    An exposure is selected when one of its ATC codes starts with an ``atc`` prefix and with no
    ``exclude_atc`` prefix, or when its name (folded: lower case, no accents) is one of ``names``.
    """

    atc: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    exclude_atc: tuple[str, ...] = ()
    label: str | None = Field(default=None, description="Human name of the group, for reports")

    @field_validator("atc", "exclude_atc", mode="before")
    @classmethod
    def _atc(cls, values: Any) -> Any:
        if isinstance(values, str):
            values = [values]
        if isinstance(values, list | tuple):
            return _atc_tuple(values)
        return values

    @field_validator("names", mode="before")
    @classmethod
    def _names(cls, values: Any) -> Any:
        if isinstance(values, str):
            values = [values]
        if isinstance(values, list | tuple):
            out: list[str] = []
            for raw in values:
                key = fold_words(str(raw))
                if not key:
                    raise ValueError(f"{raw!r} is not a substance name")
                if key not in out:
                    out.append(key)
            return tuple(out)
        return values

    @model_validator(mode="after")
    def _something_selected(self) -> DrugSelector:
        if not self.atc and not self.names:
            raise ValueError("a drug needs at least one ATC prefix (atc) or one DCI name (names)")
        return self

    def describe(self) -> str:
        if self.label:
            return self.label
        parts = list(self.atc) + list(self.names)
        text = ", ".join(parts)
        if self.exclude_atc:
            text += " (except " + ", ".join(self.exclude_atc) + ")"
        return text


class DrugCondition(DrugSelector):
    """A drug that must be on the prescription, with optional conditions on how it is taken.

    ``target`` marks the drug the finding is about (the one to stop or review); ``target: false``
    marks a drug that is only context (the verapamil in "beta-blocker with verapamil").
    """

    mg_per_day: Threshold | None = None
    mg_per_intake: Threshold | None = None
    intakes_per_day: Threshold | None = None
    duration_days: Threshold | None = None
    routes: tuple[str, ...] = Field(default=(), description="Normalised routes (orale, injectable…); any")
    as_needed: bool | None = Field(default=None, description="true: only 'si besoin'; false: only regular")
    target: bool = True

    @field_validator("routes", mode="before")
    @classmethod
    def _routes(cls, values: Any) -> Any:
        if isinstance(values, str):
            values = [values]
        if isinstance(values, list | tuple):
            return tuple(str(v).strip().lower() for v in values if str(v).strip())
        return values


class ConditionGroup(_Frozen):
    """Any of these CIM-10 codes; a code covers its subdivisions (K25 covers K250…K259).

    ``since_onset_days`` restricts to conditions that began within / beyond a delay ("bleeding in the
    last 3 months"). The input carries no onset dates, so such a group is never known to be present;
    used under ``excluded_conditions`` it is still useful: a patient without the code satisfies it.
    """

    cim10: tuple[str, ...]
    label: str | None = None
    since_onset_days: Threshold | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"cim10": [data]}
        if isinstance(data, list | tuple):
            return {"cim10": list(data)}
        return data

    @field_validator("cim10", mode="before")
    @classmethod
    def _codes(cls, values: Any) -> Any:
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list | tuple):
            return values
        out: list[str] = []
        for raw in values:
            code = normalise_cim10(str(raw))
            if not _CIM10.match(code):
                raise ValueError(f"{raw!r} is not a CIM-10 code (letter, two digits, optional subdivision)")
            if code not in out:
                out.append(code)
        if not out:
            raise ValueError("a condition group needs at least one CIM-10 code")
        return tuple(out)

    def describe(self) -> str:
        text = self.label or ", ".join(self.cim10)
        if self.since_onset_days is not None:
            text += f" (onset {self.since_onset_days.text()} days ago)"
        return text


class LabCondition(_Frozen):
    """A measured value compared with a threshold, in the unit of ``field`` (see LAB_FIELDS).

    ``field: null`` keeps a measurement the input has no field for (blood pressure, FEV1…); the
    alternative holding it must then be marked ``computable: false``.
    """

    field: LabField | None
    loinc: str | None = None
    op: Comparator
    value: float
    unit: str | None = Field(default=None, description="Unit of the source, for the record")
    label: str | None = None

    @field_validator("loinc")
    @classmethod
    def _loinc(cls, value: str | None) -> str | None:
        if value is not None and not _LOINC.match(value):
            raise ValueError(f"{value!r} is not a LOINC code (digits, dash, check digit)")
        return value

    @model_validator(mode="after")
    def _identified(self) -> LabCondition:
        if self.field is None and self.loinc is None:
            raise ValueError("a lab condition needs a field, or a LOINC code when no field exists")
        return self

    def describe(self) -> str:
        name = self.field or self.label or f"LOINC {self.loinc}"
        return f"{name} {self.op} {self.value:g}"


class Match(_Frozen):
    """One way for a criterion to be met: every element must hold."""

    drugs: tuple[DrugCondition, ...] = ()
    absent_drugs: tuple[DrugSelector, ...] = ()
    conditions: tuple[ConditionGroup, ...] = ()
    excluded_conditions: tuple[ConditionGroup, ...] = ()
    labs: tuple[LabCondition, ...] = ()
    age_min: int | None = Field(default=None, ge=0, le=130)
    age_max: int | None = Field(default=None, ge=0, le=130)
    sex: Literal["F", "M"] | None = None
    computable: bool = True
    not_computable_reason: str | None = None
    source_ref: str | None = Field(default=None, description="Where in the source, e.g. 'iteration 4'")

    @field_validator("conditions", "excluded_conditions", mode="before")
    @classmethod
    def _groups(cls, values: Any) -> Any:
        # `conditions: [I10, I15]` is one group ("any of"); groups are written as lists or mappings.
        if isinstance(values, str):
            return [[values]]
        if isinstance(values, list | tuple) and values:
            plain = [isinstance(v, str) for v in values]
            if all(plain):
                return [list(values)]
            if any(plain):
                raise ValueError(
                    "mixes plain codes and groups: write [I10, I15] for one group, "
                    "or [[I10, I15], [N393, R32]] for groups that must all be present"
                )
        return values

    @model_validator(mode="after")
    def _consistent(self) -> Match:
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            raise ValueError(f"age_min {self.age_min} is above age_max {self.age_max}")
        elements = (self.drugs, self.absent_drugs, self.conditions, self.excluded_conditions, self.labs)
        if not any(elements) and self.age_min is None and self.age_max is None and self.sex is None:
            raise ValueError(
                "an alternative needs at least one element (drugs, absent_drugs, conditions, "
                "excluded_conditions, labs, age_min, age_max or sex)"
            )
        if not self.computable and not self.not_computable_reason:
            raise ValueError("computable: false needs not_computable_reason")
        if self.computable:
            unmapped = [lab.describe() for lab in self.labs if lab.field is None]
            if unmapped:
                raise ValueError(
                    f"lab condition(s) without a field ({', '.join(unmapped)}) need computable: false"
                )
            timed = [g.describe() for g in self.conditions if g.since_onset_days is not None]
            if timed:
                raise ValueError(
                    f"required condition(s) with an onset delay ({', '.join(timed)}) can never be known "
                    "from the input (no onset dates): set computable: false"
                )
        return self


class Criterion(_Frozen):
    criterion_id: str = Field(min_length=1, max_length=60)
    kind: Kind
    description: str = Field(min_length=1)
    # Not min_length: pydantic would add "at least 1 item" to every error of an alternative.
    any_of: tuple[Match, ...] = ()
    severity: Severity | None = Field(
        default=None, description="Only when the source grades it; else the list's default_severity"
    )
    reason: str | None = None
    alternatives: tuple[str, ...] = ()
    computable: bool = True
    not_computable_reason: str | None = None
    notes: tuple[str, ...] = Field(default=(), description="How the criterion was read or converted")

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        flat = {k: data[k] for k in _MATCH_KEYS if k in data}
        if not flat:
            return data
        if "any_of" in data:
            raise ValueError(
                f"write the conditions either under any_of or directly under the criterion, not both "
                f"(found {', '.join(flat)} beside any_of)"
            )
        rest = {k: v for k, v in data.items() if k not in flat}
        rest["any_of"] = [flat]
        return rest

    @model_validator(mode="after")
    def _consistent(self) -> Criterion:
        if not self.any_of and self.computable:
            raise ValueError("no conditions: write drugs/conditions/… under the criterion or under any_of")
        if not self.computable and not self.not_computable_reason:
            raise ValueError("computable: false needs not_computable_reason")
        if self.computable and not any(m.computable for m in self.any_of):
            raise ValueError("no alternative is computable: set computable: false with not_computable_reason")
        for i, match in enumerate(self.any_of):
            if not match.computable:
                continue
            if self.kind == "pim" and not any(d.target for d in match.drugs):
                raise ValueError(
                    f"any_of[{i}]: a 'pim' criterion needs a drug with target: true (the drug to review)"
                )
            if self.kind == "omission" and not match.absent_drugs:
                raise ValueError(f"any_of[{i}]: an 'omission' criterion needs absent_drugs (what is missing)")
        return self

    @property
    def partially_computable(self) -> bool:
        """Computable, but some alternatives are not (they need inputs the format cannot read)."""
        return self.computable and any(not m.computable for m in self.any_of)


class CriteriaList(_Frozen):
    list_id: str = Field(min_length=1, max_length=60)
    title: str = Field(min_length=1)
    edition: str = Field(min_length=1)
    source: str = Field(min_length=1, description="Publication and/or file the list was taken from")
    licence: str = Field(min_length=1)
    default_severity: Severity = Field(
        default="moderate", description="Severity of criteria that the source does not grade"
    )
    is_example: bool = Field(default=False, description="Demonstration list: never loaded for analysis")
    criteria: tuple[Criterion, ...]

    @field_validator("list_id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _LIST_ID.match(value):
            raise ValueError(
                f"{value!r}: use lower case letters, digits, '-', '_' or '.' (e.g. laroche-2007)"
            )
        return value

    @model_validator(mode="after")
    def _unique_ids(self) -> CriteriaList:
        seen: set[str] = set()
        for crit in self.criteria:
            if crit.criterion_id in seen:
                raise ValueError(f"criterion_id {crit.criterion_id!r} appears twice")
            seen.add(crit.criterion_id)
        return self

    def get(self, criterion_id: str) -> Criterion:
        for crit in self.criteria:
            if crit.criterion_id == criterion_id:
                return crit
        raise KeyError(criterion_id)

    def severity_of(self, criterion: Criterion) -> Severity:
        return criterion.severity or self.default_severity


class CriteriaFormatError(SourceError):
    """A criteria file does not follow the format; ``problems`` holds (field path, message) pairs.

    The path names the criterion by its id (``criteria[STOPP D5].any_of[0].drugs[0].atc``) so the
    author finds the line without counting list items.
    """

    def __init__(self, origin: str, problems: list[tuple[str, str]]) -> None:
        self.origin = origin
        self.problems = tuple(problems)
        lines = "\n".join(f"  {path}: {message}" for path, message in problems)
        super().__init__(f"{origin}: {len(problems)} problem(s) in the criteria list\n{lines}")


def _error_path(loc: tuple[int | str, ...], raw: Any) -> str:
    parts: list[str] = []
    node: Any = raw
    i = 0
    while i < len(loc):
        key = loc[i]
        if key == "criteria" and i + 1 < len(loc) and isinstance(loc[i + 1], int):
            index = int(loc[i + 1])
            crit = node.get("criteria", [])[index] if isinstance(node, Mapping) else None
            ident = crit.get("criterion_id") if isinstance(crit, Mapping) else None
            parts.append(f"criteria[{ident}]" if ident else f"criteria[#{index + 1}]")
            # A criterion written flat gets an any_of[0] it never wrote: drop it from the path.
            if isinstance(crit, Mapping) and "any_of" not in crit and loc[i + 2 : i + 4] == ("any_of", 0):
                i += 2
            node = crit
            i += 2
            continue
        if isinstance(key, int):
            parts[-1:] = [f"{parts[-1]}[{key}]"] if parts else [f"[{key}]"]
        else:
            parts.append(str(key))
        node = node.get(key) if isinstance(node, Mapping) and isinstance(key, str) else None
        i += 1
    return ".".join(parts) or "(list)"


def parse_criteria(raw: Any, origin: str) -> CriteriaList:
    """Validate a decoded document (from YAML or JSON); errors name the criterion and the field."""
    if not isinstance(raw, Mapping):
        raise CriteriaFormatError(origin, [("(file)", "expected a mapping with list_id, title, … criteria")])
    try:
        return CriteriaList.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            # Pydantic suffixes union/function branches to the location ("function-after[...]"); they
            # say nothing to an author.
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown field (misspelt? see FORMAT.md)"
            problems.append((_error_path(loc, raw), message))
        raise CriteriaFormatError(origin, problems) from None


def load_criteria_yaml(path: Path) -> CriteriaList:
    """Read and validate one YAML criteria list."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError(f"criteria file unreadable: {path} ({exc})") from exc
    try:
        raw = read_yaml(text)
    except yaml.YAMLError as exc:
        raise CriteriaFormatError(str(path), [("(yaml)", str(exc))]) from None
    return parse_criteria(raw, str(path))


def load_criteria_dir(directory: Path, *, include_examples: bool = False) -> tuple[CriteriaList, ...]:
    """Every ``*.yaml`` list of a directory, sorted by file name; example lists only when asked."""
    lists = []
    for path in sorted(directory.glob("*.yaml")):
        crit_list = load_criteria_yaml(path)
        if crit_list.is_example and not include_examples:
            continue
        lists.append(crit_list)
    ids = [c.list_id for c in lists]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise SourceError(f"list_id used by several files in {directory}: {', '.join(duplicated)}")
    return tuple(lists)
