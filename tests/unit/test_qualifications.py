"""Curated ANSM qualifications: data integrity against the 2020-10 text, and the evaluator."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

from iatro.checks.context import Exposure
from iatro.checks.qualify import qualify
from iatro.errors import SourceError
from iatro.kb.qualifications import (
    Case,
    Qualification,
    Range,
    check_against,
    condition_digest,
    load_qualifications,
)
from iatro.kb.thesaurus import LevelEntry, ThesaurusEdition
from iatro.model.prescription import Labs, Patient
from knowledge_base.builder.ansm import load_edition

ROOT = Path(__file__).resolve().parents[2]
YAML = ROOT / "knowledge_base" / "curated" / "ansm_qualifications.yaml"


@cache
def edition() -> ThesaurusEdition:
    return load_edition(ROOT / "knowledge_base" / "sources", "2020-10")


@cache
def quals() -> dict[str, Qualification]:
    return load_qualifications(YAML)


def _norm(text: str) -> str:
    return " ".join(text.split())


def exp(name: str, **kw: Any) -> Exposure:
    return Exposure(line=1, substance_id=1, name=name, atc=(), **kw)


def q(rule_id: str, a: Exposure, b: Exposure, patient: Patient | None = None) -> Any:
    rule = edition().rule(rule_id)
    assert rule is not None
    return qualify(rule, quals()[rule_id], a, b, patient or Patient(age=80, conditions=("I10",)))


# --- integrity --------------------------------------------------------------------------------

MULTI = [r.rule_id for r in edition().rules if len(r.levels) > 1]
ALL_IDS = sorted(quals())


def test_every_multilevel_rule_is_curated() -> None:
    # 64 in the JSON, plus aminosides + autres aminosides once its CI is restored (ansm_errata.yaml).
    assert len(MULTI) == 65
    assert set(MULTI) <= set(quals())


def test_curation_matches_2020_10_text() -> None:
    assert check_against(quals(), edition()) == []


@pytest.mark.parametrize("rule_id", ALL_IDS)
def test_quotes_are_thesaurus_words(rule_id: str) -> None:
    rule = edition().rule(rule_id)
    assert rule is not None, f"{rule_id} is not in 2020-10"
    # The PDF import leaves some conditions ("Sauf s'il existe une hypokaliémie", the aspirin dose
    # bands) in the mechanism column: those words are the thesaurus' too.
    texts = [_norm(entry.condition) for entry in rule.levels] + [_norm(rule.mechanism)]
    qualification = quals()[rule_id]
    for case in qualification.cases:
        assert any(_norm(case.quote) in t for t in texts), case.quote
        # A case level outside the rule's levels must be named by its own quote (crizotinib's CI).
        if case.level is not None and case.level not in rule.level_codes:
            assert "contre-indication" in _norm(case.quote).lower()
    default = qualification.default
    if default.quote:
        assert any(_norm(default.quote) in t for t in texts), default.quote
    else:
        assert qualification.note or any(not e.condition for e in rule.levels if e.level == default.level), (
            "an unquoted default needs a note or an empty condition text"
        )


def test_stale_curation_is_flagged() -> None:
    ed = edition()
    rule_id = "ansm:amiodarone+diltiazem"
    rule = ed.rule(rule_id)
    assert rule is not None
    changed_levels = (
        LevelEntry(level="contre-indication", condition="avec le diltiazem IV"),
        *rule.levels[1:],
    )
    changed = rule.model_copy(update={"levels": changed_levels})
    assert condition_digest(changed) != condition_digest(rule)
    # Reflowing white space only is not a change of text.
    reflowed = rule.model_copy(
        update={
            "levels": tuple(
                LevelEntry(level=e.level, condition=e.condition.replace("\n", "  ")) for e in rule.levels
            )
        }
    )
    assert condition_digest(reflowed) == condition_digest(rule)
    new_rules = tuple(changed if r.rule_id == rule_id else r for r in ed.rules)
    new_edition = ed.model_copy(update={"rules": new_rules})
    new_edition.model_post_init(None)
    unknown = {"ansm:x+y": quals()[rule_id].model_copy(update={"rule_id": "ansm:x+y"})}
    assert check_against({**quals(), **unknown}, new_edition) == sorted(["ansm:x+y", rule_id])


def test_load_errors_name_rule_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "q.yaml"
    bad.write_text(
        'edition: "2020-10"\nqualifications:\n'
        '  - rule_id: "ansm:a+b"\n    condition_sha256: "' + "0" * 64 + '"\n'
        "    cases: [{level: contre-indication, quote: 'sans condition'}]\n"
        "    default: {level: precaution-emploi}\n",
        encoding="utf-8",
    )
    with pytest.raises(SourceError, match=r"ansm:a\+b: cases\.0"):
        load_qualifications(bad)
    bad.write_text(
        "qualifications:\n  - rule_id: 'ansm:a+b'\n    edition: x\n    condition_sha256: nope\n"
        "    default: {level: precaution-emploi}\n",
        encoding="utf-8",
    )
    with pytest.raises(SourceError, match=r"ansm:a\+b: condition_sha256"):
        load_qualifications(bad)


# --- every case of every curated rule ---------------------------------------------------------

OUT_OF_LIST = "substance hors liste"


def _member(side_name: str, excluded: tuple[str, ...] | None) -> str:
    ed = edition()
    if ed.substance(side_name) is not None and ed.kind_of(side_name) == "substance":
        return side_name.lower()
    banned = {n.lower() for n in excluded or ()}
    for substance, classes in ed.substance_classes.items():
        if substance.lower() not in banned and any(ed.class_label(side_name) == c for c in classes):
            return substance
    return side_name.lower()


def _inside(r: Range) -> float:
    for value in (r.ge, r.le):
        if value is not None:
            return value
    return (r.gt + 1) if r.gt is not None else (r.lt or 1) - 0.5


def _outside(r: Range) -> float:
    if r.ge is not None:
        return r.ge - 0.5
    if r.gt is not None:
        return r.gt
    if r.le is not None:
        return r.le + 0.5
    assert r.lt is not None
    return r.lt


def _side(case: Case, side: str, rule_side: str, negate: str | None) -> Exposure:
    subs = getattr(case, f"substances_{side}")
    name = subs[0] if subs else _member(rule_side, getattr(case, f"not_substances_{side}"))
    if negate == f"substances_{side}":
        name = OUT_OF_LIST
    if negate == f"not_substances_{side}":
        name = getattr(case, f"not_substances_{side}")[0]
    routes = getattr(case, f"route_{side}")
    route = routes[0] if routes else "orale"
    if negate == f"route_{side}":
        route = "injectable" if route != "injectable" else "orale"
    kw: dict[str, Any] = {"route": route, "intakes_per_day": 1.0, "mg_per_day": 1.0}
    for field in ("mg_per_intake", "mg_per_day", "mg_per_week"):
        r: Range | None = getattr(case, f"{field}_{side}")
        if r is None:
            continue
        value = _outside(r) if negate == f"{field}_{side}" else _inside(r)
        kw["mg_per_day"] = value / 7 if field == "mg_per_week" else value
    return exp(name, **kw)


def _patient(case: Case, negate: str | None) -> Patient:
    conditions = ("Z000",)
    if case.patient_conditions and negate != "patient_conditions":
        conditions = (case.patient_conditions[0],)
    sex = case.patient_sex or "F"
    if negate == "patient_sex":
        sex = "F" if sex == "M" else "M"
    values: dict[str, float] = {"age": 80, "egfr_ml_min": 100, "potassium_mmol_l": 4.5}
    for field in values:
        r = getattr(case, field)
        if r is not None:
            values[field] = _outside(r) if negate == field else _inside(r)
    return Patient(
        age=int(values["age"]),  # 64.5 -> 64 stays on the intended side of the 65 bound
        sex=sex,
        conditions=conditions,
        egfr_ml_min=values["egfr_ml_min"],
        labs=Labs(potassium_mmol_l=values["potassium_mmol_l"]),
    )


def _build(rule_id: str, case: Case, negate: str | None = None) -> tuple[Exposure, Exposure, Patient]:
    rule = edition().rule(rule_id)
    assert rule is not None
    return _side(case, "a", rule.a, negate), _side(case, "b", rule.b, negate), _patient(case, negate)


CASES = [(rid, i) for rid in ALL_IDS for i in range(len(quals()[rid].cases))]
CONDITION_FIELDS = (
    "substances_a", "substances_b", "not_substances_a", "not_substances_b", "route_a", "route_b",
    "mg_per_intake_a", "mg_per_intake_b", "mg_per_day_a", "mg_per_day_b", "mg_per_week_a",
    "mg_per_week_b", "patient_conditions", "patient_sex", "age", "egfr_ml_min", "potassium_mmol_l",
)  # fmt: skip


@pytest.mark.parametrize(("rule_id", "index"), CASES)
def test_each_case_yields_its_level(rule_id: str, index: int) -> None:
    qualification = quals()[rule_id]
    case = qualification.cases[index]
    a, b, patient = _build(rule_id, case)
    result = q(rule_id, a, b, patient)
    # An earlier case may legitimately also hold (cases are ordered); then it wins.
    assert result.case_index is not None and result.case_index <= index, result.why
    assert result.level == qualification.cases[result.case_index].level
    assert result.unresolved_conditions == ()


@pytest.mark.parametrize(("rule_id", "index"), CASES)
def test_each_case_negated_does_not_apply(rule_id: str, index: int) -> None:
    case = quals()[rule_id].cases[index]
    field = next(f for f in CONDITION_FIELDS if getattr(case, f) is not None)
    a, b, patient = _build(rule_id, case, negate=field)
    result = q(rule_id, a, b, patient)
    if case.either_side:  # the swapped orientation may still satisfy the case
        result = (
            q(rule_id, exp(OUT_OF_LIST), exp(OUT_OF_LIST), patient) if field.startswith("sub") else result
        )
    assert result.case_index != index, result.why


@pytest.mark.parametrize("rule_id", ALL_IDS)
def test_default_when_no_case_applies(rule_id: str) -> None:
    qualification = quals()[rule_id]
    if any(c.not_substances_a or c.not_substances_b or c.potassium_mmol_l for c in qualification.cases):
        pytest.skip("the complement case covers every other member")
    a, b = (
        exp(OUT_OF_LIST, route="rectale", mg_per_day=0.1, intakes_per_day=1),
        exp(OUT_OF_LIST, route="rectale", mg_per_day=0.1, intakes_per_day=1),
    )
    patient = Patient(age=70, sex="F", conditions=("Z000",), egfr_ml_min=95, labs=Labs(potassium_mmol_l=4.5))
    result = q(rule_id, a, b, patient)
    if result.case_index is None and not result.unresolved_conditions:
        assert result.level == qualification.default.level


# --- named behaviours -------------------------------------------------------------------------

ASA, AVK = (
    "ansm:acide acetylsalicylique+anticoagulants oraux",
    "ansm:acide acetylsalicylique+anti inflammatoires non steroidiens",
)


@pytest.mark.parametrize(
    ("intake", "day", "level"),
    [
        (1000, 3000, "association-deconseillee"),  # anti-inflammatory
        (500, 1500, "association-deconseillee"),  # analgesic
        (75, 75, "a-prendre-en-compte"),  # antiplatelet
        (375, 375, "a-prendre-en-compte"),
        (160, 320, "a-prendre-en-compte"),
    ],
)
def test_aspirin_bands_with_nsaid(intake: float, day: float, level: str) -> None:
    result = q(AVK, exp("acide acetylsalicylique", mg_per_intake=intake, mg_per_day=day), exp("ibuprofene"))
    assert result.level == level


def test_aspirin_oral_anticoagulant_ulcer_history() -> None:
    aspirin = exp("acide acetylsalicylique", mg_per_intake=500, mg_per_day=1500)
    ulcer = Patient(age=80, conditions=("K257",))
    assert q(ASA, aspirin, exp("warfarine"), ulcer).level == "contre-indication"
    assert (
        q(ASA, aspirin, exp("warfarine"), Patient(age=80, conditions=("I10",))).level
        == "association-deconseillee"
    )
    low = exp("acide acetylsalicylique", mg_per_intake=75, mg_per_day=75)
    assert q(ASA, low, exp("warfarine"), ulcer).level == "association-deconseillee"
    assert q(ASA, low, exp("warfarine"), Patient(age=80, conditions=("I10",))).level == "a-prendre-en-compte"
    # No coded history: the ulcer case cannot be ruled out.
    unknown = q(ASA, low, exp("warfarine"), Patient(age=80))
    assert unknown.level == "association-deconseillee"
    assert unknown.lowest_possible == "a-prendre-en-compte"
    assert any("K25" in u for u in unknown.unresolved_conditions)


def test_missing_dose_reports_worst_candidate() -> None:
    result = q(AVK, exp("acide acetylsalicylique"), exp("ibuprofene"))
    assert result.level == "association-deconseillee"
    assert "mg_per_intake of acide acetylsalicylique" in result.unresolved_conditions
    assert set(result.candidates) == {"association-deconseillee", "a-prendre-en-compte"}
    assert result.lowest_possible == "a-prendre-en-compte"
    # Daily dose known and intakes known: per-intake dose is derived, nothing unresolved.
    derived = q(AVK, exp("acide acetylsalicylique", mg_per_day=75, intakes_per_day=1), exp("ibuprofene"))
    assert derived.level == "a-prendre-en-compte" and derived.unresolved_conditions == ()


SED = "ansm:autres medicaments sedatifs+medicaments sedatifs"


def test_sedatives_oxybate_opioid_ci_otherwise_apec() -> None:
    assert q(SED, exp("oxybate de sodium"), exp("morphine")).level == "contre-indication"
    assert q(SED, exp("morphine"), exp("oxybate de sodium")).level == "contre-indication"
    assert q(SED, exp("phenobarbital"), exp("oxybate de sodium")).level == "contre-indication"
    assert q(SED, exp("oxybate de sodium"), exp("zolpidem")).level == "association-deconseillee"
    assert q(SED, exp("morphine"), exp("zolpidem")).level == "a-prendre-en-compte"


_SUBST_TDP = "substances susceptibles de donner des torsades de pointes"
TDP = f"ansm:neuroleptiques susceptibles de donner des torsades de pointes+{_SUBST_TDP}"
TORS = f"ansm:{_SUBST_TDP}+torsadogenes sauf arsenieux antiparasitaires neuroleptiques methadone"


def test_torsadogens() -> None:
    assert q(TDP, exp("haloperidol"), exp("citalopram")).level == "contre-indication"
    assert q(TDP, exp("haloperidol"), exp("sotalol")).level == "association-deconseillee"
    assert q(TORS, exp("sotalol"), exp("citalopram")).level == "contre-indication"
    assert q(TORS, exp("haloperidol"), exp("sotalol")).level == "association-deconseillee"
    assert q(TORS, exp("sotalol"), exp("amiodarone")).level == "contre-indication"
    oral_ery = q(TORS, exp("sotalol"), exp("erythromycine", route="orale"))
    assert oral_ery.level is None
    assert q(TORS, exp("sotalol"), exp("erythromycine", route="injectable")).level == "contre-indication"
    assert q(TORS, exp("citalopram"), exp("erythromycine", route="orale")).level == "contre-indication"


def test_diltiazem_iv_vs_oral() -> None:
    rid = "ansm:amiodarone+diltiazem"
    assert q(rid, exp("amiodarone"), exp("diltiazem", route="injectable")).level == "association-deconseillee"
    assert q(rid, exp("amiodarone"), exp("diltiazem", route="orale")).level == "precaution-emploi"
    missing = q(rid, exp("amiodarone"), exp("diltiazem"))
    assert missing.level == "association-deconseillee"
    assert missing.unresolved_conditions == ("route of diltiazem",)


def test_methotrexate_weekly_dose() -> None:
    rid = "ansm:anti inflammatoires non steroidiens+methotrexate"
    assert q(rid, exp("ibuprofene"), exp("methotrexate", mg_per_day=15 / 7)).level == "precaution-emploi"
    assert (
        q(rid, exp("ibuprofene"), exp("methotrexate", mg_per_day=25 / 7)).level == "association-deconseillee"
    )


def test_spironolactone_dose_and_heart_failure() -> None:
    rid = (
        "ansm:antagonistes des recepteurs de l angiotensine ii"
        "+diuretiques epargneurs de potassium seuls ou associes"
    )
    p = Patient(age=80, conditions=("I10",), labs=Labs(potassium_mmol_l=4.5))
    assert q(rid, exp("losartan"), exp("spironolactone", mg_per_day=25), p).level == "precaution-emploi"
    assert (
        q(rid, exp("losartan"), exp("spironolactone", mg_per_day=100), p).level == "association-deconseillee"
    )
    hf = Patient(age=80, conditions=("I500",), labs=Labs(potassium_mmol_l=4.5))
    assert q(rid, exp("losartan"), exp("eplerenone", mg_per_day=25), hf).level == "precaution-emploi"


def test_unqualified_rule_uses_worst_level() -> None:
    rule = edition().rule("ansm:amiodarone+diltiazem")
    assert rule is not None
    result = qualify(rule, None, exp("amiodarone"), exp("diltiazem"), Patient())
    assert result.level == "association-deconseillee" and result.why == "no qualification: worst level"
    assert result.lowest_possible == "precaution-emploi"
