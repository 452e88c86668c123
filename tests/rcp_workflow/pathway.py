"""Drive a case along its pathway in tests: one function per action, with valid payloads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from iatro.analysis import Engine
from rcp_workflow.schemas import (
    Actor,
    AdherenceFollowUp,
    BillingUpdate,
    BpmAnalysisInput,
    BpmQuestionnaire,
    CaseView,
    Consent,
    Decision,
    FollowUpInput,
    Inclusion,
    ItemFollowUp,
    NewCase,
    NewRecommendation,
    PatientInput,
    RcpPlan,
)
from rcp_workflow.workflow import WorkflowService

from .conftest import ELIGIBLE, load_prescription

CONSENT = Consent(given_by="patient", informed=True, consented=True, recorded_on=dt.date(2026, 3, 2))
# ELIGIBLE's lines: 0 LEVOTHYROX, 1 AMLOR, 7 MOPRAL, 9 FORLAX.
RECOMMENDATIONS = (
    NewRecommendation(
        action="change",
        drug="MOPRAL 20 mg, gélule gastro-résistante",
        rationale="IPP et lévothyroxine : précaution d'emploi ANSM ; réévaluer l'indication de l'IPP",
        actip_problem="6.2",
        actip_intervention="7",
        before="1 gélule le matin",
        after="1 gélule le matin, à distance de LEVOTHYROX",
        alert_index=0,
        monitoring_what="TSH",
        monitoring_when="à 6 semaines",
    ),
    NewRecommendation(
        action="stop",
        drug="FORLAX",
        rationale="Macrogol : espacer des autres prises ou arrêter si transit normal",
        actip_problem="6.1",
        actip_intervention="2",
        line_index=9,
    ),
    NewRecommendation(
        action="start",
        drug="vaccin contre le zona (recombinant)",
        rationale="Vaccination recommandée après 65 ans",
        actip_problem="2",
        actip_intervention="1",
        after="2 doses à 2 mois d'intervalle",
    ),
)


def new_case(
    service: WorkflowService,
    actor: Actor,
    engine: Engine,
    pathway: str = "iatroprev",
    prescription: str = ELIGIBLE,
    **extra: Any,
) -> CaseView:
    return service.create_case(
        actor,
        NewCase(
            pathway=pathway,
            prescription=load_prescription(prescription),
            patient=PatientInput(birth_year=1944, sex="F"),
            **extra,
        ),
        engine=engine,
    )


Step = Callable[[WorkflowService, dict[str, Actor], CaseView, Engine], CaseView]


def include(s: WorkflowService, a: dict[str, Actor], c: CaseView, e: Engine) -> CaseView:
    actor = a["pharmacien.officine"] if c.pathway == "bpm" else a["coordinateur"]
    return s.include(actor, c.id, c.version, Inclusion(entry_door="town", consent=CONSENT))


def start_review(s: WorkflowService, a: dict[str, Actor], c: CaseView, e: Engine) -> CaseView:
    return s.start_review(a["pharmacien.hospitalier"], c.id, c.version)


def add_recommendations(s: WorkflowService, a: dict[str, Actor], c: CaseView, e: Engine) -> CaseView:
    for rec in RECOMMENDATIONS:
        c = s.add_recommendation(a["pharmacien.hospitalier"], c.id, c.version, rec)
    return c


def plan_rcp(s: WorkflowService, a: dict[str, Actor], c: CaseView, e: Engine) -> CaseView:
    plan = RcpPlan(
        scheduled_at=dt.datetime(2026, 3, 10, 14, 0, tzinfo=dt.UTC),
        modality="video",
        participant_ids=(
            a["medecin.traitant"].user_id,
            a["pharmacien.officine"].user_id,
            a["geriatre"].user_id,
        ),
    )
    return s.plan_rcp(a["coordinateur"], c.id, c.version, plan)


def decide(s: WorkflowService, a: dict[str, Actor], c: CaseView, e: Engine) -> CaseView:
    outcomes = [
        ("accepted", None),
        ("refused", "transit fragile, on garde"),
        ("modified", "une seule dose d'abord"),
    ]
    for rec, (outcome, comment) in zip(c.recommendations, outcomes, strict=True):
        c = s.record_decision(
            a["geriatre"],
            c.id,
            c.version,
            Decision(recommendation_id=rec.id, outcome=outcome, comment=comment),
        )
    return c


def hold_rcp(s: WorkflowService, a: dict[str, Actor], c: CaseView, e: Engine) -> CaseView:
    return s.hold_rcp(a["geriatre"], c.id, c.version)


def issue_ppp(s: WorkflowService, a: dict[str, Actor], c: CaseView, e: Engine) -> CaseView:
    return s.issue_ppp(a["geriatre"], c.id, c.version)


def _followup(day: int) -> Step:
    def step(s: WorkflowService, a: dict[str, Actor], c: CaseView, e: Engine) -> CaseView:
        assert c.ppp is not None
        items = tuple(
            ItemFollowUp(item_index=i, implemented=True, outcome="fait") for i in range(c.ppp.item_count)
        )
        return s.record_followup(a["medecin.traitant"], c.id, c.version, day, FollowUpInput(items=items))

    return step


followup_45 = _followup(45)
followup_90 = _followup(90)


def sign_billing(s: WorkflowService, a: dict[str, Actor], c: CaseView, e: Engine) -> CaseView:
    update = BillingUpdate(convention_signed=True, participation_agreement_signed=True)
    return s.update_billing(a["coordinateur"], c.id, c.version, update)


def close(s: WorkflowService, a: dict[str, Actor], c: CaseView, e: Engine) -> CaseView:
    actor = a["pharmacien.officine"] if c.pathway == "bpm" else a["coordinateur"]
    return s.close(actor, c.id, c.version)


QUESTIONNAIRE = BpmQuestionnaire(
    adherence="partial",
    missed_doses_last_week=2,
    self_medication=True,
    self_medication_details="ibuprofène en automédication pour des douleurs",
    difficulties=("remembering",),
)


def bpm_interview(s: WorkflowService, a: dict[str, Actor], c: CaseView, e: Engine) -> CaseView:
    return s.record_information_interview(a["pharmacien.officine"], c.id, c.version, QUESTIONNAIRE)


def bpm_analysis(s: WorkflowService, a: dict[str, Actor], c: CaseView, e: Engine) -> CaseView:
    conclusions = BpmAnalysisInput(conclusions="Espacer MOPRAL et LEVOTHYROX ; éviter l'ibuprofène")
    return s.record_bpm_analysis(a["pharmacien.officine"], c.id, c.version, conclusions, engine=e)


def bpm_summary(s: WorkflowService, a: dict[str, Actor], c: CaseView, e: Engine) -> CaseView:
    return s.send_summary(
        a["pharmacien.officine"], c.id, c.version, "Synthèse du bilan partagé de médication"
    )


def bpm_advice(s: WorkflowService, a: dict[str, Actor], c: CaseView, e: Engine) -> CaseView:
    return s.record_advice_interview(a["pharmacien.officine"], c.id, c.version, "Conseils de prise expliqués")


def bpm_adherence(s: WorkflowService, a: dict[str, Actor], c: CaseView, e: Engine) -> CaseView:
    followup = AdherenceFollowUp(adherence="good", notes="pilulier en place")
    return s.record_adherence_followup(a["pharmacien.officine"], c.id, c.version, followup)


# The steps that take a case to each state, in order (billing is signed on the way, as in real life).
RCP_PATH: tuple[tuple[str, tuple[Step, ...]], ...] = (
    ("inclusion", (include,)),
    ("medication_review", (start_review,)),
    ("rcp_planned", (add_recommendations, plan_rcp)),
    ("rcp_held", (decide, hold_rcp)),
    ("ppp_issued", (issue_ppp,)),
    ("followup_45", (followup_45,)),
    ("followup_90", (followup_90, sign_billing)),
    ("closed", (close,)),
)
BPM_PATH: tuple[tuple[str, tuple[Step, ...]], ...] = (
    ("inclusion", (include,)),
    ("information_interview", (bpm_interview,)),
    ("bpm_analysis", (bpm_analysis,)),
    ("summary_sent", (bpm_summary,)),
    ("advice_interview", (bpm_advice,)),
    ("adherence_followup", (bpm_adherence,)),
    ("closed", (close,)),
)


def creator(actors: dict[str, Actor], pathway: str) -> Actor:
    return actors["pharmacien.officine"] if pathway == "bpm" else actors["geriatre"]


def case_in(
    service: WorkflowService, actors: dict[str, Actor], engine: Engine, pathway: str, state: str
) -> CaseView:
    """A new case of ``pathway`` walked to ``state`` ("stopped": stopped from repérage)."""
    case = new_case(service, creator(actors, pathway), engine, pathway)
    if state == "stopped":
        return service.stop(creator(actors, pathway), case.id, case.version, "patient décédé")
    for target, steps in BPM_PATH if pathway == "bpm" else RCP_PATH:
        if case.state == state:
            break
        for step in steps:
            case = step(service, actors, case, engine)
        if target == state:
            break
    assert case.state == state
    return case
