"""The analysis report of the contract, as frozen pydantic models.

Fields named in ``shared/contract/analysis.md`` are never renamed or dropped; new ones may be added.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

LineStatus = Literal["resolved", "ambiguous", "unresolved"]
InteractionLevel = Literal[
    "contre-indication", "association-deconseillee", "precaution-emploi", "a-prendre-en-compte"
]
Severity = Literal["high", "moderate", "low"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


FrozenT = TypeVar("FrozenT", bound=_Frozen)
_set = object.__setattr__


def replaced(item: FrozenT, **changes: Any) -> FrozenT:
    """``item.model_copy(update=changes)``: the same fields and ``model_fields_set``, no validation, at
    half the cost (the engine copies memoised alerts with this prescription's line numbers dozens of
    times per analysis). A model with extra fields or private attributes gets ``model_copy`` itself."""
    if item.__pydantic_extra__ is not None or item.__pydantic_private__ is not None:
        return item.model_copy(update=changes)
    fields = item.__dict__.copy()
    fields.update(changes)
    copy = item.__class__.__new__(item.__class__)
    _set(copy, "__dict__", fields)
    _set(copy, "__pydantic_fields_set__", item.__pydantic_fields_set__.union(changes))
    _set(copy, "__pydantic_extra__", None)
    _set(copy, "__pydantic_private__", None)
    return copy


class SubstanceRef(_Frozen):
    name: str = Field(description="French DCI, lower case, as in the ANSM index")
    atc: str | None = Field(default=None, description="WHO ATC level 5, when known")


class ProductRef(_Frozen):
    cis: str
    name: str
    cip13: str | None = None


class Posology(_Frozen):
    """A parsed French posology. ``parsed`` is False when the text was kept but not understood."""

    text: str
    parsed: bool
    dose_per_intake: float | None = None
    unit: str | None = None
    intakes_per_day: float | None = None
    as_needed: bool = False
    max_intakes_per_day: float | None = None
    duration_days: int | None = None
    moments: tuple[str, ...] = ()
    mg_per_day: float | None = None
    note: str | None = Field(default=None, description="Why a field could not be read")


class Candidate(_Frozen):
    product: ProductRef | None = None
    substances: tuple[SubstanceRef, ...] = ()
    score: float


class LineReport(_Frozen):
    index: int
    input: str
    status: LineStatus
    product: ProductRef | None = None
    substances: tuple[SubstanceRef, ...] = ()
    posology: Posology | None = None
    reason: str | None = None
    candidates: tuple[Candidate, ...] = ()
    match: str | None = Field(default=None, description="How the line was matched (cip13, cis, name, fuzzy…)")
    route: str | None = None
    # KB-internal ids of the substances, for the checks; they change between KB builds, so they are
    # never part of the serialised report.
    substance_ids: tuple[int, ...] = Field(default=(), exclude=True)


class Alternative(_Frozen):
    name: str
    atc: str | None = None
    reason: str | None = None


class Alert(_Frozen):
    type: str
    severity: str
    substances: tuple[SubstanceRef, ...] = ()
    lines: tuple[int, ...] = ()
    source: str
    edition: str | None = None
    rule_id: str
    related_rules: tuple[str, ...] = Field(default=(), description="Other rules that matched the same pair")
    via: tuple[str, ...] = ()
    message: str
    recommendation: str | None = None
    alternatives: tuple[Alternative, ...] = ()
    unresolved_conditions: tuple[str, ...] = ()
    why: str | None = Field(default=None, description="Why this level was chosen")
    auc_ratio: float | None = None
    enzyme: str | None = None
    vaccine: str | None = None


class Report(_Frozen):
    kb_version: str
    complete: bool
    lines: tuple[LineReport, ...] = ()
    alerts: tuple[Alert, ...] = ()
    scores: dict[str, object] = Field(default_factory=dict)
    eligibility: dict[str, object] = Field(default_factory=dict)
    missing_inputs: tuple[str, ...] = ()
    checks_not_run: tuple[str, ...] = ()
