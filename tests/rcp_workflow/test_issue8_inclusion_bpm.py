"""Issue 8: inclusion (eligibility from the analysis, consent, hospital-door agreements) and the BPM."""

from __future__ import annotations

import pytest

from iatro.errors import FieldError, InvalidTransition
from rcp_workflow.schemas import Consent, Inclusion
from rcp_workflow.workflow import WorkflowService

from .conftest import NOT_ELIGIBLE
from .pathway import CONSENT, case_in, new_case


def test_eligibility_is_taken_from_the_analysis(service: WorkflowService, actors, engine) -> None:
    case = new_case(service, actors["geriatre"], engine, prescription=NOT_ELIGIBLE)
    assert case.analyses[0].report["eligibility"]["iatroprev"] is False
    with pytest.raises(InvalidTransition, match="not eligible for iatroprev"):
        service.include(
            actors["geriatre"], case.id, case.version, Inclusion(entry_door="town", consent=CONSENT)
        )
    why = "admission pour chute sous psychotropes, décision de l'équipe"
    case = service.include(
        actors["geriatre"],
        case.id,
        case.version,
        Inclusion(entry_door="town", consent=CONSENT, eligibility_justification=why),
    )
    assert case.eligibility is not None and case.eligibility["eligible"] is False
    assert case.eligibility["reasons"] and case.eligibility_justification == why
    assert case.eligibility["kb_version"] == case.analyses[0].kb_version


def test_consent_and_hospital_door_agreements(service: WorkflowService, actors, engine) -> None:
    case = new_case(service, actors["geriatre"], engine)
    refused = Consent(given_by="carer", informed=True, consented=False, recorded_on=CONSENT.recorded_on)
    with pytest.raises(InvalidTransition, match="carer has not consented"):
        service.include(
            actors["geriatre"], case.id, case.version, Inclusion(entry_door="town", consent=refused)
        )
    hospital = Inclusion(entry_door="hospital", consent=CONSENT, medecin_traitant_agreed=True)
    with pytest.raises(InvalidTransition, match="agreement missing from the pharmacien d'officine"):
        service.include(actors["geriatre"], case.id, case.version, hospital)
    agreed = hospital.model_copy(update={"pharmacien_officine_agreed": True})
    case = service.include(actors["geriatre"], case.id, case.version, agreed)
    assert case.state == "inclusion" and case.entry_door == "hospital" and case.consent == CONSENT


def test_bpm_records_structured_interviews(service: WorkflowService, actors, engine) -> None:
    case = case_in(service, actors, engine, "bpm", "adherence_followup")
    assert case.bpm is not None and case.bpm.questionnaire is not None
    assert case.bpm.questionnaire.self_medication and case.bpm.questionnaire.difficulties == ("remembering",)
    assert case.bpm.summary_sent_at is not None and case.bpm.adherence_followup is not None
    messages = service.list_messages(actors["pharmacien.officine"], case.id)
    assert [m.recipient_roles for m in messages] == [("medecin_traitant",)]
    with pytest.raises(FieldError) as err:
        service.record_information_interview(
            actors["pharmacien.officine"],
            case.id,
            case.version,
            {"adherence": "so-so", "missed_doses_last_week": 0},
        )
    assert err.value.field == "questionnaire.adherence"


def test_bpm_questionnaire_validation(service: WorkflowService, actors, engine) -> None:
    case = case_in(service, actors, engine, "bpm", "inclusion")
    with pytest.raises(FieldError, match="self_medication_details"):
        service.record_information_interview(
            actors["pharmacien.officine"],
            case.id,
            case.version,
            {"adherence": "good", "missed_doses_last_week": 0, "self_medication": True},
        )
