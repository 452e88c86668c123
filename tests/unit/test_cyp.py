"""CYP interactions quantified from the FDA categories (static CR/IR model), on the real KB.

Exposures are built by hand (line, KB substance, route) so that each test states exactly what the
patient takes; one test goes through the engine's resolver as the report does.
"""

from __future__ import annotations

import json
import random

import pytest
import yaml

from iatro.analysis import parse_prescription
from iatro.checks.context import CheckContext, Exposure
from iatro.checks.cyp import (
    CypModel,
    CypParameters,
    auc_ratio,
    fda_definition_checks,
    load_parameters,
)
from iatro.errors import SourceError
from iatro.kb.store import KnowledgeBase
from iatro.model.prescription import Patient
from knowledge_base.builder.cyp import CypMapping, map_fda_table
from knowledge_base.builder.files import CURATED_DIR, SOURCES_DIR

PARAMETERS_PATH = CURATED_DIR / "cyp_parameters.yaml"
TITLE = "FDA Drug Development and Drug Interactions: Table of Substrates, Inhibitors and Inducers"


@pytest.fixture(scope="module")
def params() -> CypParameters:
    return load_parameters(PARAMETERS_PATH)


@pytest.fixture(scope="module")
def mapping(kb: KnowledgeBase) -> CypMapping:
    return map_fda_table(SOURCES_DIR, kb.substances)


@pytest.fixture(scope="module")
def model(kb: KnowledgeBase, mapping: CypMapping, params: CypParameters) -> CypModel:
    return CypModel(mapping.roles, params, kb.substances)


def _exposure(kb: KnowledgeBase, line: int, name: str, route: str | None = "orale") -> Exposure:
    [substance] = [s for s in kb.find_substances(name) if not s.homeopathic]
    return Exposure(
        line=line, substance_id=substance.id, name=substance.name, atc=substance.atc[:1], route=route
    )


def _ctx(kb: KnowledgeBase, *drugs: str | tuple[str, str | None]) -> CheckContext:
    """One line per drug, in order; a (name, route) tuple sets the route."""
    exposures = []
    for line, drug in enumerate(drugs):
        name, route = (drug, "orale") if isinstance(drug, str) else drug
        exposures.append(_exposure(kb, line, name, route))
    return CheckContext(exposures=tuple(exposures), patient=Patient())


def _prior(params: CypParameters, table: str, klass: str) -> float:
    return float(getattr(params.priors, table)[klass])


# --- the priors reproduce the FDA category definitions ---------------------------------------


def test_every_fda_definition_holds_with_the_shipped_priors(params):
    checks = fda_definition_checks(params.priors)
    assert checks and all(ok for _what, _aucr, ok in checks), [c for c in checks if not c[2]]


def test_category_pairings_fall_in_the_fda_bands(params):
    s = _prior(params, "substrate_cr", "sensitive")
    m = _prior(params, "substrate_cr", "moderate_sensitive")
    ir = {k: _prior(params, "inhibitor_ir", k) for k in ("strong", "moderate", "weak")}
    ic = {k: _prior(params, "inducer_ic", k) for k in ("strong", "moderate", "weak")}
    # Inhibitors, judged on a sensitive substrate: >= 5 / [2, 5) / [1.25, 2).
    assert auc_ratio(s, ir=ir["strong"]) >= 5
    assert 2 <= auc_ratio(s, ir=ir["moderate"]) < 5
    assert 1.25 <= auc_ratio(s, ir=ir["weak"]) < 2
    # Substrates, judged with a strong inhibitor: sensitive >= 5, moderately sensitive [2, 5).
    assert 2 <= auc_ratio(m, ir=ir["strong"]) < 5
    # Inducers: AUC decrease >= 80 % / 50-80 % / 20-50 %.
    assert auc_ratio(s, ic=ic["strong"]) <= 0.2
    assert 0.2 < auc_ratio(s, ic=ic["moderate"]) <= 0.5
    assert 0.5 < auc_ratio(s, ic=ic["weak"]) <= 0.8
    # Ideal index partners (IR = 1 or CR = 1) keep the same bands.
    assert auc_ratio(s, ir=1.0) >= 5 and 2 <= auc_ratio(m, ir=1.0) < 5
    assert auc_ratio(1.0, ir=ir["strong"]) >= 5 and 1.25 <= auc_ratio(1.0, ir=ir["weak"]) < 2
    assert auc_ratio(1.0, ic=ic["strong"]) <= 0.2 and 0.5 < auc_ratio(1.0, ic=ic["weak"]) <= 0.8


