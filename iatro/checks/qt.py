"""Risk of QT prolongation: the Tisdale 2013 score, with the QT drugs taken from the ANSM classes.

The score, its points, bands and the classes that make a "QTc-prolonging drug" are data
(``knowledge_base/curated/qt_tisdale.yaml``, compiled beside the KB as ``qt_tisdale.yaml``); this
module evaluates them. Nothing here knows a point value.

Three-valued evaluation. Each factor is met, not met or *unknown*: unknown when it reads an input the
caller did not give (age, sex, potassium, QTc), when an unresolved line could be a QT drug or a loop
diuretic, or when a route-restricted QT drug (intravenous erythromycin) has no route. ``score``
counts the met factors only — it is a lower bound when anything is unknown; ``max_possible`` adds
the points of the unknown factors and ``level_if_missing_positive`` says where the score could go.
Diagnoses are closed-world, as everywhere in Iatro: a CIM-10 code the prescriber did not give is
absent.

QT drugs. A prescribed substance counts when one of its ANSM index entries belongs to one of the
listed thesaurus classes (torsadogenic substances, neuroleptics and antiparasitics "susceptibles de
donner des torsades de pointes"). Tisdale counted drugs from the CredibleMeds lists, which cannot be
redistributed: the count is an approximation of the paper's, and the report says which class made
each drug count. One substance counts once, however many lines carry it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from iatro.checks.context import CheckContext, Exposure
from iatro.checks.result import AlertMemo, CheckResult, compiled_table, read_table
from iatro.errors import KnowledgeBaseCorrupt
from iatro.kb.store import KnowledgeBase
from iatro.model.prescription import Patient
from iatro.model.report import Alert, SubstanceRef
from iatro.text import fold_words

TABLE = "qt_tisdale.yaml"

Level = Literal["low", "moderate", "high"]
PatientField = Literal[
    "age",
    "weight_kg",
    "creatinine_umol_l",
    "egfr_ml_min",
    "labs.potassium_mmol_l",
    "labs.qtc_ms",
    "labs.heart_rate_bpm",
    "labs.sodium_mmol_l",
    "labs.calcium_mmol_l",
    "labs.magnesium_mmol_l",
]
_COMPARE: Mapping[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScoreInfo(_Frozen):
    id: str
    citation: str
    edition: str
    checked_against: tuple[str, ...] = ()
    verification: str
    population: str


class _Factor(_Frozen):
    id: str
    label: str
    points: int = Field(gt=0)
    note: str = ""


class PatientValueFactor(_Factor):
    kind: Literal["patient_value"]
    field: PatientField
    comparator: Literal[">=", ">", "<=", "<"]
    threshold: float


class SexFactor(_Factor):
    kind: Literal["sex"]
    equals: Literal["F", "M"]


class DrugAtcFactor(_Factor):
    kind: Literal["drug_atc"]
    atc_prefixes: tuple[str, ...] = Field(min_length=1)


class ConditionFactor(_Factor):
    kind: Literal["condition"]
    cim10: tuple[str, ...] = Field(min_length=1)


class QtDrugCountFactor(_Factor):
    kind: Literal["qt_drug_count"]
    min_count: int = Field(ge=1)


Factor = Annotated[
    PatientValueFactor | SexFactor | DrugAtcFactor | ConditionFactor | QtDrugCountFactor,
    Field(discriminator="kind"),
]


class LevelBand(_Frozen):
    level: Level
    min: int = Field(ge=0)
    max: int


class RouteRestriction(_Frozen):
    substances: tuple[str, ...]
    routes: tuple[str, ...]
    quote: str
    where: str


class QtDrugClasses(_Frozen):
    edition: str
    labels: tuple[str, ...] = Field(min_length=1)
    route_restrictions: tuple[RouteRestriction, ...] = ()


class AlertPolicy(_Frozen):
    levels: tuple[Level, ...]
    requires_qt_drug: bool


class QtTable(_Frozen):
    schema_version: int = Field(alias="schema")
    score: ScoreInfo
    factors: tuple[Factor, ...] = Field(min_length=1)
    levels: tuple[LevelBand, ...] = Field(min_length=1)
    max_score: int
    qt_drug_classes: QtDrugClasses
    alert: AlertPolicy

    @model_validator(mode="after")
    def _consistent(self) -> QtTable:
        ids = [f.id for f in self.factors]
        if len(ids) != len(set(ids)):
            raise ValueError("factor ids must be unique")
        # The published maximum is the sum of all points: a mistyped point breaks it.
        if sum(f.points for f in self.factors) != self.max_score:
            raise ValueError(
                f"factor points sum to {sum(f.points for f in self.factors)}, not {self.max_score}"
            )
        expected = 0
        for band in self.levels:
            if band.min != expected or band.max < band.min:
                raise ValueError(f"level bands must cover 0..max_score without gaps (at {band.level})")
            expected = band.max + 1
        if expected != self.max_score + 1:
            raise ValueError("level bands must end at max_score")
        return self

    def level_of(self, score: int) -> Level:
        return next(b.level for b in self.levels if b.min <= score <= b.max)


def load_qt_table(path: Path) -> QtTable:
    return read_table(path, QtTable)


@dataclass(frozen=True, slots=True)
class _QtDrug:
    via: str  # the thesaurus class that made it count
    routes: frozenset[str] | None  # None: any route counts


def _patient_value(patient: Patient, path: str) -> float | None:
    value: object = patient
    for part in path.split("."):
        value = getattr(value, part)
    return float(value) if isinstance(value, int | float) else None


class QtCheck:
    """Tisdale score for one prescription; built once per KB (QT drugs are indexed by substance)."""

    def __init__(self, kb: KnowledgeBase, table: QtTable | None = None) -> None:
        self.table = table or load_qt_table(compiled_table(kb, TABLE))
        thesaurus = kb.thesaurus()
        labels = self.table.qt_drug_classes.labels
        for label in labels:
            if thesaurus.class_label(label) is None:
                # A class renamed by a new edition would silently empty the QT drug list.
                raise KnowledgeBaseCorrupt(
                    f"{TABLE}: class {label!r} is not in thesaurus {thesaurus.edition}"
                )
        wanted = {fold_words(label): label for label in labels}
        restricted: dict[str, frozenset[str]] = {}
        for restriction in self.table.qt_drug_classes.route_restrictions:
            for name in restriction.substances:
                restricted[fold_words(name)] = frozenset(restriction.routes)
        self.thesaurus_edition = thesaurus.edition
        self._qt: dict[int, _QtDrug] = {}
        for substance in kb.substances:
            via = next(
                (
                    wanted[fold_words(label)]
                    for entry in substance.ansm
                    for label in thesaurus.classes_of(entry)
                    if fold_words(label) in wanted
                ),
                None,
            )
            if via is None:
                continue
            keys = {fold_words(substance.name), *(fold_words(a) for a in substance.ansm)}
            routes = next((restricted[k] for k in keys if k in restricted), None)
            self._qt[substance.id] = _QtDrug(via, routes)
        self._atc = {s.id: s.atc for s in kb.substances}
        # (substance, its ATC codes in this product, a factor's prefixes) -> match, computed once.
        self._atc_matches: dict[tuple[int, tuple[str, ...], tuple[str, ...]], bool] = {}
        self._alerts = AlertMemo()

    # -- factors -----------------------------------------------------------------------------------

    def _qt_drugs(self, ctx: CheckContext) -> tuple[dict[int, tuple[Exposure, str]], dict[int, Exposure]]:
        """Certain QT drugs and those that count only if their unknown route is the restricted one."""
        sure: dict[int, tuple[Exposure, str]] = {}
        maybe: dict[int, Exposure] = {}
        for exposure in ctx.exposures:
            qt = self._qt.get(exposure.substance_id)
            if qt is None:
                continue
            if qt.routes is None or (exposure.route is not None and exposure.route in qt.routes):
                sure.setdefault(exposure.substance_id, (exposure, qt.via))
            elif exposure.route is None:
                maybe.setdefault(exposure.substance_id, exposure)
        for sid in sure:
            maybe.pop(sid, None)
        return sure, maybe

    def _atc_match(self, exposure: Exposure, prefixes: tuple[str, ...]) -> bool:
        key = (exposure.substance_id, exposure.atc, prefixes)
        found = self._atc_matches.get(key)
        if found is None:
            codes = (*exposure.atc, *self._atc.get(exposure.substance_id, ()))
            found = any(code.startswith(prefix) for code in codes for prefix in prefixes)
            self._atc_matches[key] = found
        return found

    def run(self, ctx: CheckContext) -> CheckResult:
        patient = ctx.patient
        sure, maybe = self._qt_drugs(ctx)
        unresolved = ctx.unresolved_lines
        unresolved_text = ", ".join(str(i) for i in unresolved)
        missing: list[str] = []
        factors: list[dict[str, object]] = []
        points: dict[str, int | None] = {}
        matched_drugs: dict[str, list[Exposure]] = {}
        score = unknown_points = 0
        for factor in self.table.factors:
            met: bool | None
            if isinstance(factor, PatientValueFactor):
                value = _patient_value(patient, factor.field)
                met = None if value is None else _COMPARE[factor.comparator](value, factor.threshold)
                if met is None:
                    missing.append(factor.field)
            elif isinstance(factor, SexFactor):
                met = None if patient.sex is None else patient.sex == factor.equals
                if met is None:
                    missing.append("sex")
            elif isinstance(factor, ConditionFactor):
                met = any(code.startswith(factor.cim10) for code in patient.conditions)
            elif isinstance(factor, DrugAtcFactor):
                hits = [e for e in ctx.exposures if self._atc_match(e, factor.atc_prefixes)]
                matched_drugs[factor.id] = hits
                met = True if hits else (None if unresolved else False)
                if met is None:
                    missing.append(f"unresolved line(s) {unresolved_text}: could be a {factor.label}")
            else:
                possible = len(maybe) + len(unresolved)
                met = True if len(sure) >= factor.min_count else None
                if met is None and len(sure) + possible < factor.min_count:
                    met = False
                if met is None:
                    missing.extend(f"line {e.line} ({e.name}): route" for e in maybe.values())
                    if unresolved:
                        missing.append(f"unresolved line(s) {unresolved_text}: could be a QT-prolonging drug")
            points[factor.id] = None if met is None else (factor.points if met else 0)
            score += factor.points if met else 0
            unknown_points += factor.points if met is None else 0
            factors.append({"id": factor.id, "label": factor.label, "points": factor.points, "met": met})
        missing = list(dict.fromkeys(missing))
        level = self.table.level_of(score)
        max_possible = score + unknown_points
        drugs = [
            {"name": e.name, "atc": e.atc[0] if e.atc else None, "line": e.line, "via": via}
            for e, via in sorted(sure.values(), key=lambda item: (item[0].line, item[0].name))
        ]
        info = self.table.score
        result: dict[str, object] = {
            "score_name": "Tisdale 2013",
            "level": level,
            "score": score,
            "max_score": self.table.max_score,
            "max_possible": max_possible,
            "level_if_missing_positive": self.table.level_of(max_possible),
            "complete": not missing,
            "points": points,
            "factors": factors,
            "drugs": drugs,
            "possible_drugs": [{"name": e.name, "line": e.line} for e in maybe.values()],
            "missing_inputs": missing,
            "qt_drug_classes": list(self.table.qt_drug_classes.labels),
            "thesaurus_edition": self.thesaurus_edition,
            "source": info.citation,
            "edition": info.edition,
            "caveat": info.population,
        }
        alerts: tuple[Alert, ...] = ()
        policy = self.table.alert
        if level in policy.levels and (sure or not policy.requires_qt_drug):
            loop = [e for hits in matched_drugs.values() for e in hits]
            alerts = (self._alert(level, score, [e for e, _ in sure.values()], loop, factors),)
        return CheckResult(alerts=alerts, scores={"qt": result}, missing_inputs=tuple(missing))

    def _alert(
        self,
        level: Level,
        score: int,
        qt_drugs: list[Exposure],
        other_drugs: list[Exposure],
        factors: list[dict[str, object]],
    ) -> Alert:
        involved = {e.substance_id: e for e in (*qt_drugs, *other_drugs)}
        ordered = sorted(involved.values(), key=lambda e: (e.line, e.name))
        # Everything the alert shows but its lines: built once per combination (AlertMemo).
        substances = tuple((e.name, e.atc[0] if e.atc else None) for e in ordered)
        met = tuple(str(f["label"]) for f in factors if f["met"])
        names = ", ".join(sorted({e.name for e in qt_drugs}))
        lines = tuple(sorted({e.line for e in ordered}))
        key = (level, score, substances, met, names)
        return self._alerts.get(key, lines, partial(self._build_alert, *key, lines))

    def _build_alert(
        self,
        level: Level,
        score: int,
        substances: tuple[tuple[str, str | None], ...],
        met: tuple[str, ...],
        names: str,
        lines: tuple[int, ...],
    ) -> Alert:
        label = {"moderate": "modéré", "high": "élevé"}.get(level, level)
        info = self.table.score
        return Alert(
            type="qt",
            severity=level,
            substances=tuple(SubstanceRef(name=name, atc=atc) for name, atc in substances),
            lines=lines,
            source=info.citation,
            edition=info.edition,
            rule_id=f"{info.id}:{level}",
            message=(
                f"Risque d'allongement du QT {label} (score de Tisdale {score}/{self.table.max_score}) "
                f"avec {names} ; facteurs : {', '.join(met)}"
            ),
            recommendation=(
                "Contrôler l'ECG (QTc) et la kaliémie ; réévaluer la nécessité des médicaments "
                "susceptibles de donner des torsades de pointes."
            ),
            why=(
                f"Tisdale score {score} is in the '{level}' band; Iatro alerts on "
                f"{'/'.join(self.table.alert.levels)} when a QT drug is prescribed (an Iatro choice, "
                "not the paper's)"
            ),
        )
