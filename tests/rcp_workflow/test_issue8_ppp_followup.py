"""Issue 8: the PPP built from the RCP decisions, follow-up due dates, the billing checklist."""

from __future__ import annotations

import datetime as dt

import pytest

from iatro.errors import FieldError, InvalidTransition
from rcp_workflow.schemas import BillingUpdate, FollowUpInput, ItemFollowUp
from rcp_workflow.workflow import WorkflowService

from .conftest import NOT_ELIGIBLE, load_prescription
from .pathway import case_in, followup_45, followup_90


def test_ppp_keeps_accepted_and_modified_decisions(service: WorkflowService, actors, engine, clock) -> None:
    case = case_in(service, actors, engine, "iatroprev", "ppp_issued")
    doc = service.get_ppp(actors["medecin.traitant"], case.id)
    # decisions along the pathway: MOPRAL change accepted, FORLAX stop refused, zona vaccine modified
    assert [(i.action, i.decision) for i in doc.items] == [("change", "accepted"), ("start", "modified")]
    assert doc.items[1].comment == "une seule dose d'abord"
    assert doc.items[0].comment is None
    assert doc.items[0].actip_problem == "6.2" and doc.items[0].actip_intervention == "7"
    assert doc.items[0].source is not None and "hormones thyroidiennes" in doc.items[0].source
    assert "Paul Bernard" in doc.items[0].decided_by
    meds = {m.drug: m for m in doc.new_medications}
    # the refused stop leaves FORLAX on the list; the accepted change updates MOPRAL's posology
    assert meds["FORLAX 10 g, poudre pour solution buvable en sachet"].status == "unchanged"
    mopral = meds["MOPRAL 20 mg, gélule gastro-résistante"]
    assert mopral.status == "changed" and mopral.posology == "1 gélule le matin, à distance de LEVOTHYROX"
    assert meds["vaccin contre le zona (recombinant)"].status == "new"
    assert len(doc.new_medications) == 11
    assert [(m.what, m.when) for m in doc.monitoring] == [("TSH", "à 6 semaines")]
    assert doc.patient_pseudonym == case.patient.pseudonym and doc.patient_age == 82
    assert doc.kb_version == case.analyses[-1].kb_version
    assert doc.issued_at == clock.now and doc.rcp_date == dt.date(2026, 3, 10)
    assert {p.role for p in doc.participants} >= {"medecin_traitant", "pharmacien_officine", "geriatre"}
    assert [(f.label, f.due) for f in doc.follow_ups] == [
        ("Suivi J45", dt.date(2026, 4, 16)),
        ("Suivi J90", dt.date(2026, 5, 31)),
    ]


def test_hold_refused_until_every_recommendation_is_decided(service: WorkflowService, actors, engine) -> None:
    case = case_in(service, actors, engine, "iatroprev", "rcp_planned")
    with pytest.raises(InvalidTransition, match="#1, #2, #3 have no decision"):
        service.hold_rcp(actors["geriatre"], case.id, case.version)


def test_modified_decision_needs_a_comment(service: WorkflowService, actors, engine) -> None:
    case = case_in(service, actors, engine, "iatroprev", "rcp_planned")
    with pytest.raises(FieldError) as err:
        service.record_decision(
            actors["geriatre"],
            case.id,
            case.version,
            {"recommendation_id": case.recommendations[0].id, "outcome": "modified"},
        )
    assert err.value.field.startswith("decision")


def test_due_followups_listed_for_the_actor(service: WorkflowService, actors, engine, clock) -> None:
    case = case_in(service, actors, engine, "iatroprev", "ppp_issued")
    mt = actors["medecin.traitant"]
    assert service.due_followups(mt, today=dt.date(2026, 4, 1)) == ()  # J45 is 2026-04-16
    due = service.due_followups(mt, today=dt.date(2026, 4, 10))
    assert [(d.case_id, d.day, d.due, d.overdue) for d in due] == [(case.id, 45, dt.date(2026, 4, 16), False)]
    late = service.due_followups(mt, today=dt.date(2026, 4, 20))
    assert late[0].overdue
    assert service.due_followups(actors["pharmacien.marche"], today=dt.date(2026, 4, 20)) == ()
    assert service.list_cases(mt)[0].next_followup_due == dt.date(2026, 4, 16)
    case = followup_45(service, actors, case, engine)
    due = service.due_followups(mt, today=dt.date(2026, 6, 1))
    assert [(d.day, d.due, d.overdue) for d in due] == [(90, dt.date(2026, 5, 31), True)]


def test_followup_needs_every_plan_item(service: WorkflowService, actors, engine) -> None:
    case = case_in(service, actors, engine, "iatroprev", "ppp_issued")
    one = FollowUpInput(
        items=(ItemFollowUp(item_index=0, implemented=False, outcome="refusé par la patiente"),)
    )
    with pytest.raises(InvalidTransition, match=r"PPP item\(s\) 1"):
        service.record_followup(actors["medecin.traitant"], case.id, case.version, 45, one)
    bad = FollowUpInput(
        items=(
            *one.items,
            ItemFollowUp(item_index=1, implemented=True),
            ItemFollowUp(item_index=5, implemented=True),
        )
    )
    with pytest.raises(FieldError) as err:
        service.record_followup(actors["medecin.traitant"], case.id, case.version, 45, bad)
    assert err.value.field == "followup.items.2.item_index"


def test_followup_reanalyses_a_new_medication_list(service: WorkflowService, actors, engine) -> None:
    case = case_in(service, actors, engine, "iatroprev", "ppp_issued")
    items = tuple(ItemFollowUp(item_index=i, implemented=True) for i in range(case.ppp.item_count))
    new = load_prescription(NOT_ELIGIBLE)
    case = service.record_followup(
        actors["medecin.traitant"],
        case.id,
        case.version,
        45,
        FollowUpInput(items=items, new_prescription=new),
        engine=engine,
    )
    assert case.state == "followup_45"
    assert case.analyses[-1].kind == "followup_45"
    assert case.followups[0].analysis_id == case.analyses[-1].id
    alerts = case.analyses[-1].report["alerts"]
    pairs = [{s["name"] for s in a["substances"]} for a in alerts if a["type"] == "interaction"]
    assert {"amiodarone", "escitalopram"} in pairs


def test_close_refused_until_the_billing_checklist_is_complete(
    service: WorkflowService, actors, engine
) -> None:
    case = case_in(service, actors, engine, "iatroprev", "followup_45")
    case = followup_90(service, actors, case, engine)
    coord = actors["coordinateur"]
    with pytest.raises(InvalidTransition, match="convention_signed, participation_agreement_signed missing"):
        service.close(coord, case.id, case.version)
    case = service.update_billing(coord, case.id, case.version, BillingUpdate(convention_signed=True))
    with pytest.raises(InvalidTransition, match="participation_agreement_signed missing"):
        service.close(coord, case.id, case.version)
    case = service.update_billing(
        coord, case.id, case.version, BillingUpdate(participation_agreement_signed=True)
    )
    assert case.billing.followup_45_proof and case.billing.followup_90_proof
    assert service.close(coord, case.id, case.version).state == "closed"