def test_priors_that_break_a_definition_are_refused(tmp_path):
    raw = yaml.safe_load(PARAMETERS_PATH.read_text(encoding="utf-8"))
    raw["priors"]["inhibitor_ir"]["strong"] = 0.7  # 0.95 x 0.7 -> AUCR 2.98: no longer "strong"
    path = tmp_path / "cyp_parameters.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(SourceError, match="strong inhibitor"):
        load_parameters(path)


def test_overrides_table_is_empty_until_values_are_checked_against_the_paper(params):
    # Only values read in the publication itself belong there (see the YAML's comment).
    assert params.overrides == ()


# --- the check on prescriptions ----------------------------------------------------------------


def test_simvastatin_with_clarithromycin_is_a_high_cyp3a_alert(kb, model):
    [alert] = model.check(_ctx(kb, "simvastatine", "clarithromycine"))
    assert alert.type == "cyp" and alert.enzyme == "CYP3A"
    assert alert.auc_ratio is not None and alert.auc_ratio >= 5
    assert alert.severity == "high"
    assert alert.rule_id == "cyp:3A:simvastatine+clarithromycine"
    assert [s.name for s in alert.substances] == ["simvastatine", "clarithromycine"]
    assert alert.lines == (0, 1)
    assert alert.source.startswith(TITLE) and alert.edition
    assert alert.why is not None
    assert alert.why.startswith("FDA category estimate: CYP3A sensitive substrate")
    assert "strong inhibitor clarithromycine" in alert.why
    assert alert.recommendation and "×10,26" in alert.recommendation


def test_weak_inhibitor_with_a_moderately_sensitive_substrate_stays_below_the_threshold(kb, model, params):
    # alprazolam: CYP3A moderately sensitive; amiodarone: CYP3A weak (and 2C9/2D6, not alprazolam's).
    expected = auc_ratio(
        _prior(params, "substrate_cr", "moderate_sensitive"), ir=_prior(params, "inhibitor_ir", "weak")
    )
    assert expected < 1.5
    assert model.check(_ctx(kb, "alprazolam", "amiodarone")) == []


def test_moderate_inhibitor_with_a_moderately_sensitive_substrate_alerts(kb, model):
    [alert] = model.check(_ctx(kb, "alprazolam", "diltiazem"))
    assert alert.auc_ratio == 2.29 and alert.severity == "moderate"


def test_rifampicin_with_a_sensitive_substrate_cuts_exposure_by_80_percent_or_more(kb, model):
    [alert] = model.check(_ctx(kb, "midazolam", "rifampicine"))
    assert alert.auc_ratio is not None and alert.auc_ratio <= 0.2
    assert alert.severity == "high" and alert.enzyme == "CYP3A"
    assert alert.recommendation and "perte d'efficacité" in alert.recommendation
    assert alert.why and "strong inducer rifampicine" in alert.why


def test_two_inhibitors_combine_multiplicatively_on_remaining_activity(kb, model, params):
    s = _prior(params, "substrate_cr", "sensitive")
    moderate, weak = _prior(params, "inhibitor_ir", "moderate"), _prior(params, "inhibitor_ir", "weak")
    [alone] = model.check(_ctx(kb, "midazolam", "diltiazem"))
    [both] = model.check(_ctx(kb, "midazolam", "diltiazem", "cimetidine"))
    combined_ir = 1 - (1 - moderate) * (1 - weak)
    assert both.auc_ratio == round(auc_ratio(s, ir=combined_ir), 2)
    assert both.auc_ratio is not None and alone.auc_ratio is not None
    assert both.auc_ratio > alone.auc_ratio
    assert both.rule_id == "cyp:3A:midazolam+cimetidine+diltiazem"
    assert both.lines == (0, 1, 2)


