"""Geriatric checks on the real KB: anticholinergic burden, QT (Tisdale), renal, vaccines, eligibility.

Exposures are built by hand from ``kb.find_substances`` so that each test states exactly what the
check sees. Every check has a case that fires and a case that must not; missing inputs are asserted
where a check lacks what it needs.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from iatro.checks.anticholinergic import AnticholinergicCheck
from iatro.checks.context import CheckContext, Exposure
from iatro.checks.eligibility import EligibilityCheck, load_nti_table
from iatro.checks.qt import QtCheck, load_qt_table
from iatro.checks.renal import RenalCheck, cockcroft_gault, load_renal_table
from iatro.checks.result import CheckResult
from iatro.checks.vaccines import VaccineCheck, add_months
from iatro.errors import KnowledgeBaseCorrupt, KnowledgeBaseMissing, SourceError
from iatro.kb.store import KnowledgeBase
from iatro.model.prescription import HospitalContext, Labs, Patient, Vaccination
from knowledge_base.builder.files import CURATED_DIR
from knowledge_base.builder.vaccines import RULES_CSV, load_vaccine_rules

pytestmark = pytest.mark.slow

DAY = dt.date(2025, 11, 24)  # inside the 2025-26 flu campaign and the autumn 2025 Covid-19 campaign


def expo(kb: KnowledgeBase, line: int, name: str, **fields: Any) -> Exposure:
    [substance] = kb.find_substances(name)
    return Exposure(
        line=line,
        substance_id=substance.id,
        name=substance.name,
        atc=substance.atc[:1],
        aliases=substance.ansm,
        **fields,
    )


Drug = str | tuple[str, dict[str, Any]]


def ctx_of(
    kb: KnowledgeBase,
    drugs: Sequence[Drug] = (),
    *,
    date: dt.date | None = DAY,
    unresolved: tuple[int, ...] = (),
    **patient: Any,
) -> CheckContext:
    exposures = tuple(
        expo(kb, i, d) if isinstance(d, str) else expo(kb, i, d[0], **d[1]) for i, d in enumerate(drugs)
    )
    return CheckContext(exposures, Patient(**patient), date, unresolved)


@pytest.fixture(scope="module")
def acb(kb):
    return AnticholinergicCheck(kb)


@pytest.fixture(scope="module")
def qt_table():
    return load_qt_table(CURATED_DIR / "qt_tisdale.yaml")


@pytest.fixture(scope="module")
def qt(kb, qt_table):
    return QtCheck(kb, qt_table)


@pytest.fixture(scope="module")
def renal(kb):
    return RenalCheck(kb, load_renal_table(CURATED_DIR / "renal_thresholds.yaml"))


@pytest.fixture(scope="module")
def vaccine_rules():
    return load_vaccine_rules()


@pytest.fixture(scope="module")
def vaccines(vaccine_rules):
    return VaccineCheck(vaccine_rules)


@pytest.fixture(scope="module")
def eligibility(kb):
    return EligibilityCheck(kb, load_nti_table(CURATED_DIR / "narrow_therapeutic_index.yaml"))


# -- result / tables ------------------------------------------------------------------------------------


def test_check_result_is_frozen():
    result = CheckResult()
    with pytest.raises(AttributeError):
        result.alerts = ()  # type: ignore[misc]


def test_checks_refuse_a_kb_without_their_table(kb, tmp_path):
    arrays = (kb.product_substances_indptr, kb.product_substances_indices)
    bare = KnowledgeBase(kb.manifest, kb.raw, *arrays, tmp_path)
    with pytest.raises(KnowledgeBaseMissing):
        RenalCheck(bare)


# -- anticholinergic burden -------------------------------------------------------------------------------


def test_acb_total_and_alert_for_two_definite_anticholinergics(kb, acb):
    result = acb.run(ctx_of(kb, ["amitriptyline", "oxybutynine", "amlodipine"]))
    score = result.scores["anticholinergic"]
    assert score["scale"] == "ACB"
    assert score["total"] == 6
    assert score["by_substance"] == {"amitriptyline": 3, "oxybutynine": 3}
    assert score["basis"]["amitriptyline"].startswith("Boustani 2008")
    [alert] = result.alerts
    assert alert.type == "anticholinergic" and alert.severity == "moderate"
    assert [s.name for s in alert.substances] == ["amitriptyline", "oxybutynine"]
    assert alert.lines == (0, 1)
    assert result.missing_inputs == ()


def test_acb_below_threshold_does_not_alert(kb, acb):
    result = acb.run(ctx_of(kb, ["furosemide", "codeine"]))
    assert result.scores["anticholinergic"]["total"] == 2
    assert result.alerts == ()


def test_acb_uses_acbcalc_where_boustani_is_silent_and_says_so(kb, acb):
    score = acb.run(ctx_of(kb, ["tramadol"])).scores["anticholinergic"]
    assert score["by_substance"] == {"tramadol": 2}
    assert score["basis"]["tramadol"].startswith("ACBcalc (Boustani 2008 silent)")


def test_acb_unrated_substance_is_listed_apart_not_scored_zero(kb, acb):
    score = acb.run(ctx_of(kb, ["apixaban"])).scores["anticholinergic"]
    assert score["by_substance"] == {}
    assert score["not_rated"] == ["apixaban"]


def test_acb_route_qualified_rows_apply_to_their_route_only(kb, acb):
    eye = acb.run(ctx_of(kb, [("hydrocortisone", {"route": "ophtalmique"})])).scores["anticholinergic"]
    mouth = acb.run(ctx_of(kb, [("hydrocortisone", {"route": "orale"})])).scores["anticholinergic"]
    # Carnahan rates the ophthalmic form 0 and the systemic forms 1 ("-not(opthalmic|…|topical)").
    assert eye["other_scales"]["Carnahan2006"]["by_substance"] == {"hydrocortisone": 0}
    assert mouth["other_scales"]["Carnahan2006"]["by_substance"] == {"hydrocortisone": 1}
    # Boustani does not distinguish routes: its value stays, and the basis says so for the eye drops.
    assert eye["by_substance"] == mouth["by_substance"] == {"hydrocortisone": 1}
    assert "hydrocortisone-ophthalmic Carnahan2006 0" in eye["basis"]["hydrocortisone"]


def test_acb_counts_a_substance_once_and_reports_unresolved_lines(kb, acb):
    result = acb.run(ctx_of(kb, ["amitriptyline", "amitriptyline"], unresolved=(2,)))
    assert result.scores["anticholinergic"]["total"] == 3
    assert result.scores["anticholinergic"]["complete"] is False
    assert result.missing_inputs == ("unresolved line(s) 2: anticholinergic score unknown",)


# -- QT: Tisdale score ------------------------------------------------------------------------------------


def test_tisdale_table_is_the_published_score(qt_table):
    points = {f.id: f.points for f in qt_table.factors}
    assert points == {
        "age": 1,
        "female": 1,
        "loop_diuretic": 1,
        "hypokalaemia": 2,
        "qtc": 2,
        "acute_mi": 2,
        "qt_drug_one": 3,
        "qt_drugs_two": 3,
        "sepsis": 3,
        "heart_failure": 3,
    }
    assert qt_table.max_score == 21
    assert [(b.level, b.min, b.max) for b in qt_table.levels] == [
        ("low", 0, 6),
        ("moderate", 7, 10),
        ("high", 11, 21),
    ]


def test_tisdale_table_with_a_wrong_point_is_refused(tmp_path):
    raw = yaml.safe_load((CURATED_DIR / "qt_tisdale.yaml").read_text(encoding="utf-8"))
    raw["factors"][0]["points"] = 2
    broken = tmp_path / "qt_tisdale.yaml"
    broken.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(SourceError, match="sum to 22"):
        load_qt_table(broken)


def test_tisdale_every_factor_scores_its_points(kb, qt):
    ctx = ctx_of(
        kb,
        ["amiodarone", "escitalopram", "furosemide"],
        age=84,
        sex="F",
        labs=Labs(potassium_mmol_l=3.2, qtc_ms=480),
        conditions=("I214", "A41", "I50"),
    )
    result = qt.run(ctx)
    score = result.scores["qt"]
    assert score["points"] == {
        "age": 1,
        "female": 1,
        "loop_diuretic": 1,
        "hypokalaemia": 2,
        "qtc": 2,
        "acute_mi": 2,
        "qt_drug_one": 3,
        "qt_drugs_two": 3,
        "sepsis": 3,
        "heart_failure": 3,
    }
    assert score["score"] == 21 and score["level"] == "high" and score["missing_inputs"] == []
    assert {d["name"] for d in score["drugs"]} == {"amiodarone", "escitalopram"}
    [alert] = result.alerts
    assert alert.type == "qt" and alert.severity == "high"
    assert {s.name for s in alert.substances} == {"amiodarone", "escitalopram", "furosemide"}


def test_tisdale_thresholds_are_not_met_just_below(kb, qt):
    ctx = ctx_of(kb, ["amiodarone"], age=67, sex="M", labs=Labs(potassium_mmol_l=3.6, qtc_ms=449))
    score = qt.run(ctx).scores["qt"]
    assert score["points"]["age"] == score["points"]["female"] == 0
    assert score["points"]["hypokalaemia"] == score["points"]["qtc"] == 0
    assert score["points"]["qt_drug_one"] == 3 and score["points"]["qt_drugs_two"] == 0
    assert score["score"] == 3 and score["level"] == "low"


def test_tisdale_low_risk_does_not_alert(kb, qt):
    ctx = ctx_of(kb, ["citalopram"], age=60, sex="M", labs=Labs(potassium_mmol_l=4.2, qtc_ms=420))
    result = qt.run(ctx)
    assert result.scores["qt"]["level"] == "low"
    assert result.alerts == ()


def test_tisdale_without_a_qt_drug_scores_but_does_not_alert(kb, qt):
    labs = Labs(potassium_mmol_l=3.0, qtc_ms=470)
    ctx = ctx_of(kb, ["furosemide"], age=84, sex="F", labs=labs, conditions=("I50",))
    result = qt.run(ctx)
    assert result.scores["qt"]["score"] == 10 and result.scores["qt"]["level"] == "moderate"
    assert result.alerts == ()


def test_tisdale_lists_factors_it_could_not_assess(kb, qt):
    result = qt.run(ctx_of(kb, ["amiodarone"]))
    score = result.scores["qt"]
    assert set(result.missing_inputs) == {"age", "sex", "labs.potassium_mmol_l", "labs.qtc_ms"}
    assert score["score"] == 3 and score["max_possible"] == 9
    assert score["points"]["age"] is None


def test_intravenous_erythromycin_only_is_a_qt_drug(kb, qt):
    def drugs(route: str) -> Any:
        return qt.run(ctx_of(kb, [("erythromycine", {"route": route})], age=70, sex="M")).scores["qt"]

    assert drugs("orale")["drugs"] == []
    assert [d["name"] for d in drugs("injectable")["drugs"]] == ["erythromycine"]
    unknown = qt.run(ctx_of(kb, [("erythromycine", {})], age=70, sex="M"))
    assert "line 0 (erythromycine): route" in unknown.missing_inputs
    assert unknown.scores["qt"]["possible_drugs"] == [{"name": "erythromycine", "line": 0}]


def test_qt_drugs_come_from_the_ansm_classes(kb, qt):
    score = qt.run(ctx_of(kb, ["haloperidol", "hydroxyzine", "sertraline"], age=70, sex="M")).scores["qt"]
    vias = {d["name"]: d["via"] for d in score["drugs"]}
    assert set(vias) == {"haloperidol", "hydroxyzine"}  # sertraline is in no torsadogenic class
    assert score["points"]["qt_drugs_two"] == 3


# -- renal ---------------------------------------------------------------------------------------------


def test_cockcroft_gault_in_micromoles(renal):
    formula = renal.table.formula
    assert cockcroft_gault(84, 52, "F", 110, formula) == pytest.approx(56 * 52 * 1.04 / 110)
    assert cockcroft_gault(84, 52, "F", 110, formula) == pytest.approx(27.53, abs=0.01)
    assert cockcroft_gault(70, 70, "M", 80, formula) == pytest.approx(75.34, abs=0.01)


def test_dabigatran_contraindicated_below_30_with_the_value_in_why(kb, renal):
    result = renal.run(
        ctx_of(kb, ["dabigatran etexilate"], age=84, sex="F", weight_kg=52, creatinine_umol_l=110)
    )
    [alert] = result.alerts
    assert alert.type == "renal" and alert.severity == "high" and alert.rule_id == "renal:dabigatran:lt30"
    assert "27.5 mL/min" in alert.why and "Cockcroft-Gault" in alert.why
    assert result.scores["renal"]["crcl_cockcroft_gault"] == 27.5


def test_dabigatran_not_flagged_above_threshold(kb, renal):
    ctx = ctx_of(kb, ["dabigatran etexilate"], age=70, sex="M", weight_kg=70, creatinine_umol_l=80)
    result = renal.run(ctx)
    assert result.alerts == () and result.missing_inputs == ()


def test_metformin_reads_egfr_and_the_dose_band(kb, renal):
    ci = renal.run(ctx_of(kb, [("metformine", {"mg_per_day": 1000})], egfr_ml_min=25))
    assert [a.rule_id for a in ci.alerts] == ["renal:metformine:lt30"]
    assert "eGFR 25 mL/min (given)" in ci.alerts[0].why
    over = renal.run(ctx_of(kb, [("metformine", {"mg_per_day": 1700})], egfr_ml_min=40))
    assert [a.rule_id for a in over.alerts] == ["renal:metformine:30-44"]
    # Doses are metformin base: one 850 mg hydrochloride tablet a day is 662.9 mg (BDPM FT row).
    within = renal.run(ctx_of(kb, [("metformine", {"mg_per_day": 662.9})], egfr_ml_min=40))
    assert within.alerts == ()
    assert within.scores["renal"]["within_dose_limits"] == ["renal:metformine:30-44"]


def test_metformin_falls_back_to_cockcroft_gault_and_says_so(kb, renal):
    patient: dict[str, Any] = {"age": 84, "sex": "F", "weight_kg": 52, "creatinine_umol_l": 110}
    result = renal.run(ctx_of(kb, [("metformine", {"mg_per_day": 500})], **patient))
    [alert] = result.alerts
    assert "the source states this threshold on eGFR" in alert.why


def test_unknown_dose_in_a_dose_band_is_flagged_as_unresolved(kb, renal):
    result = renal.run(ctx_of(kb, ["pregabaline"], egfr_ml_min=20))
    [alert] = result.alerts
    assert alert.rule_id == "renal:pregabaline:15-29" and alert.unresolved_conditions == ("mg_per_day",)
    assert "line 0 (pregabaline): mg_per_day" in result.missing_inputs


def test_renal_inputs_reported_missing_only_when_a_drug_needs_them(kb, renal):
    needed = renal.run(ctx_of(kb, ["apixaban"], age=80))
    assert needed.alerts == ()
    [missing] = needed.missing_inputs
    assert "egfr_ml_min" in missing and "weight_kg" in missing and "creatinine_umol_l" in missing
    assert renal.run(ctx_of(kb, ["amlodipine"])).missing_inputs == ()


def test_every_renal_rule_cites_its_source(renal):
    for rule in renal.table.rules:
        assert rule.source.strip() and rule.edition.strip(), rule.id


def test_renal_rule_naming_an_unknown_substance_is_refused(kb, renal):
    rule = renal.table.rules[0].model_copy(update={"substances": ("metformineXX",)})
    table = renal.table.model_copy(update={"rules": (rule,)})
    with pytest.raises(KnowledgeBaseCorrupt):
        RenalCheck(kb, table)


# -- vaccines ------------------------------------------------------------------------------------------


def vrun(
    vaccines: VaccineCheck,
    age: int | None,
    *doses: tuple[str, str],
    date: dt.date | None = DAY,
    conditions: tuple[str, ...] = (),
) -> CheckResult:
    given = tuple(Vaccination.model_validate({"vaccine": v, "date": d}) for v, d in doses)
    patient = Patient(age=age, conditions=conditions, vaccinations=given)
    return vaccines.run(CheckContext((), patient, date))


def ventry(result: CheckResult, rule: str) -> dict[str, Any]:
    rules: dict[str, dict[str, Any]] = result.scores["vaccines"]["rules"]  # type: ignore[index]
    return rules[f"fr_vaccines_older_adults:{rule}"]


def vstatus(result: CheckResult, rule: str) -> str:
    return str(ventry(result, rule)["status"])


def test_vaccine_rules_load_from_the_transcribed_csv(vaccine_rules):
    assert {r.rule_id.split(":")[1] for r in vaccine_rules} == {
        "DTP_BOOST",
        "FLU_ANNUAL",
        "COVID_AUTUMN",
        "COVID_SPRING",
        "PNEUMO_PCV20",
        "ZONA_RZV",
        "VRS_OLDER",
    }
    assert all(r.source and r.valid_from for r in vaccine_rules)


def test_vaccine_loader_refuses_a_changed_transcription(tmp_path):
    text = RULES_CSV.read_text(encoding="utf-8").replace("≥6 mois après", "≥4 mois après")
    (tmp_path / RULES_CSV.name).write_text(text, encoding="utf-8")
    shutil.copy(RULES_CSV.parent / "sources.csv", tmp_path / "sources.csv")
    with pytest.raises(SourceError, match="COVID_AUTUMN"):
        load_vaccine_rules(tmp_path / RULES_CSV.name)


def test_flu_given_this_campaign_is_not_recommended_again(vaccines):
    given = vrun(vaccines, 84, ("grippe", "2025-10-20"))
    assert vstatus(given, "FLU_ANNUAL") == "up_to_date"
    assert "grippe" not in {a.vaccine for a in given.alerts}
    [flu] = [a for a in vrun(vaccines, 84).alerts if a.vaccine == "grippe"]
    assert flu.type == "vaccine" and flu.severity == "low"
    assert flu.rule_id == "fr_vaccines_older_adults:FLU_ANNUAL"


def test_campaign_vaccines_only_inside_their_window(vaccines):
    spring = vrun(vaccines, 84, date=dt.date(2025, 5, 1))
    assert vstatus(spring, "FLU_ANNUAL") == "outside_campaign"
    assert vstatus(spring, "COVID_SPRING") == "due"
    assert "2025-10-14" in ventry(spring, "FLU_ANNUAL")["why"]
    summer = vrun(vaccines, 84, date=dt.date(2025, 7, 1))
    assert not {a.vaccine for a in summer.alerts} & {"grippe", "covid-19"}


def test_covid_interval_is_shorter_from_80(vaccines):
    assert vstatus(vrun(vaccines, 84, ("covid-19", "2025-07-01")), "COVID_AUTUMN") == "due"  # 3 months
    younger = ventry(vrun(vaccines, 70, ("covid-19", "2025-07-01")), "COVID_AUTUMN")
    assert younger["status"] == "up_to_date" and younger["next_due"] == "2026-01-01"  # 6 months


def test_zoster_second_dose_two_months_after_the_first(vaccines):
    early = ventry(vrun(vaccines, 70, ("zona", "2025-10-01")), "ZONA_RZV")
    assert early["status"] == "not_yet" and early["next_due"] == "2025-12-01"
    assert (
        vstatus(vrun(vaccines, 70, ("zona", "2025-01-10"), ("zona", "2025-03-15")), "ZONA_RZV")
        == "up_to_date"
    )
    assert "caveat" not in early
    assert "Zostavax" in ventry(vrun(vaccines, 70, ("zona", "2023-05-01")), "ZONA_RZV")["caveat"]


def test_dtp_booster_every_ten_years_from_65(vaccines):
    assert vstatus(vrun(vaccines, 72, ("dtp", "2020-03-01")), "DTP_BOOST") == "up_to_date"
    assert vstatus(vrun(vaccines, 72, ("dtp", "2012-03-01")), "DTP_BOOST") == "due"


def test_rsv_population_by_age_or_mapped_condition(vaccines):
    assert vstatus(vrun(vaccines, 76), "VRS_OLDER") == "due"
    assert vstatus(vrun(vaccines, 70, conditions=("J449",)), "VRS_OLDER") == "due"
    plain = ventry(vrun(vaccines, 70), "VRS_OLDER")
    assert plain["status"] == "not_applicable" and plain["unmapped"]
    assert "vrs" not in {a.vaccine for a in vrun(vaccines, 80, ("vrs", "2024-10-01")).alerts}


def test_prior_pneumococcal_dose_leaves_pcv20_undecided(vaccines):
    given = vrun(vaccines, 70, ("pneumocoque", "2019-01-01"))
    assert vstatus(given, "PNEUMO_PCV20") == "undecided"
    assert "pneumocoque" not in {a.vaccine for a in given.alerts}


def test_vaccines_without_date_or_age_recommend_nothing(vaccines):
    no_date = vrun(vaccines, 84, date=None)
    assert no_date.alerts == () and no_date.missing_inputs == ("date",)
    no_age = vrun(vaccines, None)
    assert no_age.alerts == () and no_age.missing_inputs == ("age",)


def test_add_months_clamps_to_the_end_of_month():
    assert add_months(dt.date(2025, 8, 31), 6) == dt.date(2026, 2, 28)
    assert add_months(dt.date(2025, 11, 15), 3) == dt.date(2026, 2, 15)


# -- eligibility ---------------------------------------------------------------------------------------

TEN = [
    "amlodipine",
    "metformine",
    "atorvastatine",
    "paracetamol",
    "omeprazole",
    "furosemide",
    "ramipril",
    "bisoprolol",
    "sertraline",
    "lisinopril",
]


def test_town_door_needs_75_years_and_ten_lines(kb, eligibility):
    assert eligibility.run(ctx_of(kb, TEN, age=80)).eligibility["iatroprev"] is True
    assert eligibility.run(ctx_of(kb, TEN[:9], age=80)).eligibility["iatroprev"] is False
    assert eligibility.run(ctx_of(kb, TEN, age=74)).eligibility["iatroprev"] is False
    # An unresolved line is still a drug line.
    assert eligibility.run(ctx_of(kb, TEN[:9], age=80, unresolved=(9,))).eligibility["optimedoc"] is True


def test_town_door_without_age_is_undecided(kb, eligibility):
    result = eligibility.run(ctx_of(kb, TEN))
    assert result.eligibility["iatroprev"] is None
    assert "age" in result.missing_inputs


def test_hospital_door_criteria(kb, eligibility):
    def door(drugs: list[str], **hospital: Any) -> Any:
        return eligibility.run(ctx_of(kb, drugs, age=80, hospital=HospitalContext(**hospital))).eligibility

    assert door(["amlodipine"], iatrogenic_admission=True, treatment_changes=0)["iatroprev"] is True
    nti = door(["fluindione"], iatrogenic_admission=False, treatment_changes=0)
    assert nti["iatroprev"] is True and nti["nti_drugs"][0]["entry"] == "nti:antivitamines-k"
    assert door(["amlodipine"], iatrogenic_admission=False, treatment_changes=4)["iatroprev"] is True
    assert door(["amlodipine"], iatrogenic_admission=False, treatment_changes=3)["iatroprev"] is False
    undecided = eligibility.run(
        ctx_of(kb, ["amlodipine"], age=80, hospital=HospitalContext(iatrogenic_admission=False))
    )
    assert undecided.eligibility["iatroprev"] is None
    assert "hospital.treatment_changes" in undecided.missing_inputs


def test_no_hospital_context_means_town_door_only(kb, eligibility):
    result = eligibility.run(ctx_of(kb, ["fluindione"], age=80))
    assert result.eligibility["iatroprev"] is False
    assert "hospital door not assessed" in " ".join(result.eligibility["reasons"]["iatroprev"])
    assert result.missing_inputs == ()


def test_topical_ciclosporin_is_not_a_narrow_therapeutic_index_drug(kb, eligibility):
    eye = eligibility.nti_drugs(ctx_of(kb, [("ciclosporine", {"route": "ophtalmique"})]))
    assert eye == ([], [])
    oral = eligibility.nti_drugs(ctx_of(kb, [("ciclosporine", {"route": "orale"})]))
    assert [d["entry"] for d in oral[0]] == ["nti:ciclosporine"]
    unknown = eligibility.nti_drugs(ctx_of(kb, ["ciclosporine"]))
    assert unknown[0] == [] and [e.name for e in unknown[1]] == ["ciclosporine"]


def test_every_nti_entry_is_cited(eligibility):
    for entry in eligibility.table.entries:
        assert entry.sources and all(eligibility.table.sources[s].citation for s in entry.sources)


LONG = {"duration_days": 180}


def test_bilan_partage_current_rule(kb, eligibility):
    five = [(name, LONG) for name in TEN[:5]]
    assert eligibility.run(ctx_of(kb, five, age=70)).eligibility["bilan_partage_medication"] is True
    assert eligibility.run(ctx_of(kb, five[:4], age=70)).eligibility["bilan_partage_medication"] is False
    assert eligibility.run(ctx_of(kb, five, age=60)).eligibility["bilan_partage_medication"] is False


def test_bilan_partage_without_durations_asks_for_them(kb, eligibility):
    # Issue 5 golden report 34: lines without duration are not assumed to be taken >= 6 months.
    result = eligibility.run(ctx_of(kb, TEN[:5], age=70))
    assert result.eligibility["bilan_partage_medication"] is None
    assert any("duration_days" in m for m in result.missing_inputs)


def test_bilan_partage_short_durations_leave_it_undecided(kb, eligibility):
    drugs = [(name, {"duration_days": 90}) for name in TEN[:5]]
    result = eligibility.run(ctx_of(kb, drugs, age=70))
    assert result.eligibility["bilan_partage_medication"] is None
    assert any("long-term treatments" in m for m in result.missing_inputs)
    long = [(name, {"duration_days": 180}) for name in TEN[:5]]
    assert eligibility.run(ctx_of(kb, long, age=70)).eligibility["bilan_partage_medication"] is True


def bpm(check: EligibilityCheck, kb: KnowledgeBase, drugs: Sequence[Drug], **patient: Any) -> bool | None:
    value = check.run(ctx_of(kb, drugs, **patient)).eligibility["bilan_partage_medication"]
    assert value is None or isinstance(value, bool)
    return value


def test_bilan_partage_other_editions(kb):
    table = load_nti_table(CURATED_DIR / "narrow_therapeutic_index.yaml")
    avenant = EligibilityCheck(kb, table, bpm_edition="avenant-12-2018")
    five = [(name, LONG) for name in TEN[:5]]
    assert bpm(avenant, kb, five, age=70, long_term_condition=True) is True
    assert bpm(avenant, kb, five, age=70, long_term_condition=False) is False
    assert bpm(avenant, kb, five, age=76) is True
    undecided = avenant.run(ctx_of(kb, five, age=70))
    assert undecided.eligibility["bilan_partage_medication"] is None
    assert "long_term_condition" in undecided.missing_inputs
    brief = EligibilityCheck(kb, table, bpm_edition="brief-2018-reading")
    assert bpm(brief, kb, ["amlodipine"], age=70, long_term_condition=True) is True
    assert bpm(brief, kb, ["amlodipine"], age=80, long_term_condition=False) is False
    with pytest.raises(ValueError):
        EligibilityCheck(kb, table, bpm_edition="unknown")


def test_curated_tables_are_parseable_yaml():
    for name in ("qt_tisdale.yaml", "renal_thresholds.yaml", "narrow_therapeutic_index.yaml"):
        assert isinstance(yaml.safe_load(Path(CURATED_DIR / name).read_text(encoding="utf-8")), dict)
