"""STOPP/START version 2 from the implementable XML algorithms (Huibers et al. 2019) into criteria.

Source: ``knowledge_base/sources/stoppstart_v2/stoppstart.xml.xz`` (see SOURCE.md and stoppstart.xsd).
Each XML rule becomes one :class:`~iatro.kb.criteria.Criterion` (STOPP -> ``pim``, START ->
``omission``); each XML iteration (an alternative coding of the same rule) becomes one alternative
(``any_of``) when it can be read with what French practice codes: CIM-10 (= ICD-10) diagnoses, ATC
drugs and LOINC measurements for which the input has a field.

How the XML is read (each rule is general, not criterion-specific, unless listed in the errata):

* Iterations whose diagnoses are coded in ICPC-1-NL, ICPC-2 or ICD-9 are skipped: they are other
  codings of the same criterion, and the ICD-10 iteration carries it for us. Iterations without any
  diagnosis (drugs and/or measurements only) are kept whatever their coding neighbours.
* ICD-10 and ATC values are prefixes whatever their ``regex`` flag: an ICD-10 category includes its
  subdivisions (the XML writes ``K25`` for peptic ulcer; French coding says ``K25.0``) and an ATC
  value shorter than level 5 (``G03HB``) can only mean the group.
* Durations: D = 1, W = 7, M = 30, Y = 365 days ("> 3 months" reads "> 90 days"); doses in G are
  converted to mg; the XML's comparators are kept (">" stays strict).
* A medicine condition made only of excluded values (operator ``!=``) is read as "none of these"
  (START B1: "a medicine other than a LABA/LAMA or ICS combination" would be true of almost any
  prescription; the rule intends that the patient is not on such an inhaler).
* The episode "duration" of the XML is the time since the condition began (recent bleeding < 3
  months, stent < 12 months, DVT > 6 months). The input has no onset dates: such a required
  condition makes its alternative non-computable; as an excluded condition it stays computable (a
  patient without the code satisfies it, one with it is "not assessed").
* Not computable (kept, with the reason): measurements without an input field (blood pressure,
  FEV1, blood gases, T-scores, albuminuria, ejection fraction), past medicines (status inactive),
  frequencies of episodes or of medicines.
* A measurement without a result (STOPP B12: "potassium was measured") cannot be expressed; its
  iteration is dropped, with a note (iteration 1 of B12, the same drugs without any lab, covers it).
* The drug a STOPP finding is about is the one of the ``<action type="stop">``; the other drugs of the
  iteration are context (``target: false``).
* Identical alternatives (after conversion) are merged; their iterations are cited together.

Errata (:data:`_ERRATA`, each citing the STOPP/START v2 text) correct what the XML visibly gets wrong.
The list records the XML's sha256, so a changed file shows in the build's manifest.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iatro.errors import SourceError
from iatro.kb.criteria import (
    Comparator,
    ConditionGroup,
    CriteriaList,
    Criterion,
    DrugSelector,
    LabCondition,
    Match,
    Threshold,
    normalise_cim10,
)
from knowledge_base.builder.files import read_bytes, sha256_file

SUBDIR = "stoppstart_v2"
XML_NAME = "stoppstart.xml.xz"
LIST_ID = "stopp-start-v2"
TITLE = "STOPP/START version 2 (O'Mahony et al. 2015) as implementable algorithms (Huibers et al. 2019)"
EDITION = "STOPP/START v2, 2015; algorithms Huibers 2019, commit 8fdc1ac"
LICENCE = (
    "LGPL-3.0 (GitHub MichielCM/stoppstart, xml/LICENSE): modifications of the data must be shared; "
    "this conversion's reading rules and errata are in knowledge_base/builder/stoppstart.py"
)
REFERENCE = (
    "Huibers CJA et al. Int J Med Inform 2019, doi:10.1016/j.ijmedinf.2018.12.010; "
    "O'Mahony D et al. Age Ageing 2015;44:213-8"
)

_INTERVAL_DAYS = {"D": 1, "W": 7, "M": 30, "Y": 365}
_SKIPPED_CODINGS = {"icpc1nl": "ICPC-1-NL", "icpc2": "ICPC-2", "icd9": "ICD-9"}
_OPS = {"=", "!=", "<", ">"}

# LOINC codes of the XML that the input can answer. The meaning is the one the XML gives them
# (with the criterion text), which is what matters for reading the rule.
_LOINC_FIELDS: dict[str, str] = {
    "2823-3": "potassium_mmol_l",  # STOPP B11/B12: hyperkalaemia (K+ > 4.9 / > 5 mmol/l)
    "62238-1": "egfr_ml_min",  # STOPP E1-E6: "eGFR < … ml/min/1.73m2"
    "8867-4": "heart_rate_bpm",  # STOPP B4 "bradycardia (< 50/min)", D11 "< 60 beats/min"
    "47597-0": "calcium_mmol_l",  # STOPP B8 "corrected serum calcium > 2.65 mmol/l"
}
_LOINC_AGE = "30525-0"
_LOINC_SEX = "76689-9"
# 1996-8 stands for K+ in one STOPP B8 iteration and for Na+ in another and in D4; each use is
# resolved from the criterion text ("serum K+ < 3.0 mmol/l", "serum Na+ < 130 mmol/l").
_LOINC_BY_USE: dict[tuple[str, str, float], str] = {
    ("STOPP B8", "1996-8", 3.0): "potassium_mmol_l",
    ("STOPP B8", "1996-8", 130.0): "sodium_mmol_l",
    ("STOPP D4", "1996-8", 130.0): "sodium_mmol_l",
}
# What the XML measures with the LOINC codes the input has no field for.
_LOINC_UNMAPPED: dict[str, str] = {
    "8480-6": "systolic blood pressure",
    "8462-4": "diastolic blood pressure",
    "19925-7": "FEV1 (% of predicted)",
    "11556-8": "arterial pO2",
    "11557-6": "arterial pCO2",
    "20564-1": "oxygen saturation",
    "38263-0": "bone mineral density T-score",
    "38267-1": "bone mineral density T-score",
    "14956-7": "24-hour urine albumin",
    "10230-1": "left ventricular ejection fraction",
}

_VACCINE_REASON = (
    "a vaccine is given once or yearly, so its absence from the current prescription says nothing; "
    "needs the vaccination history (Patient.vaccinations), which the criteria format does not read"
)


@dataclass(frozen=True)
class _Erratum:
    """A correction of the XML, justified by the STOPP/START v2 text it quotes."""

    note: str
    age_not_above: int | None = None  # START A5: the XML's "age > N" required -> "age <= N"
    not_computable: str | None = None  # reason: the iteration(s) are kept but not evaluated
    priorities: tuple[int, ...] = ()  # iterations concerned; () = all
    description: tuple[str, str] | None = None  # (wrong, right) in the description


_ERRATA: dict[str, tuple[_Erratum, ...]] = {
    "START A5": (
        _Erratum(
            note=(
                "erratum: the XML requires 'age > 85' where the text says 'unless … age is > 85 years'; "
                "read as age <= 85"
            ),
            age_not_above=85,
        ),
    ),
    "STOPP G2": (
        _Erratum(
            note=(
                "erratum: iteration 4 has no diagnosis while the text says 'in moderate-severe COPD' and "
                "the other codings require COPD: an omission of the XML, not evaluated"
            ),
            not_computable="the XML iteration lacks the COPD diagnosis the criterion requires",
            priorities=(4,),
        ),
    ),
    "START I1": (_Erratum(note="vaccine omission", not_computable=_VACCINE_REASON),),
    "START I2": (_Erratum(note="vaccine omission", not_computable=_VACCINE_REASON),),
    "STOPP D5": (
        _Erratum(
            note="description: '?' restored to '≥' (lost character, see SOURCE.md)",
            description=("for ? 4 weeks", "for ≥ 4 weeks"),
        ),
    ),
    "STOPP K3": (
        _Erratum(
            note="description: '?' restored to '≥' (lost character, see SOURCE.md)",
            description=("pressure ? 20mmHg", "pressure ≥ 20mmHg"),
        ),
    ),
}


# ---------------------------------------------------------------------------------------------------
# Parsing the XML into plain records


@dataclass(frozen=True)
class _Values:
    op: str
    items: tuple[tuple[str, bool], ...]  # (value, regex)

    def numbers(self, where: str) -> float:
        if len(self.items) != 1:
            raise SourceError(f"{where}: expected one numeric value, found {len(self.items)}")
        try:
            return float(self.items[0][0].replace(",", "."))
        except ValueError as exc:
            raise SourceError(f"{where}: {self.items[0][0]!r} is not a number") from exc


@dataclass(frozen=True)
class _Interval:
    interval: str
    values: _Values
    unit: str | None = None


@dataclass(frozen=True)
class _Element:
    tag: str  # episode | medicine | measurement
    negative: bool
    terms: tuple[tuple[str, _Values], ...]
    duration: _Interval | None = None
    frequency: _Interval | None = None
    dose: _Interval | None = None
    status_active: bool | None = None
    result: _Interval | None = None  # interval unused; unit is the result unit


@dataclass
class _Iteration:
    priority: int
    conditions: list[_Element]
    actions: list[tuple[str, _Element]]
    ref: str = ""  # how notes cite it: the priority, with the position when priorities repeat (STOPP B8)


@dataclass
class _Rule:
    rule_id: str
    description: str
    iterations: list[_Iteration] = field(default_factory=list)


def _bool(text: str | None, default: bool, where: str) -> bool:
    if text is None:
        return default
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise SourceError(f"{where}: {text!r} is not a boolean")


def _values(el: ET.Element | None, where: str) -> _Values:
    if el is None or el.tag != "values":
        raise SourceError(f"{where}: <values> missing")
    op = el.get("operator", "")
    if op not in _OPS:
        raise SourceError(f"{where}: unknown operator {op!r}")
    items = []
    for value in el:
        if value.tag != "value":
            raise SourceError(f"{where}: unexpected <{value.tag}> in <values>")
        text = (value.text or "").strip()
        if text:  # an empty <value/> (one ICPC list of STOPP D1) selects nothing
            items.append((text, _bool(value.get("regex"), False, where)))
    return _Values(op, tuple(items))


def _interval(el: ET.Element, where: str) -> _Interval:
    interval = el.get("interval", "")
    if el.tag != "result" and interval not in _INTERVAL_DAYS:
        raise SourceError(f"{where}: unknown interval {interval!r}")
    return _Interval(interval, _values(el.find("values"), where), el.get("unit"))


def _element(el: ET.Element, where: str) -> _Element:
    if el.tag not in ("episode", "medicine", "measurement"):
        raise SourceError(f"{where}: unexpected <{el.tag}>")
    terms: list[tuple[str, _Values]] = []
    parts: dict[str, Any] = {}
    for child in el:
        if child.tag == "terminology":
            terms.append((child.get("name", ""), _values(child.find("values"), where)))
        elif child.tag in ("duration", "frequency", "dose", "result"):
            parts[child.tag] = _interval(child, f"{where} <{child.tag}>")
        elif child.tag == "status":
            parts["status_active"] = _bool(child.get("active"), True, where)
        else:  # includes <age> on measurements: allowed by the XSD, never used, meaning unspecified
            raise SourceError(f"{where}: unexpected <{child.tag}> in <{el.tag}>")
    if not terms:
        raise SourceError(f"{where}: <{el.tag}> without terminology")
    return _Element(el.tag, _bool(el.get("negative"), False, where), tuple(terms), **parts)


def _parse(xml: bytes) -> list[_Rule]:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise SourceError(f"STOPP/START XML unreadable: {exc}") from exc
    if root.tag != "rules":
        raise SourceError(f"STOPP/START XML: root is <{root.tag}>, expected <rules>")
    rules = []
    for rule_el in root:
        rule_id = (rule_el.get("id") or "").strip()
        if rule_el.tag != "rule" or not rule_id:
            raise SourceError(f"STOPP/START XML: unexpected <{rule_el.tag}> or rule without id")
        desc_el = rule_el.find("description")
        rule = _Rule(rule_id, " ".join((desc_el.text or "").split()) if desc_el is not None else "")
        for it_el in rule_el.findall("iteration"):
            where = f"{rule_id} iteration {it_el.get('priority')}"
            try:
                priority = int(it_el.get("priority", ""))
            except ValueError as exc:
                raise SourceError(f"{where}: priority is not an integer") from exc
            iteration = _Iteration(priority, [], [])
            for child in it_el:
                if child.tag == "condition":
                    if len(child) != 1:
                        raise SourceError(f"{where}: a condition holds {len(child)} elements, expected 1")
                    iteration.conditions.append(_element(child[0], where))
                elif child.tag == "action":
                    medicine = child.find("medicine")
                    if medicine is None:
                        raise SourceError(f"{where}: action without medicine")
                    iteration.actions.append((child.get("type", ""), _element(medicine, f"{where} action")))
                else:
                    raise SourceError(f"{where}: unexpected <{child.tag}>")
            rule.iterations.append(iteration)
        priorities = [it.priority for it in rule.iterations]
        for ordinal, it in enumerate(rule.iterations, start=1):
            repeated = priorities.count(it.priority) > 1
            it.ref = f"{it.priority} (#{ordinal})" if repeated else str(it.priority)
        if not rule.description or not rule.iterations:
            raise SourceError(f"{rule_id}: description or iterations missing")
        rules.append(rule)
    return rules


# ---------------------------------------------------------------------------------------------------
# Converting one iteration


def _days(interval: _Interval, where: str) -> Threshold:
    value = interval.values.numbers(where) * _INTERVAL_DAYS[interval.interval]
    return Threshold(op=_threshold_op(interval.values.op, where), value=value)


_NUMBER_OPS: dict[str, Comparator] = {"<": "<", ">": ">", "=": "="}


def _threshold_op(op: str, where: str) -> Comparator:
    comparator = _NUMBER_OPS.get(op)
    if comparator is None:
        raise SourceError(f"{where}: operator {op!r} on a number")
    return comparator


def _selector_parts(el: _Element, where: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    include: list[str] = []
    exclude: list[str] = []
    for name, values in el.terms:
        if name != "atc":
            raise SourceError(f"{where}: medicine coded in {name!r}, expected atc")
        target = include if values.op == "=" else exclude if values.op == "!=" else None
        if target is None:
            raise SourceError(f"{where}: operator {values.op!r} on ATC codes")
        target.extend(v.strip().upper() for v, _ in values.items)
    return tuple(dict.fromkeys(include)), tuple(dict.fromkeys(exclude))


@dataclass
class _Draft:
    drugs: list[dict[str, Any]] = field(default_factory=list)
    absent: list[DrugSelector] = field(default_factory=list)
    conditions: list[ConditionGroup] = field(default_factory=list)
    excluded: list[ConditionGroup] = field(default_factory=list)
    labs: list[LabCondition] = field(default_factory=list)
    age_min: int | None = None
    age_max: int | None = None
    sex: str | None = None
    blockers: list[str] = field(default_factory=list)  # why not computable


def _episode(el: _Element, draft: _Draft, where: str) -> None:
    codes: list[str] = []
    for name, values in el.terms:
        if name != "icd10" or values.op != "=":
            raise SourceError(f"{where}: episode term {name} {values.op} in an ICD-10 iteration")
        codes.extend(normalise_cim10(v) for v, _ in values.items)
    if el.frequency is not None:
        draft.blockers.append(
            f"needs how often {', '.join(codes)} occurred (episode frequency); the input has no history"
        )
    since = _days(el.duration, where) if el.duration is not None else None
    group = ConditionGroup(cim10=tuple(dict.fromkeys(codes)), since_onset_days=since)
    if el.negative:
        draft.excluded.append(group)
        return
    if since is not None:
        draft.blockers.append(
            f"needs when {', '.join(group.cim10)} began (onset {since.text()} days); "
            "the input has no onset dates"
        )
    draft.conditions.append(group)


def _medicine(el: _Element, draft: _Draft, where: str) -> None:
    include, exclude = _selector_parts(el, where)
    if el.status_active is False:
        draft.blockers.append(
            f"needs past medicines ({', '.join(include)} no longer taken); "
            "the input has only the current prescription"
        )
    if el.frequency is not None:
        draft.blockers.append("needs how often a medicine was given over time; the input has no history")
    if el.negative or not include:
        if el.dose is not None or el.duration is not None:
            raise SourceError(f"{where}: dose or duration on an absent medicine")
        if el.negative and not include:
            raise SourceError(f"{where}: 'no medicine other than …' has no reading in the format")
        if include:
            draft.absent.append(DrugSelector(atc=include, exclude_atc=exclude))
        else:
            # A positive condition with only excluded values reads "none of these" (module docstring).
            draft.absent.append(DrugSelector(atc=exclude))
        return
    spec: dict[str, Any] = {"atc": include, "exclude_atc": exclude}
    if el.dose is not None:
        if el.dose.interval != "D":
            raise SourceError(f"{where}: dose per {el.dose.interval!r}, expected per day")
        factor = {"G": 1000.0, "MG": 1.0}.get(el.dose.unit or "")
        if factor is None:
            raise SourceError(f"{where}: dose unit {el.dose.unit!r}")
        op = _threshold_op(el.dose.values.op, where)
        spec["mg_per_day"] = Threshold(op=op, value=round(el.dose.values.numbers(where) * factor, 6))
    if el.duration is not None:
        spec["duration_days"] = _days(el.duration, where)
    draft.drugs.append(spec)


def _measurement(el: _Element, draft: _Draft, rule_id: str, where: str) -> bool:
    """False when the measurement cannot be expressed at all (no result): the iteration is dropped."""
    if len(el.terms) != 1 or el.terms[0][0] != "loinc" or len(el.terms[0][1].items) != 1:
        raise SourceError(f"{where}: a measurement needs exactly one LOINC code")
    # The XML has one code with a trailing no-break space ("2823-3\u00a0"); str.strip() removes it.
    loinc = el.terms[0][1].items[0][0].strip()
    if el.negative:
        raise SourceError(f"{where}: negative measurements are not supported")
    if el.result is None:
        return False
    values = el.result.values
    if loinc == _LOINC_SEX:
        sexes = {"male": "M", "female": "F"}
        if values.op != "=" or len(values.items) != 1 or values.items[0][0].lower() not in sexes:
            raise SourceError(f"{where}: unexpected sex condition")
        draft.sex = sexes[values.items[0][0].lower()]
        return True
    number = values.numbers(where)
    op = _threshold_op(values.op, where)
    if loinc == _LOINC_AGE:
        # Ages are whole years: "> 64" is "at least 65".
        if op in (">", "="):
            draft.age_min = math.floor(number) + 1 if op == ">" else int(number)
        if op in ("<", "="):
            draft.age_max = math.ceil(number) - 1 if op == "<" else int(number)
        return True
    lab_field = _LOINC_BY_USE.get((rule_id, loinc, number)) or _LOINC_FIELDS.get(loinc)
    label = _LOINC_UNMAPPED.get(loinc)
    draft.labs.append(
        LabCondition.model_validate(
            {
                "field": lab_field,
                "loinc": loinc,
                "op": op,
                "value": number,
                "unit": el.result.unit,
                "label": label,
            }
        )
    )
    if lab_field is None:
        what = label or ("a value whose meaning the XML leaves ambiguous" if loinc == "1996-8" else "a value")
        draft.blockers.append(f"needs {what} (LOINC {loinc}); the input has no field for it")
    return True


def _targets(draft: _Draft, actions: list[tuple[str, _Element]], where: str) -> None:
    stops = [_selector_parts(el, where) for kind, el in actions if kind == "stop"]
    if not stops or not draft.drugs:
        return
    keys = [(d["atc"], d["exclude_atc"]) for d in draft.drugs]
    exact = [key in stops for key in keys]
    if any(exact):
        chosen = exact
    else:
        # No drug of the iteration is written exactly as the action: fall back on shared prefixes.
        stop_prefixes = [p for inc, _ in stops for p in inc]
        chosen = [
            any(a.startswith(b) or b.startswith(a) for a in key[0] for b in stop_prefixes) for key in keys
        ]
        if not any(chosen):
            chosen = [True] * len(keys)
    for spec, is_target in zip(draft.drugs, chosen, strict=True):
        spec["target"] = is_target


@dataclass
class _Converted:
    match: Match | None  # None: dropped (cannot be expressed)
    note: str | None = None


def _convert(rule: _Rule, iteration: _Iteration, errata: Iterable[_Erratum]) -> _Converted:
    where = f"{rule.rule_id} iteration {iteration.ref}"
    draft = _Draft()
    for el in iteration.conditions:
        if el.tag == "episode":
            _episode(el, draft, where)
        elif el.tag == "medicine":
            _medicine(el, draft, where)
        elif not _measurement(el, draft, rule.rule_id, where):
            return _Converted(
                None,
                f"iteration {iteration.ref} dropped: it only asks that LOINC "
                f"{el.terms[0][1].items[0][0].strip()} was measured, which the format cannot express",
            )
    _targets(draft, iteration.actions, where)
    for erratum in errata:
        if erratum.priorities and iteration.priority not in erratum.priorities:
            continue
        if erratum.age_not_above is not None and draft.age_min is not None:
            draft.age_min, draft.age_max = None, erratum.age_not_above
        if erratum.not_computable:
            draft.blockers.append(erratum.not_computable)
    blockers = list(dict.fromkeys(draft.blockers))
    match = Match.model_validate(
        {
            "drugs": draft.drugs,
            "absent_drugs": draft.absent,
            "conditions": draft.conditions,
            "excluded_conditions": draft.excluded,
            "labs": draft.labs,
            "age_min": draft.age_min,
            "age_max": draft.age_max,
            "sex": draft.sex,
            "computable": not blockers,
            "not_computable_reason": "; ".join(blockers) or None,
            "source_ref": f"iteration {iteration.ref}",
        }
    )
    return _Converted(match)


def _coding(iteration: _Iteration) -> str | None:
    """The diagnosis coding of an iteration, None when it has no diagnosis."""
    names = {name for el in iteration.conditions if el.tag == "episode" for name, _ in el.terms}
    if len(names) > 1:
        raise SourceError(f"iteration {iteration.ref}: several diagnosis codings {sorted(names)}")
    return names.pop() if names else None


def _criterion(rule: _Rule) -> Criterion:
    errata = _ERRATA.get(rule.rule_id, ())
    notes: list[str] = []
    skipped: dict[str, list[str]] = {}
    merged: dict[Match, list[str]] = {}
    for iteration in rule.iterations:
        coding = _coding(iteration)
        if coding is not None and coding != "icd10":
            if coding not in _SKIPPED_CODINGS:
                raise SourceError(f"{rule.rule_id}: unknown diagnosis coding {coding!r}")
            skipped.setdefault(_SKIPPED_CODINGS[coding], []).append(iteration.ref)
            continue
        converted = _convert(rule, iteration, errata)
        if converted.note:
            notes.append(converted.note)
        if converted.match is not None:
            merged.setdefault(converted.match.model_copy(update={"source_ref": None}), []).append(
                iteration.ref
            )
    matches = tuple(
        m.model_copy(update={"source_ref": ("iteration " if len(p) == 1 else "iterations ") + ", ".join(p)})
        for m, p in merged.items()
    )
    icd10 = sum(1 for it in rule.iterations if _coding(it) == "icd10")
    fewer = [c for c, p in skipped.items() if len(p) > icd10]
    if fewer:
        notes.append(
            f"part of the criterion has no ICD-10 coding in the XML: {icd10} ICD-10 iteration(s) against "
            + ", ".join(f"{len(skipped[c])} in {c}" for c in fewer)
        )
    if skipped:
        notes.append(
            "other codings skipped: "
            + "; ".join(f"{coding} (iteration {', '.join(p)})" for coding, p in skipped.items())
        )
    description = rule.description
    for erratum in errata:
        notes.append(erratum.note)
        if erratum.description is not None:
            wrong, right = erratum.description
            if wrong not in description:
                raise SourceError(f"{rule.rule_id}: erratum expects {wrong!r} in the description")
            description = description.replace(wrong, right)
    computable = any(m.computable for m in matches)
    reason = None
    if not computable:
        parts = [p for m in matches if m.not_computable_reason for p in m.not_computable_reason.split("; ")]
        reason = "; ".join(dict.fromkeys(parts)) or "no iteration coded in ICD-10 or without diagnosis"
    kind = "pim" if rule.rule_id.startswith("STOPP") else "omission"
    if not rule.rule_id.startswith(("STOPP", "START")):
        raise SourceError(f"{rule.rule_id}: neither STOPP nor START")
    return Criterion.model_validate(
        {
            "criterion_id": rule.rule_id,
            "kind": kind,
            "description": description,
            "any_of": matches,
            "computable": computable,
            "not_computable_reason": reason,
            "notes": tuple(dict.fromkeys(notes)),
        }
    )


def xml_path(sources_dir: Path) -> Path:
    """The XML under ``sources_dir`` (the sources root, or the stoppstart_v2 directory itself)."""
    direct = sources_dir / XML_NAME
    return direct if direct.exists() else sources_dir / SUBDIR / XML_NAME


def load_stoppstart(sources_dir: Path) -> CriteriaList:
    """STOPP/START v2 as a criteria list; the same file gives the same list (no clock, no randomness)."""
    path = xml_path(sources_dir)
    rules = _parse(read_bytes(path))
    criteria = []
    for rule in rules:
        try:
            criteria.append(_criterion(rule))
        except SourceError:
            raise
        except ValueError as exc:  # pydantic's ValidationError: the XML says something the format refuses
            raise SourceError(f"{rule.rule_id}: cannot be converted: {exc}") from exc
    return CriteriaList(
        list_id=LIST_ID,
        title=TITLE,
        edition=EDITION,
        source=f"{REFERENCE}; file {SUBDIR}/{XML_NAME} (sha256 {sha256_file(path)})",
        licence=LICENCE,
        default_severity="moderate",
        criteria=tuple(criteria),
    )