def test_inhibitor_and_inducer_act_on_the_same_remaining_activity(kb, model, params):
    s = _prior(params, "substrate_cr", "sensitive")
    ir, ic = _prior(params, "inhibitor_ir", "strong"), _prior(params, "inducer_ic", "strong")
    [alert] = model.check(_ctx(kb, "midazolam", "clarithromycine", "rifampicine"))
    assert alert.auc_ratio == round(1 / (s * (1 - ir) * (1 + ic) + 1 - s), 2)
    assert alert.why and "opposite effects" in alert.why


def test_opposite_effects_that_cancel_still_alert_at_the_worst_side(kb, model):
    # Net 0.68 (inside the no-alert window), but rifampicin alone gives 0.10: stopping diltiazem
    # and cimetidine, or starting them before induction sets in, changes exposure a lot.
    [alert] = model.check(_ctx(kb, "midazolam", "diltiazem", "cimetidine", "rifampicine"))
    assert alert.auc_ratio is not None and 0.67 < alert.auc_ratio < 1.5
    assert alert.severity == "high"
    assert alert.message and "effets opposés" in alert.message


def test_order_of_lines_does_not_change_the_alerts(kb, model):
    drugs = ["midazolam", "diltiazem", "cimetidine", "simvastatine", "rifampicine", "alprazolam"]
    reference = {(a.rule_id, a.auc_ratio, a.severity) for a in model.check(_ctx(kb, *drugs))}
    assert reference
    rng = random.Random(4)
    for _ in range(5):
        shuffled = drugs[:]
        rng.shuffle(shuffled)
        ctx = _ctx(kb, *shuffled)
        reversed_ctx = CheckContext(exposures=tuple(reversed(ctx.exposures)), patient=ctx.patient)
        for c in (ctx, reversed_ctx):
            assert {(a.rule_id, a.auc_ratio, a.severity) for a in model.check(c)} == reference


def test_a_combination_row_does_not_count_ritonavir_twice(kb, model):
    # Kaletra: lopinavir + ritonavir on one line. FDA lists "ritonavir" and "lopinavir and
    # ritonavir" as strong CYP3A inhibitors; together they are one perpetrator.
    ctx = CheckContext(
        exposures=(
            _exposure(kb, 0, "lopinavir"),
            _exposure(kb, 0, "ritonavir"),
            _exposure(kb, 1, "simvastatine"),
        ),
        patient=Patient(),
    )
    [alert] = model.check(ctx)
    [single] = model.check(_ctx(kb, "simvastatine", "clarithromycine"))
    assert alert.auc_ratio == single.auc_ratio
    assert {s.name for s in alert.substances} == {"simvastatine", "lopinavir", "ritonavir"}


def test_perpetrator_on_a_local_route_or_on_the_victims_line_is_not_counted(kb, model):
    assert model.check(_ctx(kb, ("ketoconazole", "cutanee"), "simvastatine")) == []
    same_line = CheckContext(
        exposures=(_exposure(kb, 0, "simvastatine"), _exposure(kb, 0, "clarithromycine")),
        patient=Patient(),
    )
    assert model.check(same_line) == []


def test_unknown_route_counts_as_systemic(kb, model):
    assert len(model.check(_ctx(kb, ("simvastatine", None), ("clarithromycine", None)))) == 1


def test_transporter_rows_are_kept_but_not_modelled(kb, mapping, model):
    kinds = {r["kind"] for r in mapping.roles}
    assert kinds == {"cyp", "transporter"}
    # Atorvastatin + ciclosporin is an OATP1B interaction; on CYP3A ciclosporin is only weak and
    # atorvastatin moderately sensitive: the CYP model alone stays below the threshold.
    assert model.check(_ctx(kb, "atorvastatine", "ciclosporine")) == []


