"""Renal function against drug-specific thresholds (``renal_thresholds.yaml``).

Renal function. Two measures may be available: the creatinine clearance by Cockcroft-Gault, computed
here from age, weight, sex and serum creatinine (µmol/L), and the eGFR the caller gives. Product
information states each threshold on one of them (DOACs and pregabalin on Cockcroft-Gault clearance,
metformin on GFR), so each rule reads the measure its source uses; when only the other measure is
available it is used *and the alert says so* — never silently. With neither, the check reports which
inputs would settle it and raises no alert: a renal threshold cannot be guessed.

Values are compared rounded to one decimal, the precision shown in the report, so that what a reader
sees and what was compared agree.

Dose-banded rules ("maximum 1000 mg/day when GFR 30-44") alert when the daily dose exceeds the
maximum, and also when the dose is unknown — the band applies whatever the dose, and the alert then
names the dose in ``unresolved_conditions`` (as interaction alerts do).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from iatro.checks.context import CheckContext, Exposure
from iatro.checks.result import AlertMemo, CheckResult, compiled_table, read_table, substance_ids
from iatro.kb.store import KnowledgeBase
from iatro.model.prescription import Patient
from iatro.model.report import Alert, SubstanceRef

TABLE = "renal_thresholds.yaml"
Measure = Literal["crcl", "egfr"]
_MEASURE_LABEL = {"crcl": "Cockcroft-Gault creatinine clearance", "egfr": "eGFR"}
_CG_FIELDS = ("age", "weight_kg", "sex", "creatinine_umol_l")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RenalFormula(_Frozen):
    id: str
    citation: str
    constant_male: float = Field(gt=0)
    constant_female: float = Field(gt=0)


class RenalRule(_Frozen):
    id: str
    substances: tuple[str, ...] = ()
    atc_prefixes: tuple[str, ...] = ()
    measure: Measure
    lower_bound: float | None = None  # inclusive
    comparator: Literal["<", "<="]
    threshold: float
    max_mg_per_day: float | None = Field(default=None, gt=0)
    level: Literal["contre-indication", "non-recommande", "adaptation-posologique", "precaution"]
    severity: Literal["high", "moderate", "low"]
    message: str
    recommendation: str
    source: str
    edition: str

    @model_validator(mode="after")
    def _selects_something(self) -> RenalRule:
        if not self.substances and not self.atc_prefixes:
            raise ValueError(f"{self.id}: a rule needs substances or atc_prefixes")
        if self.lower_bound is not None and self.lower_bound >= self.threshold:
            raise ValueError(f"{self.id}: lower_bound must be below threshold")
        return self

    def in_band(self, value: float) -> bool:
        below = value < self.threshold if self.comparator == "<" else value <= self.threshold
        return below and (self.lower_bound is None or value >= self.lower_bound)

    def band(self) -> str:
        upper = f"{self.comparator} {self.threshold:g}"
        return f">= {self.lower_bound:g} and {upper}" if self.lower_bound is not None else upper


class Gap(_Frozen):
    what: str
    why: str


class RenalTable(_Frozen):
    schema_version: int = Field(alias="schema")
    formula: RenalFormula
    rules: tuple[RenalRule, ...]
    gaps: tuple[Gap, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> RenalTable:
        ids = [r.id for r in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError("rule ids must be unique")
        return self


def load_renal_table(path: Path) -> RenalTable:
    return read_table(path, RenalTable)


def cockcroft_gault(
    age: float, weight_kg: float, sex: Literal["F", "M"], creatinine_umol_l: float, formula: RenalFormula
) -> float:
    """Creatinine clearance (mL/min): (140 - age) x weight x constant / creatinine (µmol/L)."""
    constant = formula.constant_female if sex == "F" else formula.constant_male
    return (140 - age) * weight_kg * constant / creatinine_umol_l


@dataclass(frozen=True, slots=True)
class RenalValues:
    crcl: float | None  # Cockcroft-Gault, rounded to 0.1 mL/min
    egfr: float | None
    crcl_missing: tuple[str, ...]  # inputs Cockcroft-Gault lacked
    crcl_inputs: str  # how crcl was computed, for ``why``

    def for_measure(self, measure: Measure) -> tuple[float, Measure] | None:
        """The source's measure when available, else the other one."""
        other: Measure = "egfr" if measure == "crcl" else "crcl"
        for candidate in (measure, other):
            value = self.crcl if candidate == "crcl" else self.egfr
            if value is not None:
                return value, candidate
        return None


def renal_values(patient: Patient, formula: RenalFormula) -> RenalValues:
    missing = tuple(name for name in _CG_FIELDS if getattr(patient, name) is None)
    crcl: float | None = None
    inputs = ""
    age, weight, sex, creatinine = patient.age, patient.weight_kg, patient.sex, patient.creatinine_umol_l
    if age is not None and weight is not None and sex is not None and creatinine is not None:
        crcl = round(cockcroft_gault(age, weight, sex, creatinine, formula), 1)
        inputs = f"age {age}, {weight:g} kg, sex {sex}, creatinine {creatinine:g} µmol/L"
    egfr = round(patient.egfr_ml_min, 1) if patient.egfr_ml_min is not None else None
    return RenalValues(crcl, egfr, missing, inputs)


