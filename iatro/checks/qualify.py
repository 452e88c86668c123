"""Choose the level of one ANSM rule for one pair of exposures, from its curated qualification.

Three-valued logic: a case condition is true, false, or *undecidable* when the input it needs is
missing (no dose, no route, no eGFR, no coded history). Cases are read in order:

* the first case whose conditions are all true gives the level;
* an undecidable case listed before it keeps its level as a *candidate*;
* the reported ``level`` is the worst candidate (never lower than what the inputs rule out), with
  ``unresolved_conditions`` naming the missing inputs and ``lowest_possible`` the best case;
* if no case applies, the default level joins the candidates.

Without a qualification the rule's worst level is used: that is what a reader of the thesaurus who
cannot check the condition must assume.

What a qualification reads of the patient is a short list of three-valued questions
(:func:`patient_questions`): two patients who give the same answers get the same level, candidates,
case and unresolved inputs (only ``why``, which quotes the values, differs). The batch kernel keys its
memo on those answers, so that patients who differ in facts a rule ignores share one evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter
from typing import Literal, cast, get_args

from iatro.checks.context import Exposure
from iatro.kb.qualifications import Case, CompiledSide, Qualification, Range
from iatro.kb.thesaurus import LEVEL_RANK, InteractionRule, Level
from iatro.model.prescription import Patient
from iatro.text import fold_words


@dataclass(frozen=True, slots=True)
class QualifiedLevel:
    """``level`` None means the thesaurus text excludes this combination from the rule."""

    level: Level | None
    why: str
    unresolved_conditions: tuple[str, ...] = ()
    candidates: tuple[Level | None, ...] = ()
    lowest_possible: Level | None = None
    case_index: int | None = None  # index of the case that applied; None for default / unqualified


def _rank(level: Level | None) -> int:
    return 0 if level is None else LEVEL_RANK[level]


def _label(level: Level | None) -> str:
    return "not applicable" if level is None else level


def _mg_per_intake(e: Exposure) -> float | None:
    # A dose per intake can be derived from the daily dose when the number of intakes is known.
    if e.mg_per_intake is not None:
        return e.mg_per_intake
    if e.mg_per_day is not None and e.intakes_per_day:
        return e.mg_per_day / e.intakes_per_day
    return None


def _mg_per_day(e: Exposure) -> float | None:
    if e.mg_per_day is not None:
        return e.mg_per_day
    if e.mg_per_intake is not None and e.intakes_per_day is not None:
        return e.mg_per_intake * e.intakes_per_day
    return None


class _Eval:
    """Accumulates one case's outcome: False wins, then missing inputs, else True."""

    __slots__ = ("facts", "false", "missing")

    def __init__(self) -> None:
        self.false = False
        self.missing: list[str] = []
        self.facts: list[str] = []

    def number(self, bound: Range | None, value: float | None, what: str) -> None:
        if bound is None or self.false:
            return
        if value is None:
            self.missing.append(what)
        elif bound.contains(value):
            self.facts.append(f"{what} = {value:g} ({bound.describe()})")
        else:
            self.false = True


@lru_cache(maxsize=4096)
def _key(name: str) -> str:
    # Folding is regex work; prescriptions repeat a small vocabulary of names.
    return fold_words(name)


def _side(ev: _Eval, side: CompiledSide, e: Exposure, label: str) -> None:
    if side.substances is not None or side.not_substances is not None:
        keys = {_key(name) for name in (e.name, *e.aliases)}
        if side.substances is not None:
            if keys.isdisjoint(side.substances):
                ev.false = True
                return
            ev.facts.append(f"{e.name} on side {label}")
        if side.not_substances is not None and not keys.isdisjoint(side.not_substances):
            ev.false = True
            return
    if side.routes is not None:
        if e.route is None:
            ev.missing.append(f"route of {e.name}")
        elif e.route in side.routes:
            ev.facts.append(f"{e.name} route {e.route}")
        else:
            ev.false = True
            return
    if side.mg_per_intake is not None:
        ev.number(side.mg_per_intake, _mg_per_intake(e), f"mg_per_intake of {e.name}")
    if side.mg_per_day is not None or side.mg_per_week is not None:
        daily = _mg_per_day(e)
        ev.number(side.mg_per_day, daily, f"mg_per_day of {e.name}")
        ev.number(side.mg_per_week, None if daily is None else daily * 7, f"mg_per_week of {e.name}")


def _has_prefix(codes: tuple[str, ...], prefixes: tuple[str, ...]) -> bool:
    return any(code.startswith(prefix) for code in codes for prefix in prefixes)


