"""Issue 4: ANSM interactions detected through classes, qualified for the patient, one alert per pair."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iatro.analysis import parse_prescription
from iatro.checks.context import CheckContext
from iatro.model.prescription import Patient
from iatro.text import fold_words
from knowledge_base.builder.files import CURATED_DIR


def _analyze(engine, lines, **patient):
    document = {"patient": patient, "lines": [{"text": t} if isinstance(t, str) else t for t in lines]}
    # The ANSM check alone: CYP alerts on the same pairs are tested with the CYP model.
    return engine.analyze(parse_prescription(json.dumps(document)), checks=frozenset({"interactions"}))


def _pairs(report):
    return {
        (a.severity, tuple(s.name for s in a.substances)) for a in report.alerts if a.type == "interaction"
    }


def test_class_rule_contre_indication(engine):
    report = _analyze(
        engine, ["SIMVASTATINE 20 mg cp 1 le soir", "clarithromycine 500 mg 1 cp matin et soir"]
    )
    [alert] = [
        a for a in report.alerts if {s.name for s in a.substances} == {"simvastatine", "clarithromycine"}
    ]
    assert alert.severity == "contre-indication"
    assert alert.rule_id == "ansm:inhibiteurs puissants du cyp3a4+simvastatine"
    assert "inhibiteurs puissants du CYP3A4" in alert.via
    assert alert.source == "ANSM thésaurus des interactions médicamenteuses, 2020-10"
    assert alert.lines == (0, 1)


def test_torsadogens_escitalopram_is_contre_indication(engine):
    report = _analyze(engine, ["CORDARONE 200 mg 1 cp/j", "SEROPLEX 10 mg 1 cp/j"])
    assert ("contre-indication", ("amiodarone", "escitalopram")) in _pairs(report)


def test_sodium_oxybate_with_an_opioid_is_contre_indication(engine):
    # Guarded: BDPM spells this moiety two ways; both must meet the curated case.
    report = _analyze(engine, ["XYREM 500 mg/ml", "OXYCONTIN LP 10 mg 1 cp matin et soir"])
    assert {a.severity for a in report.alerts} == {"contre-indication"}


def test_two_sedatives_without_oxybate_are_only_to_be_taken_into_account(engine):
    report = _analyze(engine, ["OXYCONTIN LP 10 mg 1 cp matin et soir", "SERESTA 10 mg 1 cp le soir"])
    levels = {
        a.severity for a in report.alerts if {"oxycodone", "oxazepam"} == {s.name for s in a.substances}
    }
    assert levels == {"a-prendre-en-compte"}


@pytest.mark.parametrize(
    ("aspirin", "conditions", "level", "unresolved"),
    [
        ("KARDEGIC 75 mg 1 sachet/j", None, "association-deconseillee", True),  # history unknown: worst
        ("KARDEGIC 75 mg 1 sachet/j", ["I10"], "a-prendre-en-compte", False),
        ("KARDEGIC 75 mg 1 sachet/j", ["K25"], "association-deconseillee", False),
        ("ASPIRINE UPSA 1000 mg 1 cp 3 fois par jour", ["I10"], "contre-indication", False),
    ],
)
def test_aspirin_with_an_anticoagulant_depends_on_dose_and_history(
    engine, aspirin, conditions, level, unresolved
):
    patient = {"conditions": conditions} if conditions is not None else {}
    report = _analyze(engine, [aspirin, "PREVISCAN 20 mg 1 cp le soir"], **patient)
    [alert] = report.alerts
    assert alert.severity == level
    assert bool(alert.unresolved_conditions) is unresolved


def test_two_aminosides_are_contre_indicated(engine):
    # AMINOSIDES + AUTRES AMINOSIDES is CI - APEC in the PDF (simultaneous / successive
    # administrations); the JSON had lost the CI (curated/ansm_errata.yaml). Nothing in a
    # prescription says "successive", so the worst level stands.
    report = _analyze(engine, [{"substance": "gentamicine"}, {"substance": "tobramycine"}])
    [alert] = report.alerts
    assert (alert.severity, alert.rule_id) == ("contre-indication", "ansm:aminosides+autres aminosides")


@pytest.mark.parametrize(
    ("antispasmodic", "patient", "level", "unresolved"),
    [
        ("oxybutynine", {}, "a-prendre-en-compte", False),  # was a false CI before the errata
        ("toltérodine", {}, "association-deconseillee", False),
        ("darifénacine", {"egfr_ml_min": 90, "conditions": ["I10"]}, "contre-indication", False),
        ("solifénacine", {}, "contre-indication", True),  # renal and hepatic function unknown
        ("solifénacine", {"egfr_ml_min": 75, "conditions": ["I10"]}, "precaution-emploi", False),
        ("solifénacine", {"egfr_ml_min": 45, "conditions": ["I10"]}, "contre-indication", False),
        ("fésotérodine", {"egfr_ml_min": 75, "conditions": ["K746"]}, "contre-indication", False),
    ],
)
def test_urinary_antispasmodics_with_a_strong_cyp3a4_inhibitor(
    engine, antispasmodic, patient, level, unresolved
):
    report = _analyze(engine, [{"substance": antispasmodic}, {"substance": "clarithromycine"}], **patient)
    [alert] = [a for a in report.alerts if a.rule_id.startswith("ansm:antispasmodiques urinaires")]
    assert alert.severity == level
    assert bool(alert.unresolved_conditions) is unresolved


def test_diltiazem_route_decides(engine):
    # AMIODARONE + DILTIAZEM: « Association DECONSEILLEE avec le diltiazem IV », « Précaution
    # d'emploi avec le diltiazem per os »; amiodarone (class III) and diltiazem are not of the same
    # antiarrhythmic class, so the class rule stays at « à prendre en compte ».
    oral = _analyze(engine, ["CORDARONE 200 mg 1 cp/j", "diltiazem 60 mg 1 cp 3 fois par jour"])
    assert {a.severity for a in oral.alerts} == {"precaution-emploi"}
    iv = _analyze(engine, ["CORDARONE 200 mg 1 cp/j", {"substance": "diltiazem", "route": "IV"}])
    assert {a.severity for a in iv.alerts} == {"association-deconseillee"}
    unknown = _analyze(engine, ["CORDARONE 200 mg 1 cp/j", {"substance": "diltiazem"}])
    [alert] = unknown.alerts
    assert alert.severity == "association-deconseillee" and alert.unresolved_conditions


def test_same_substance_twice_is_not_an_interaction(engine):
    report = _analyze(engine, ["DOLIPRANE 1000 mg 1 cp/j", "DAFALGAN 500 mg 1 gél/j"])
    assert [a for a in report.alerts if a.type == "interaction"] == []


def test_unresolved_line_stays_and_marks_report_incomplete(engine):
    report = _analyze(engine, ["SIMVASTATINE 20 mg", "MIRACLOR 5 mg"])
    assert report.complete is False and report.lines[1].status == "unresolved"


def test_every_curated_substance_name_is_a_kb_substance(kb):
    """A curated name the KB does not know can never match: it would silently lose a level."""
    data = yaml.safe_load((CURATED_DIR / "ansm_qualifications.yaml").read_text(encoding="utf-8"))
    # Matching folds names (the qualifier compares fold_words of the substance and its ANSM aliases).
    known = {fold_words(n) for n in kb.ansm_index} | {fold_words(s.name) for s in kb.substances}
    missing = set()
    for entry in data["qualifications"]:
        for case in entry.get("cases", []):
            for field in ("substances_a", "substances_b", "not_substances_a", "not_substances_b"):
                for name in case.get(field) or ():
                    if fold_words(name) not in known:
                        missing.add(name)
    assert not missing, sorted(missing)


# -- properties ----------------------------------------------------------------------------------
POOL = [
    "SIMVASTATINE 20 mg",
    "clarithromycine 500 mg",
    "SEROPLEX 10 mg",
    "CORDARONE 200 mg",
    "KARDEGIC 75 mg",
    "ibuprofene 400 mg",
    "PREVISCAN 20 mg",
    "HALDOL 5 mg",
    "diltiazem 60 mg",
    "CAPTOPRIL 25 mg",
    "DIFFU K 600 mg",
    "spironolactone 25 mg",
    "OXYCONTIN LP 10 mg",
    "SERESTA 10 mg",
    "LAROXYL 25 mg",
    "furosemide 40 mg",
    "ELIQUIS 5 mg",
    "fluconazole 100 mg",
    "LEVOTHYROX 75 microgrammes",
    "METFORMINE 850 mg",
]


@pytest.fixture(scope="module")
def pool_exposures(engine):
    report = _analyze(engine, [f"{t} 1 cp/j" for t in POOL], age=84, conditions=["I10"])
    assert all(line.status == "resolved" for line in report.lines)
    return engine.context(
        parse_prescription(json.dumps({"lines": [{"text": t} for t in POOL]})), report.lines
    )


def _check(engine, exposures):
    ctx = CheckContext(exposures=tuple(exposures), patient=Patient(age=84, conditions=("I10",)))
    return {
        (a.severity, tuple(s.name for s in a.substances), a.rule_id) for a in engine.interactions.check(ctx)
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_order_independent_and_symmetric(engine, pool_exposures, data):
    chosen = data.draw(
        st.lists(st.sampled_from(pool_exposures.exposures), min_size=2, max_size=12, unique=True)
    )
    shuffled = data.draw(st.permutations(chosen))
    assert _check(engine, chosen) == _check(engine, shuffled)
    assert _check(engine, list(reversed(chosen))) == _check(engine, chosen)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_adding_a_drug_never_removes_an_alert_between_the_others(engine, pool_exposures, data):
    chosen = data.draw(
        st.lists(st.sampled_from(pool_exposures.exposures), min_size=2, max_size=10, unique=True)
    )
    extra = data.draw(st.sampled_from(pool_exposures.exposures))
    assert _check(engine, chosen) <= _check(engine, [*chosen, extra])


def test_deterministic(engine):
    lines = [f"{t} 1 cp/j" for t in POOL]
    first = _analyze(engine, lines).model_dump_json()
    assert all(_analyze(engine, lines).model_dump_json() == first for _ in range(3))
