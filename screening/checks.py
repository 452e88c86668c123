"""Per-patient checks in batch, with the engine's own rules, combined from per-line features and memos.

Each count equals what ``iatro.analysis.Engine.analyze`` reports for the same patient given as a
contract prescription (the agreement test in ``tests/screening`` runs the engine on a sample):

- ANSM interactions: counted by the engine's batch kernel (:mod:`iatro.batch.interactions`) from
  the same lines, in :mod:`screening.batch`.
- STOPP/START: in :mod:`screening.criteria`.
- ACB, Tisdale QT and eligibility: the per-line results of the engine's checks (:mod:`screening.lines`)
  combined with the same rules those checks apply to a whole list (a substance counts once, three-
  valued factors, closed-world diagnoses).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

from iatro.analysis import Engine
from iatro.checks.eligibility import (
    CHRONIC_DAYS,
    TOWN_DOOR,
    BpmRule,
    EligibilityCheck,
    Truth,
    all_true,
    any_true,
)
from iatro.checks.qt import (
    ConditionFactor,
    DrugAtcFactor,
    PatientValueFactor,
    QtCheck,
    QtDrugCountFactor,
    SexFactor,
)
from iatro.errors import KnowledgeBaseCorrupt
from iatro.model.prescription import Patient
from screening.derive import Context
from screening.lines import Line, engine_check

MEMO_LIMIT = 50_000  # entries per memo; beyond, the memo is emptied (bounded memory, refilled on demand)
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


class Patients:
    """One contract ``Patient`` per distinct claims context (built once, reused)."""

    def __init__(self) -> None:
        self._known: dict[Context, Patient] = {}

    def get(self, context: Context) -> Patient:
        found = self._known.get(context)
        if found is None:
            if len(self._known) >= MEMO_LIMIT:
                self._known.clear()
            found = self._known[context] = context.patient()
        return found


@dataclass(frozen=True, slots=True)
class QtOutcome:
    level: str
    score: int
    max_possible: int


class Tisdale:
    """The engine's Tisdale factors over a whole list, from per-line QT drug and drug-class flags."""

    def __init__(self, engine: Engine) -> None:
        self.table = engine_check(engine, "qt", QtCheck).table

    def run(self, lines: list[Line], n_unresolved: int, context: Context, patient: Patient) -> QtOutcome:
        sure: set[int] = set()
        maybe: set[int] = set()
        atc_factors: set[str] = set()
        for line in lines:
            sure |= line.qt_sure
            maybe |= line.qt_maybe
            atc_factors |= line.qt_atc_factors
        maybe -= sure
        score = unknown = 0
        for factor in self.table.factors:
            met: Truth
            if isinstance(factor, PatientValueFactor):
                value: object = patient
                for part in factor.field.split("."):
                    value = getattr(value, part)
                met = (
                    _COMPARE[factor.comparator](float(value), factor.threshold)
                    if isinstance(value, int | float)
                    else None
                )
            elif isinstance(factor, SexFactor):
                met = None if context.sex is None else context.sex == factor.equals
            elif isinstance(factor, ConditionFactor):
                met = any(code.startswith(factor.cim10) for code in context.conditions)
            elif isinstance(factor, DrugAtcFactor):
                met = True if factor.id in atc_factors else (None if n_unresolved else False)
            elif isinstance(factor, QtDrugCountFactor):
                met = True if len(sure) >= factor.min_count else None
                if met is None and len(sure) + len(maybe) + n_unresolved < factor.min_count:
                    met = False
            else:  # a factor kind this module does not know: refuse rather than under-score
                raise KnowledgeBaseCorrupt(f"unknown Tisdale factor kind {type(factor).__name__}")
            score += factor.points if met else 0
            unknown += factor.points if met is None else 0
        return QtOutcome(self.table.level_of(score), score, score + unknown)


@dataclass(frozen=True, slots=True)
class EligibilityOutcome:
    town_door: Truth
    iatroprev: Truth
    optimedoc: Truth
    bpm: Truth


class Eligibility:
    """Iatroprev/Optimedoc town door and BPM as the engine's eligibility check decides them."""

    def __init__(self, engine: Engine) -> None:
        self.bpm: BpmRule = engine_check(engine, "eligibility", EligibilityCheck).bpm

    def run(self, lines: list[Line], n_unresolved: int, context: Context) -> EligibilityOutcome:
        n_lines = sum(1 for line in lines if line.counts_as_line)
        age = context.age
        old_enough = None if age is None else age >= TOWN_DOOR.age_min
        town = all_true(old_enough, n_lines >= TOWN_DOOR.min_drug_lines)
        # Claims carry no hospital context: the hospital door is "not assessed", i.e. False.
        iatroprev = any_true(town, False)
        chronic: set[int] = set()
        no_duration: set[int] = set()
        short: set[int] = set()
        for line in lines:
            for sid, _, duration in line.molecules:
                if duration is None:
                    no_duration.add(sid)
                elif duration >= CHRONIC_DAYS:
                    chronic.add(sid)
                else:
                    short.add(sid)
        no_duration -= chronic
        short -= chronic | no_duration
        results: list[Truth] = []
        for alt in self.bpm.alternatives:
            parts: list[Truth] = [None if age is None else age >= alt.age_min]
            if alt.requires_ald:
                parts.append(context.ald)
            if alt.min_chronic_molecules is not None:
                needed = alt.min_chronic_molecules
                enough: Truth = None
                if len(chronic) >= needed:
                    enough = True
                elif len(chronic) + len(no_duration) + len(short) + n_unresolved < needed:
                    enough = False
                parts.append(enough)
            results.append(all_true(*parts))
        return EligibilityOutcome(town, iatroprev, iatroprev, any_true(*results))