class RenalCheck:
    """Drug-specific renal thresholds; rule substances are resolved to KB ids once."""

    def __init__(self, kb: KnowledgeBase, table: RenalTable | None = None) -> None:
        self.table = table or load_renal_table(compiled_table(kb, TABLE))
        self._ids: dict[str, frozenset[int]] = {}
        for rule in self.table.rules:
            self._ids[rule.id] = substance_ids(kb, rule.substances, f"{TABLE}: {rule.id}")
        # (substance, its ATC codes in this product) -> indices of the rules it meets (``_matches``).
        self._rules_of: dict[tuple[int, tuple[str, ...]], tuple[int, ...]] = {}
        self._alerts = AlertMemo()

    def _matches(self, rule: RenalRule, exposure: Exposure) -> bool:
        if exposure.substance_id in self._ids[rule.id]:
            return True
        return (
            any(code.startswith(rule.atc_prefixes) for code in exposure.atc) if rule.atc_prefixes else False
        )

    def run(self, ctx: CheckContext) -> CheckResult:
        values = renal_values(ctx.patient, self.table.formula)
        missing: list[str] = []
        alerts: list[Alert] = []
        within: list[str] = []
        not_assessed: list[str] = []
        matched: dict[int, list[Exposure]] = {}
        for exposure in ctx.exposures:
            key = (exposure.substance_id, exposure.atc)
            rules = self._rules_of.get(key)
            if rules is None:
                rules = tuple(i for i, r in enumerate(self.table.rules) if self._matches(r, exposure))
                self._rules_of[key] = rules
            for i in rules:
                matched.setdefault(i, []).append(exposure)
        for i, rule in enumerate(self.table.rules):
            exposures = matched.get(i)
            if not exposures:
                continue
            chosen = values.for_measure(rule.measure)
            if chosen is None:
                missing.append(self._renal_missing(values, rule.measure))
                not_assessed.append(rule.id)
                continue
            value, used = chosen
            if not rule.in_band(value):
                continue
            over, unknown = self._dose(rule, exposures, missing)
            if rule.max_mg_per_day is not None and not over and not unknown:
                within.append(rule.id)
                continue
            flagged = exposures if rule.max_mg_per_day is None else over + unknown
            alerts.append(self._alert(rule, flagged, value, used, values, bool(unknown)))
        scores: dict[str, object] = {
            "crcl_cockcroft_gault": values.crcl,
            "egfr_ml_min": values.egfr,
            "cockcroft_gault_missing": list(values.crcl_missing),
            "formula": self.table.formula.citation,
            "within_dose_limits": within,
            "not_assessed": not_assessed,
            "gaps": [gap.what for gap in self.table.gaps],
        }
        return CheckResult(
            alerts=tuple(alerts), scores={"renal": scores}, missing_inputs=tuple(dict.fromkeys(missing))
        )

    @staticmethod
    def _renal_missing(values: RenalValues, measure: Measure) -> str:
        cg = ", ".join(values.crcl_missing)
        return (
            f"renal function ({_MEASURE_LABEL[measure]} preferred): egfr_ml_min, or {cg} for Cockcroft-Gault"
        )

    @staticmethod
    def _dose(
        rule: RenalRule, exposures: Iterable[Exposure], missing: list[str]
    ) -> tuple[list[Exposure], list[Exposure]]:
        """Exposures over the rule's daily maximum, and those whose daily dose is unknown."""
        if rule.max_mg_per_day is None:
            return [], []
        over, unknown = [], []
        for e in exposures:
            if e.mg_per_day is None:
                unknown.append(e)
                missing.append(f"line {e.line} ({e.name}): mg_per_day")
            elif e.mg_per_day > rule.max_mg_per_day:
                over.append(e)
        return over, unknown

    def _alert(
        self,
        rule: RenalRule,
        exposures: list[Exposure],
        value: float,
        used: Measure,
        values: RenalValues,
        dose_unknown: bool,
    ) -> Alert:
        measure_text = (
            f"Cockcroft-Gault creatinine clearance {value:g} mL/min ({values.crcl_inputs})"
            if used == "crcl"
            else f"eGFR {value:g} mL/min (given)"
        )
        why = f"{measure_text} {rule.band()} mL/min"
        if used != rule.measure:
            why += (
                f"; the source states this threshold on {_MEASURE_LABEL[rule.measure]}, "
                f"which could not be used, so {_MEASURE_LABEL[used]} was"
            )
        if rule.max_mg_per_day is not None:
            doses = ", ".join(
                f"line {e.line}: {'unknown' if e.mg_per_day is None else f'{e.mg_per_day:g}'} mg/day"
                for e in exposures
            )
            why += f"; maximum {rule.max_mg_per_day:g} mg/day ({doses})"
        by_substance: dict[int, Exposure] = {}
        for e in exposures:
            by_substance.setdefault(e.substance_id, e)
        substances = tuple((e.name, e.atc[0] if e.atc else None) for e in by_substance.values())
        lines = tuple(sorted({e.line for e in exposures}))
        # Everything the alert shows but its lines (``why`` quotes them for a dose rule, so they are
        # in the key then): built once per combination.
        key = (rule.id, substances, why, dose_unknown)
        return self._alerts.get(key, lines, partial(self._build_alert, rule, *key[1:], lines))

    @staticmethod
    def _build_alert(
        rule: RenalRule,
        substances: tuple[tuple[str, str | None], ...],
        why: str,
        dose_unknown: bool,
        lines: tuple[int, ...],
    ) -> Alert:
        return Alert(
            type="renal",
            severity=rule.severity,
            substances=tuple(SubstanceRef(name=name, atc=atc) for name, atc in substances),
            lines=lines,
            source=rule.source,
            edition=rule.edition,
            rule_id=rule.id,
            message=rule.message,
            recommendation=rule.recommendation,
            unresolved_conditions=("mg_per_day",) if dose_unknown else (),
            why=why,
        )