def _patient(ev: _Eval, case: Case, patient: Patient) -> None:
    # An empty condition list means "history not given", not "no history": undecidable.
    if case.patient_conditions is not None and not ev.false:
        if not patient.conditions:
            ev.missing.append("patient conditions (CIM-10 " + ", ".join(case.patient_conditions) + ")")
        elif _has_prefix(patient.conditions, case.patient_conditions):
            ev.facts.append("patient has " + "/".join(case.patient_conditions))
        else:
            ev.false = True
    if case.not_patient_conditions is not None and not ev.false:
        if not patient.conditions:
            ev.missing.append("patient conditions (CIM-10 " + ", ".join(case.not_patient_conditions) + ")")
        elif _has_prefix(patient.conditions, case.not_patient_conditions):
            ev.false = True
    if case.patient_sex is not None and not ev.false:
        if patient.sex is None:
            ev.missing.append("patient sex")
        elif patient.sex == case.patient_sex:
            ev.facts.append(f"patient sex {patient.sex}")
        else:
            ev.false = True
    ev.number(case.age, None if patient.age is None else float(patient.age), "patient age")
    ev.number(case.egfr_ml_min, patient.egfr_ml_min, "eGFR (ml/min)")
    ev.number(case.potassium_mmol_l, patient.labs.potassium_mmol_l, "potassium (mmol/l)")


def _evaluate_oriented(case: Case, a: Exposure, b: Exposure, patient: Patient) -> _Eval:
    compiled = case.compiled
    ev = _Eval()
    _side(ev, compiled.sides[0], a, "a")
    if not ev.false:
        _side(ev, compiled.sides[1], b, "b")
    if not ev.false and compiled.patient:
        _patient(ev, case, patient)
    return ev


def _evaluate(case: Case, a: Exposure, b: Exposure, patient: Patient) -> _Eval:
    ev = _evaluate_oriented(case, a, b, patient)
    if not case.either_side or (not ev.false and not ev.missing):
        return ev
    swapped = _evaluate_oriented(case, b, a, patient)
    if swapped.false:
        return ev
    if ev.false or not swapped.missing:
        return swapped
    # Both orientations undecidable: either input would settle it; report both.
    ev.missing.extend(m for m in swapped.missing if m not in ev.missing)
    return ev


def qualify(
    rule: InteractionRule,
    qualification: Qualification | None,
    side_a: Exposure,
    side_b: Exposure,
    patient: Patient,
) -> QualifiedLevel:
    """The level of ``rule`` for ``side_a`` (matched to ``rule.a``) and ``side_b`` (``rule.b``)."""
    if qualification is None:
        worst = rule.worst
        return QualifiedLevel(
            level=worst,
            why="no qualification: worst level",
            candidates=rule.level_codes,
            lowest_possible=min(rule.level_codes, key=_rank),
        )
    candidates: list[Level | None] = []
    missing: list[str] = []
    for index, case in enumerate(qualification.cases):
        ev = _evaluate(case, side_a, side_b, patient)
        if ev.false:
            continue
        if ev.missing:
            candidates.append(case.level)
            missing.extend(m for m in ev.missing if m not in missing)
            continue
        why = f"case {index + 1} ({_label(case.level)}): {'; '.join(ev.facts)} — «{case.quote}»"
        return _result(case.level, why, candidates, missing, index)
    default = qualification.default
    quote = f" — «{default.quote}»" if default.quote else ""
    why = f"no case applies: default ({_label(default.level)}){quote}"
    return _result(default.level, why, candidates, missing, None)


def _result(
    level: Level | None, why: str, undecided: list[Level | None], missing: list[str], index: int | None
) -> QualifiedLevel:
    if not undecided:
        return QualifiedLevel(level, why, (), (level,), level, index)
    candidates = tuple(dict.fromkeys([*undecided, level]))
    worst = max(candidates, key=_rank)
    lowest = min(candidates, key=_rank)
    if _rank(worst) > _rank(level):
        why = f"{_label(worst)} cannot be ruled out (missing: {', '.join(missing)}); otherwise {why}"
        index = None
    else:
        why = f"{why} (could be lower with: {', '.join(missing)})"
    return QualifiedLevel(worst, why, tuple(missing), candidates, lowest, index)


#: The patient fields a case condition reads (``labs.potassium_mmol_l`` is a dotted attribute path).
PatientField = Literal["conditions", "sex", "age", "egfr_ml_min", "labs.potassium_mmol_l"]
#: What a question reads of the patient: the coded history, the sex, or a number.
PatientValue = tuple[str, ...] | str | float | None