def test_a_curated_override_replaces_the_prior_and_is_cited(kb, mapping, params):
    override = {
        "substance": "alprazolam",
        "enzyme": "CYP3A",
        "parameter": "cr",
        "value": 0.5,
        "citation": "test fixture only, not a clinical value",
    }
    curated = CypParameters.model_validate(params.model_dump() | {"overrides": [override]})
    [alert] = CypModel(mapping.roles, curated, kb.substances).check(_ctx(kb, "alprazolam", "clarithromycine"))
    assert alert.auc_ratio == round(auc_ratio(0.5, ir=_prior(params, "inhibitor_ir", "strong")), 2)
    assert alert.why and "curated" in alert.why and "test fixture only" in alert.why


def test_severity_bands(params):
    display = params.display
    assert display.severity(1.49) is None and display.severity(0.68) is None
    assert display.severity(1.5) == "low" and display.severity(0.67) == "low"
    assert display.severity(2.0) == "moderate" and display.severity(0.5) == "moderate"
    assert display.severity(5.0) == "high" and display.severity(0.2) == "high"


def test_through_the_engine_as_the_report_does(engine, model):
    document = {
        "patient": {},
        "lines": [
            {"text": "SIMVASTATINE 20 mg cp 1 le soir"},
            {"text": "clarithromycine 500 mg 1 cp matin et soir"},
        ],
    }
    prescription = parse_prescription(json.dumps(document))
    lines = tuple(engine.resolver.resolve(line, i) for i, line in enumerate(prescription.lines))
    [alert] = model.check(engine.context(prescription, lines))
    assert alert.rule_id == "cyp:3A:simvastatine+clarithromycine" and alert.severity == "high"


# --- mapping of the FDA table to the KB --------------------------------------------------------


def test_fda_table_maps_to_kb_substances_or_says_why_not(mapping, capsys):
    mapped, total = mapping.coverage()
    unmapped = mapping.unmapped()
    with capsys.disabled():
        print(
            f"\nFDA CYP table: {mapped}/{total} substances mapped to the KB ({mapped / total:.1%}); "
            f"{len(unmapped)} listed with a reason"
        )
    assert all(reason for reason in unmapped.values())
    assert (mapped + len(unmapped)) / total >= 0.90
    # Regression floor for the mapping itself (204/244 when written).
    assert mapped / total >= 0.80
    assert {m.how for m in mapping.names.values()} <= {
        "name",
        "synonym",
        "structure",
        "curated",
        "combination",
        "unmapped",
    }


@pytest.mark.parametrize(
    ("fda_name", "kb_key"),
    [
        ("rifampin", "rifampicine"),
        ("glyburide", "glibenclamide"),
        ("cyclosporine", "ciclosporine"),
        ("acyclovir", "aciclovir"),
        ("clarithromycin", "clarithromycine"),
        ("simvastatin", "simvastatine"),
    ],
)
def test_us_names_map_to_the_french_dci(kb, mapping, fda_name, kb_key):
    keys = {kb.substances[i].key for alt in mapping.names[fda_name].alternatives for i in alt}
    assert keys == {kb_key}


def test_enantiomers_and_non_drugs_are_not_folded_into_a_kb_substance(mapping):
    unmapped = mapping.unmapped()
    assert "enantiomer" in unmapped["R-venlafaxine"]
    assert "food" in unmapped["grapefruit juice"]


def test_combination_row_requires_every_component(kb, mapping):
    rows = [r for r in mapping.roles if r["fda_name"] == "lopinavir and ritonavir" and r["enzyme"] == "CYP3A"]
    [row] = rows
    assert [kb.substances[i].key for i in row["requires"]] == ["lopinavir", "ritonavir"]
    assert row["substance_id"] == row["requires"][0]
