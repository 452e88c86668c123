"""STOPP/START v2 from the real XML, the criteria format and its evaluator.

Contexts are built by hand (CheckContext/Exposure) so that each test states the prescription it
judges; ATC codes are WHO level-5 codes of the substances named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from iatro.checks.context import CheckContext, Exposure
from iatro.checks.explicit_criteria import (
    CriterionHit,
    EvaluationResult,
    evaluate,
    evaluate_all,
    merge_hits,
)
from iatro.kb.criteria import (
    CriteriaFormatError,
    CriteriaList,
    load_criteria_dir,
    load_criteria_yaml,
    parse_criteria,
)
from iatro.model.prescription import Labs, Patient
from knowledge_base.builder.stoppstart import EDITION, load_stoppstart

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "knowledge_base" / "sources"
CRITERIA_DIR = ROOT / "knowledge_base" / "curated" / "criteria"

# What the ICD-10 + ATC + LOINC reading cannot evaluate, and why (see the builder's docstring).
NOT_COMPUTABLE = {
    "START A4": "blood pressure",
    "START B2": "FEV1",
    "START I1": "vaccin",
    "START I2": "vaccin",
    "STOPP C8": "onset",
    "STOPP C9": "onset",
    "STOPP G2": "COPD",
    "STOPP G5": "pO2",
}


@pytest.fixture(scope="module")
def stopp() -> CriteriaList:
    return load_stoppstart(SOURCES)


@pytest.fixture(scope="module")
def example() -> CriteriaList:
    return load_criteria_yaml(CRITERIA_DIR / "example_list.yaml")


_next_id = iter(range(1, 10_000))


def drug(
    line: int,
    name: str,
    atc: str,
    *,
    substance_id: int | None = None,
    route: str | None = None,
    mg_per_day: float | None = None,
    duration_days: int | None = None,
    as_needed: bool = False,
) -> Exposure:
    return Exposure(
        line=line,
        substance_id=next(_next_id) if substance_id is None else substance_id,
        name=name,
        atc=(atc,) if atc else (),
        route=route,
        mg_per_day=mg_per_day,
        duration_days=duration_days,
        as_needed=as_needed,
    )


def ctx(*exposures: Exposure, unresolved: tuple[int, ...] = (), **patient: Any) -> CheckContext:
    return CheckContext(exposures=exposures, patient=Patient(**patient), unresolved_lines=unresolved)


def ids(hits: tuple[CriterionHit, ...]) -> set[str]:
    return {h.criterion_id for h in hits}


def hit(result: EvaluationResult, criterion_id: str) -> CriterionHit:
    found = [h for h in result.hits if h.criterion_id == criterion_id]
    assert found, f"{criterion_id} did not fire; hits: {sorted(ids(result.hits))}"
    return found[0]


def unassessed(result: EvaluationResult, criterion_id: str) -> CriterionHit:
    found = [h for h in result.not_assessed if h.criterion_id == criterion_id]
    assert found, f"{criterion_id} not in not_assessed: {sorted(ids(result.not_assessed))}"
    return found[0]


# ---------------------------------------------------------------------------------------------------
# The converted list


def test_counts(stopp: CriteriaList) -> None:
    assert len(stopp.criteria) == 112
    assert sum(c.kind == "pim" for c in stopp.criteria) == 77
    assert sum(c.kind == "omission" for c in stopp.criteria) == 35
    assert all(c.criterion_id.startswith("STOPP") == (c.kind == "pim") for c in stopp.criteria)
    assert sum(c.computable for c in stopp.criteria) == 104
    assert sum(c.partially_computable for c in stopp.criteria) == 12
    assert sum(m.computable for c in stopp.criteria for m in c.any_of) == 160


def test_not_computable_criteria_say_why(stopp: CriteriaList) -> None:
    off = {c.criterion_id: c.not_computable_reason or "" for c in stopp.criteria if not c.computable}
    assert set(off) == set(NOT_COMPUTABLE)
    for criterion_id, word in NOT_COMPUTABLE.items():
        assert word in off[criterion_id], (criterion_id, off[criterion_id])
    for crit in stopp.criteria:
        for match in crit.any_of:
            assert match.computable or match.not_computable_reason


def test_metadata_and_determinism(stopp: CriteriaList) -> None:
    assert stopp.list_id == "stopp-start-v2"
    assert stopp.edition == EDITION
    assert "commit 8fdc1ac" in stopp.edition
    assert "stoppstart_v2/stoppstart.xml.xz" in stopp.source and "sha256" in stopp.source
    assert "LGPL" in stopp.licence
    # Same file, same list, whether given the sources root or the source's own directory.
    assert load_stoppstart(SOURCES / "stoppstart_v2").model_dump_json() == stopp.model_dump_json()


def test_only_icd10_codings_are_kept(stopp: CriteriaList) -> None:
    a1 = stopp.get("START A1")
    assert len(a1.any_of) == 1
    assert a1.any_of[0].conditions[0].cim10 == ("I482",)
    assert any("ICPC-1-NL" in n and "ICD-9" in n for n in a1.notes)


def test_errata_are_applied_and_noted(stopp: CriteriaList) -> None:
    assert "for ≥ 4 weeks" in stopp.get("STOPP D5").description
    a5 = stopp.get("START A5")
    assert a5.any_of[0].age_max == 85 and a5.any_of[0].age_min is None
    assert any("erratum" in n for n in a5.notes)
    # B1: "a medicine other than these inhalers" is read as "none of these inhalers".
    b1 = stopp.get("START B1").any_of[0]
    assert not b1.drugs
    assert any("R03AL" in s.atc for s in b1.absent_drugs)


def test_loinc_mapping(stopp: CriteriaList) -> None:
    def lab_fields(criterion_id: str) -> set[str | None]:
        return {lab.field for m in stopp.get(criterion_id).any_of for lab in m.labs}

    assert lab_fields("STOPP B11") == {"potassium_mmol_l"}
    assert lab_fields("STOPP E4") == {"egfr_ml_min"}
    assert lab_fields("STOPP B4") == {"heart_rate_bpm"}
    # 1996-8 stands for K+ and for Na+ in STOPP B8: resolved from the criterion text.
    assert lab_fields("STOPP B8") == {"potassium_mmol_l", "sodium_mmol_l", "calcium_mmol_l"}
    assert lab_fields("STOPP D4") == {"sodium_mmol_l"}
    assert lab_fields("STOPP G5") == {None}


# ---------------------------------------------------------------------------------------------------
# Spot checks: must fire / must not fire


def test_d5_benzodiazepine_four_weeks(stopp: CriteriaList) -> None:
    long = evaluate(stopp, ctx(drug(1, "oxazepam", "N05BA04", duration_days=60)))
    d5 = hit(long, "STOPP D5")
    assert d5.kind == "pim" and d5.lines == (1,) and d5.substances == ("oxazepam",)
    assert any("duration_days 60 > 28" in w for w in d5.why)
    assert d5.list_id == "stopp-start-v2" and d5.edition == EDITION and not d5.missing_inputs
    assert d5.severity == "moderate" and not d5.severity_from_source

    short = evaluate(stopp, ctx(drug(1, "oxazepam", "N05BA04", duration_days=10)))
    assert "STOPP D5" not in ids(short.hits) | ids(short.not_assessed)
    assert "STOPP K1" in ids(short.hits)  # any benzodiazepine (falls): no duration needed

    unknown = evaluate(stopp, ctx(drug(1, "oxazepam", "N05BA04")))
    assert "STOPP D5" not in ids(unknown.hits)
    assert unassessed(unknown, "STOPP D5").missing_inputs == ("line 1 (oxazepam): duration_days",)


def test_a1_anticoagulant_omission(stopp: CriteriaList) -> None:
    result = evaluate(stopp, ctx(drug(1, "bisoprolol", "C07AB07"), conditions=("I48",)))
    a1 = hit(result, "START A1")
    assert a1.kind == "omission" and a1.conditions == ("I48",) and a1.lines == ()
    assert a1.absent_drugs == ("B01AA", "B01AE", "B01AF")
    assert any("less specific" in w for w in a1.why)  # I48 given, the XML codes I48.2

    exact = hit(evaluate(stopp, ctx(conditions=("I48.2",))), "START A1")
    assert not any("less specific" in w for w in exact.why)

    treated = evaluate(stopp, ctx(drug(1, "apixaban", "B01AF02"), conditions=("I48",)))
    assert "START A1" not in ids(treated.hits) | ids(treated.not_assessed)

    # An unidentified line could be the anticoagulant: not a finding, but said.
    blind = evaluate(stopp, ctx(unresolved=(2,), conditions=("I48",)))
    assert "START A1" not in ids(blind.hits)
    assert "unresolved line(s) 2" in unassessed(blind, "START A1").missing_inputs[0]


def test_lab_criterion_and_missing_inputs(stopp: CriteriaList) -> None:
    ramipril = drug(1, "ramipril", "C09AA05")
    high = hit(evaluate(stopp, ctx(ramipril, labs=Labs(potassium_mmol_l=5.5))), "STOPP B11")
    assert "potassium_mmol_l 5.5 > 4.9" in high.why and high.lines == (1,)

    normal = evaluate(stopp, ctx(ramipril, labs=Labs(potassium_mmol_l=4.2)))
    assert "STOPP B11" not in ids(normal.hits) | ids(normal.not_assessed)

    missing = evaluate(stopp, ctx(ramipril))
    assert unassessed(missing, "STOPP B11").missing_inputs == ("potassium_mmol_l",)

    ibuprofen = drug(1, "ibuprofene", "M01AE01")
    assert "STOPP E4" in ids(evaluate(stopp, ctx(ibuprofen, egfr_ml_min=40)).hits)
    assert "STOPP E4" not in ids(evaluate(stopp, ctx(ibuprofen, egfr_ml_min=70)).not_assessed)
    assert unassessed(evaluate(stopp, ctx(ibuprofen)), "STOPP E4").missing_inputs == ("egfr_ml_min",)
    # The coded CKD stage is another alternative: it fires without the eGFR, and a hit lists nothing missing.
    ckd = hit(evaluate(stopp, ctx(ibuprofen, conditions=("N18.3",))), "STOPP E4")
    assert ckd.conditions == ("N183",) and ckd.missing_inputs == ()


def test_negative_conditions(stopp: CriteriaList) -> None:
    aspirin = drug(1, "acide acetylsalicylique", "B01AC06", mg_per_day=75)
    # STOPP C2: aspirin with a history of peptic ulcer (K25 covers K25.0) without a PPI.
    ulcer = evaluate(stopp, ctx(aspirin, conditions=("K250",)))
    assert hit(ulcer, "STOPP C2").conditions == ("K250",)
    protected = evaluate(stopp, ctx(aspirin, drug(2, "omeprazole", "A02BC01"), conditions=("K250",)))
    assert "STOPP C2" not in ids(protected.hits)

    # STOPP D10: neuroleptic as hypnotic (insomnia F51.0), unless psychosis or dementia.
    haloperidol = drug(1, "haloperidol", "N05AD01")
    assert "STOPP D10" in ids(evaluate(stopp, ctx(haloperidol, conditions=("F510",))).hits)
    assert "STOPP D10" not in ids(evaluate(stopp, ctx(haloperidol, conditions=("F510", "F20"))).hits)
    # ATC exclusion inside a selector: STOPP K2 takes N05A except N05AN (lithium).
    assert "STOPP K2" not in ids(evaluate(stopp, ctx(drug(1, "lithium", "N05AN01"))).hits)

    # START B1 (erratum): COPD on a LABA/LAMA combination is not an omission.
    copd = evaluate(stopp, ctx(drug(1, "indacaterol glycopyrronium", "R03AL04"), conditions=("J44",)))
    assert "START B1" not in ids(copd.hits)
    assert "START B1" in ids(evaluate(stopp, ctx(conditions=("J44",))).hits)


def test_excluded_condition_with_onset(stopp: CriteriaList) -> None:
    pair = (drug(1, "acide acetylsalicylique", "B01AC06"), drug(2, "clopidogrel", "B01AC04"))
    c4 = hit(evaluate(stopp, ctx(*pair)), "STOPP C4")
    assert c4.lines == (2,)  # the action of the rule stops clopidogrel
    stent = evaluate(stopp, ctx(*pair, conditions=("Z955",)))
    assert "STOPP C4" not in ids(stent.hits)
    assert "onset date of Z955" in unassessed(stent, "STOPP C4").missing_inputs[0]


def test_two_drugs_need_two_substances(stopp: CriteriaList) -> None:
    one = evaluate(stopp, ctx(drug(1, "ibuprofene", "M01AE01")))
    assert "STOPP A3" not in ids(one.hits)
    same = evaluate(
        stopp,
        ctx(
            drug(1, "ibuprofene", "M01AE01", substance_id=7), drug(2, "ibuprofene", "M01AE01", substance_id=7)
        ),
    )
    assert "STOPP A3" not in ids(same.hits)
    two = evaluate(stopp, ctx(drug(1, "ibuprofene", "M01AE01"), drug(2, "ketoprofene", "M01AE03")))
    assert hit(two, "STOPP A3").lines == (1, 2)

    b3 = hit(
        evaluate(stopp, ctx(drug(1, "bisoprolol", "C07AB07"), drug(2, "verapamil", "C08DA01"))), "STOPP B3"
    )
    assert b3.lines == (1,) and b3.substances == ("bisoprolol",)
    assert [(d.line, d.target) for d in b3.drugs] == [(1, True), (2, False)]


def test_dose_age_and_sex(stopp: CriteriaList) -> None:
    assert "STOPP C1" in ids(evaluate(stopp, ctx(drug(1, "aspirine", "B01AC06", mg_per_day=300))).hits)
    assert "STOPP C1" not in ids(evaluate(stopp, ctx(drug(1, "aspirine", "B01AC06", mg_per_day=75))).hits)
    assert "STOPP C1" in ids(evaluate(stopp, ctx(drug(1, "aspirine", "B01AC06"))).not_assessed)

    # START A5 (erratum): statin omission in vascular disease unless older than 85.
    assert "START A5" in ids(evaluate(stopp, ctx(age=80, conditions=("I25",))).hits)
    assert "START A5" not in ids(evaluate(stopp, ctx(age=90, conditions=("I25",))).hits)
    assert unassessed(evaluate(stopp, ctx(conditions=("I25",))), "START A5").missing_inputs == ("age",)

    assert "START G1" in ids(evaluate(stopp, ctx(sex="M", conditions=("N40",))).hits)
    assert unassessed(evaluate(stopp, ctx(conditions=("N40",))), "START G1").missing_inputs == ("sex",)


def test_not_computable_never_fires(stopp: CriteriaList) -> None:
    # STOPP G2's only ICD-10 iteration lacks the COPD diagnosis: not evaluated at all.
    result = evaluate(stopp, ctx(drug(1, "prednisolone", "H02AB06"), age=80))
    assert "STOPP G2" not in ids(result.hits) | ids(result.not_assessed)
    # START I2 (pneumococcal vaccine) would otherwise fire for every patient over 64.
    assert "START I2" not in ids(evaluate(stopp, ctx(age=80)).hits)


def test_empty_prescription(stopp: CriteriaList) -> None:
    assert evaluate(stopp, ctx()) == EvaluationResult((), ())


# ---------------------------------------------------------------------------------------------------
# The YAML format


def test_example_list_loads_and_evaluates(example: CriteriaList) -> None:
    assert example.is_example and [c.criterion_id for c in example.criteria] == ["EXAMPLE-1", "EXAMPLE-2"]
    assert all(c.description.startswith("EXAMPLE") for c in example.criteria)
    result = evaluate(example, ctx(drug(1, "oxazepam", "N05BA04", duration_days=28), conditions=("I48",)))
    assert ids(result.hits) == {"EXAMPLE-1", "EXAMPLE-2"}
    assert "none of oral anticoagulant" in hit(result, "EXAMPLE-2").why[-1]
    # Example lists are not loaded for analysis unless asked.
    assert all(not lst.is_example for lst in load_criteria_dir(CRITERIA_DIR))
    assert "example" in {lst.list_id for lst in load_criteria_dir(CRITERIA_DIR, include_examples=True)}


def test_format_md_example_is_valid() -> None:
    text = (CRITERIA_DIR / "FORMAT.md").read_text(encoding="utf-8")
    block = text.split("## Example")[1].split("```yaml")[1].split("```")[0]
    parsed = parse_criteria(_list(yaml.safe_load(block)), "FORMAT.md")
    result = evaluate(parsed, ctx(drug(1, "ibuprofene", "M01AE01"), egfr_ml_min=35))
    assert ids(result.hits) == {"STOPP E4"}


def _list(criteria: list[dict[str, Any]]) -> dict[str, Any]:
    return {"list_id": "t", "title": "t", "edition": "t", "source": "t", "licence": "t", "criteria": criteria}


def test_names_thresholds_and_shorthands() -> None:
    parsed = parse_criteria(
        _list(
            [
                {
                    "criterion_id": "T1",
                    "kind": "pim",
                    "description": "d",
                    "drugs": [{"names": ["Oxazépam"], "mg_per_day": "≥ 50"}],
                    "conditions": [["I10", "I15"], ["N39.3"]],
                },
                {
                    "criterion_id": "T2",
                    "kind": "pim",
                    "description": "d",
                    "any_of": [{"drugs": [{"atc": "n05ba", "routes": ["Orale"], "as_needed": False}]}],
                },
            ]
        ),
        "test",
    )
    t1 = parsed.get("T1").any_of[0]
    assert t1.drugs[0].names == ("oxazepam",) and t1.drugs[0].mg_per_day is not None
    assert t1.drugs[0].mg_per_day.op == ">=" and [g.cim10 for g in t1.conditions] == [
        ("I10", "I15"),
        ("N393",),
    ]
    oxazepam = drug(1, "oxazépam", "", mg_per_day=50, route="orale")
    assert ids(evaluate(parsed, ctx(oxazepam, conditions=("I10", "N393"))).hits) == {"T1"}
    assert ids(evaluate(parsed, ctx(oxazepam, conditions=("I10",))).hits) == set()
    prn = drug(1, "oxazepam", "N05BA04", route="orale", as_needed=True)
    assert ids(evaluate(parsed, ctx(prn)).hits) == set()
    assert ids(evaluate(parsed, ctx(drug(1, "oxazepam", "N05BA04", route="orale"))).hits) == {"T2"}
    assert ids(evaluate(parsed, ctx(drug(1, "oxazepam", "N05BA04"))).not_assessed) == {"T2"}


@pytest.mark.parametrize(
    ("criterion", "path", "message"),
    [
        ({"drugs": [{"atc": ["N05-BA"]}]}, "criteria[C1].drugs[0].atc", "not an ATC code"),
        (
            {"drugs": [{"atc": ["N05BA"], "duration_dys": "> 28"}]},
            "criteria[C1].drugs[0].duration_dys",
            "unknown",
        ),
        (
            {"drugs": [{"atc": ["N05BA"], "duration_days": 28}]},
            "criteria[C1].drugs[0].duration_days",
            "comparator",
        ),
        ({"drugs": [{"atc": ["N05BA"]}], "conditions": ["X1"]}, "criteria[C1].conditions[0].cim10", "CIM-10"),
        ({"drugs": [{"atc": ["N05BA"], "target": False}]}, "criteria[C1]", "target"),
        (
            {"drugs": [{"atc": ["N05BA"]}], "labs": [{"field": "k", "op": "<", "value": 3}]},
            "labs[0].field",
            "",
        ),
        ({"drugs": [{"atc": ["N05BA"]}], "computable": False}, "criteria[C1]", "not_computable_reason"),
    ],
)
def test_validation_errors_name_criterion_and_field(
    criterion: dict[str, object], path: str, message: str
) -> None:
    raw = {"criterion_id": "C1", "kind": "pim", "description": "d", **criterion}
    with pytest.raises(CriteriaFormatError) as caught:
        parse_criteria(_list([raw]), "test.yaml")
    problems = caught.value.problems
    assert any(p.startswith(path) or path in p for p, _ in problems), problems
    assert any(message in m for _, m in problems), problems
    assert "test.yaml" in str(caught.value)


def test_validation_of_lists(tmp_path: Path) -> None:
    omission = {"criterion_id": "O1", "kind": "omission", "description": "d", "conditions": ["I48"]}
    with pytest.raises(CriteriaFormatError, match=r"criteria\[O1\].*absent_drugs"):
        parse_criteria(_list([omission]), "t")
    twice = {"criterion_id": "P1", "kind": "pim", "description": "d", "drugs": [{"atc": ["N05BA"]}]}
    with pytest.raises(CriteriaFormatError, match="appears twice"):
        parse_criteria(_list([twice, twice]), "t")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("list_id: [unclosed\n", encoding="utf-8")
    with pytest.raises(CriteriaFormatError, match="yaml"):
        load_criteria_yaml(bad_yaml)


# ---------------------------------------------------------------------------------------------------
# Several lists


def test_merge_two_lists_on_the_same_drug(stopp: CriteriaList, example: CriteriaList) -> None:
    context = ctx(
        drug(1, "oxazepam", "N05BA04", duration_days=60),
        drug(2, "ibuprofene", "M01AE01"),
        conditions=("I48",),
    )
    result = evaluate_all([stopp, example], context)
    findings = merge_hits(result.hits)
    benzo = [f for f in findings if f.kind == "pim" and f.lines == (1,)]
    assert len(benzo) == 1
    cited = {(c.list_id, c.criterion_id) for c in benzo[0].citations}
    assert cited == {("stopp-start-v2", "STOPP D5"), ("stopp-start-v2", "STOPP K1"), ("example", "EXAMPLE-1")}
    assert benzo[0].substances == ("oxazepam",)
    # The anticoagulant omission of both lists is one finding (same missing classes).
    anticoag = [
        f for f in findings if f.kind == "omission" and any(c.criterion_id == "START A1" for c in f.citations)
    ]
    assert len(anticoag) == 1
    assert {c.criterion_id for c in anticoag[0].citations} == {"START A1", "EXAMPLE-2"}
    # Every hit is in exactly one finding.
    assert sorted(h.criterion_id for f in findings for h in f.hits) == sorted(
        h.criterion_id for h in result.hits
    )