def fields_reader(fields: Sequence[PatientField]) -> Callable[[Patient], tuple[PatientValue, ...]]:
    """A fast reader of several patient fields (each ``field`` is its attribute path) as one tuple,
    in the order given: one C call a patient, for reading a whole population."""
    if len(fields) == 1:
        one = _READERS[fields[0]]
        return lambda patient: (one(patient),)
    return cast(Callable[[Patient], tuple[PatientValue, ...]], attrgetter(*fields))


#: The case fields that ask something of the patient: each becomes a :class:`PatientQuestion`, every
#: other field of a case reads the exposures (a test keeps this list equal to the model's).
PATIENT_CASE_FIELDS = (
    "patient_conditions",
    "not_patient_conditions",
    "patient_sex",
    "age",
    "egfr_ml_min",
    "potassium_mmol_l",
)


@dataclass(frozen=True, slots=True)
class PatientQuestion:
    """One three-valued question a case asks of the patient: True, False, or None (input missing).

    It answers exactly as ``_patient`` above decides that condition: a coded history that is empty
    is missing (not "no history"), ``conditions`` asks whether any code starts with one of
    ``prefixes``, ``sex`` whether the patient's sex is ``sex``, a number whether ``bound`` holds.
    """

    field: PatientField
    prefixes: tuple[str, ...] = ()
    sex: Literal["F", "M"] | None = None
    bound: Range | None = None

    def __post_init__(self) -> None:
        # A question carries the condition of its field and no other (it is built from a valid case).
        numeric = self.field not in ("conditions", "sex")
        if (self.sex is not None) != (self.field == "sex") or (self.bound is not None) != numeric:
            raise ValueError(f"a question on {self.field} needs exactly its own condition")
        if self.prefixes and self.field != "conditions":
            raise ValueError(f"a question on {self.field} takes no CIM-10 prefixes")

    def value(self, patient: Patient) -> PatientValue:
        """The one patient field this question reads."""
        return _READERS[self.field](patient)

    def answer_to(self, value: PatientValue) -> bool | None:
        """The answer given the field's value (what :meth:`value` returns)."""
        if value is None:
            return None
        if isinstance(value, tuple):
            return _has_prefix(value, self.prefixes) if value else None
        if isinstance(value, str):
            return value == self.sex
        if self.bound is None:  # never: __post_init__ gives every number question its range
            raise ValueError(f"question on {self.field} without a range")
        return self.bound.contains(float(value))

    def answer(self, patient: Patient) -> bool | None:
        return self.answer_to(self.value(patient))

    def answers_to(self, values: Sequence[PatientValue]) -> list[bool | None]:
        """``[self.answer_to(value) for value in values]``, each CIM-10 code tested once.

        A population's coded histories repeat a few hundred codes over thousands of distinct sets:
        each distinct code is matched against the prefixes once (``str.startswith`` with the tuple of
        prefixes is true when any of them starts the code), then a set's answer is whether any of
        its codes matched.
        """
        codes = {code for value in values if isinstance(value, tuple) for code in value}
        matched = {code: code.startswith(self.prefixes) for code in codes}.__getitem__
        return [
            (any(map(matched, value)) if value else None)
            if isinstance(value, tuple)
            else self.answer_to(value)
            for value in values
        ]


def patient_questions(qualification: Qualification | None) -> tuple[PatientQuestion, ...]:
    """Every question :func:`qualify` may ask the patient under ``qualification``, each once.

    The level, candidates, case index and unresolved inputs of :func:`qualify` depend on the patient
    only through these answers (the exposures' substances, routes and doses aside). Empty for a rule
    whose cases read only the prescription (doses, routes, substances) or that is not qualified.
    """
    if qualification is None:
        return ()
    found: dict[PatientQuestion, None] = {}
    for case in qualification.cases:
        if case.patient_conditions is not None:
            found[PatientQuestion("conditions", prefixes=case.patient_conditions)] = None
        if case.not_patient_conditions is not None:
            found[PatientQuestion("conditions", prefixes=case.not_patient_conditions)] = None
        if case.patient_sex is not None:
            found[PatientQuestion("sex", sex=case.patient_sex)] = None
        if case.age is not None:
            found[PatientQuestion("age", bound=case.age)] = None
        if case.egfr_ml_min is not None:
            found[PatientQuestion("egfr_ml_min", bound=case.egfr_ml_min)] = None
        if case.potassium_mmol_l is not None:
            found[PatientQuestion("labs.potassium_mmol_l", bound=case.potassium_mmol_l)] = None
    return tuple(found)


_READERS = {
    field: cast(Callable[[Patient], PatientValue], attrgetter(field)) for field in get_args(PatientField)
}
