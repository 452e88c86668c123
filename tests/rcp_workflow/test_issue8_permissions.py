"""Issue 8: who sees and changes a case. Negative cases first: other pharmacy, other hospital,
non-participant, wrong role for an action, unknown case."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from iatro.errors import FieldError, InvalidTransition, PermissionDenied
from rcp_workflow.auth import AuthService
from rcp_workflow.schemas import Actor, NewCase, NewMessage, PatientInput
from rcp_workflow.workflow import WorkflowService

from .conftest import ELIGIBLE, load_prescription
from .pathway import RECOMMENDATIONS, case_in, new_case


@pytest.fixture
def other_hospital(auth: AuthService, service: WorkflowService, actors) -> Actor:
    tag = uuid.uuid4().hex[:8]  # the PostgreSQL directory outlives a test
    org = auth.create_organisation(f"CH de test {tag}", "hospital")
    email = f"geriatre-{tag}@autre.test"
    auth.create_user(
        email=email, password="x" * 12, display_name="Dr Autre", role="geriatre", organisation_id=org
    )
    login = auth.login(email, "x" * 12)
    assert login is not None
    return login.actor


def test_other_pharmacy_never_sees_a_bpm(service: WorkflowService, actors, engine) -> None:
    case = new_case(service, actors["pharmacien.officine"], engine, "bpm")
    other = actors["pharmacien.marche"]
    assert service.list_cases(other) == ()
    for read in (service.get_case, service.audit_trail, service.list_messages, service.get_identity):
        with pytest.raises(PermissionDenied):
            read(other, case.id)
    with pytest.raises(PermissionDenied):
        service.stop(other, case.id, case.version, "intrusion")
    # ... and cannot be brought in as a participant
    with pytest.raises(PermissionDenied):
        service.add_participant(actors["pharmacien.officine"], case.id, case.version, other.user_id)
    assert service.get_case(actors["pharmacien.officine"], case.id).version == case.version


def test_hospital_team_does_not_see_bpm_nor_other_hospital(
    service: WorkflowService, actors, engine, other_hospital: Actor
) -> None:
    bpm = new_case(service, actors["pharmacien.officine"], engine, "bpm")
    iatroprev = new_case(service, actors["geriatre"], engine)
    for who in ("geriatre", "coordinateur", "pharmacien.hospitalier"):
        assert [c.id for c in service.list_cases(actors[who])] == [iatroprev.id]
        with pytest.raises(PermissionDenied):
            service.get_case(actors[who], bpm.id)
    assert service.list_cases(other_hospital) == ()
    with pytest.raises(PermissionDenied):
        service.get_case(other_hospital, iatroprev.id)
    with pytest.raises(PermissionDenied):
        service.include(other_hospital, iatroprev.id, iatroprev.version, _inclusion())


def test_non_participant_town_professionals_see_nothing(service: WorkflowService, actors, engine) -> None:
    case = new_case(service, actors["geriatre"], engine)
    for who in ("medecin.traitant", "pharmacien.officine", "pharmacien.marche"):
        assert service.list_cases(actors[who]) == ()
        with pytest.raises(PermissionDenied):
            service.get_case(actors[who], case.id)
    # once a participant, the médecin traitant sees it
    case = service.add_participant(
        actors["coordinateur"], case.id, case.version, actors["medecin.traitant"].user_id
    )
    assert [c.id for c in service.list_cases(actors["medecin.traitant"])] == [case.id]
    assert service.get_case(actors["medecin.traitant"], case.id).id == case.id


def test_a_case_holds_one_officine_only(service: WorkflowService, actors, engine) -> None:
    case = new_case(
        service, actors["geriatre"], engine, participant_ids=(actors["pharmacien.officine"].user_id,)
    )
    with pytest.raises(PermissionDenied, match="another officine"):
        service.add_participant(
            actors["coordinateur"], case.id, case.version, actors["pharmacien.marche"].user_id
        )


def test_town_professional_opens_a_case_for_a_hospital(service: WorkflowService, actors, engine) -> None:
    mt = actors["medecin.traitant"]
    with pytest.raises(FieldError) as err:
        new_case(service, mt, engine)
    assert err.value.field == "organisation_id"
    case = new_case(service, mt, engine, organisation_id=actors["geriatre"].organisation_id)
    assert case.organisation_id == actors["geriatre"].organisation_id
    # the creator is a participant; the hospital team sees it too
    assert service.get_case(mt, case.id).id == case.id
    assert service.get_case(actors["coordinateur"], case.id).id == case.id


def test_wrong_role_for_an_action(service: WorkflowService, actors, engine) -> None:
    case = case_in(service, actors, engine, "iatroprev", "medication_review")
    case = service.add_participant(
        actors["coordinateur"], case.id, case.version, actors["medecin.traitant"].user_id
    )
    # the recommendations are the hospital team's (pharmacien hospitalier, gériatre)
    for who in ("medecin.traitant", "coordinateur"):
        with pytest.raises(PermissionDenied, match="add_recommendation"):
            service.add_recommendation(actors[who], case.id, case.version, RECOMMENDATIONS[0])
    # only the officine opens a BPM
    with pytest.raises(PermissionDenied):
        new_case(service, actors["geriatre"], engine, "bpm")
    with pytest.raises(PermissionDenied):
        new_case(service, actors["medecin.traitant"], engine, "bpm")
    # a refused call changes nothing
    assert service.get_case(actors["geriatre"], case.id).version == case.version


def test_unknown_case_is_denied_not_revealed(service: WorkflowService, actors) -> None:
    with pytest.raises(PermissionDenied):
        service.get_case(actors["geriatre"], "0" * 32)
    with pytest.raises(PermissionDenied):
        service.stop(actors["geriatre"], "0" * 32, 1, "x")


def test_existing_patient_reused_only_by_who_sees_them(service: WorkflowService, actors, engine) -> None:
    case = new_case(service, actors["pharmacien.officine"], engine, "bpm")
    reuse = NewCase(pathway="bpm", prescription=load_prescription(ELIGIBLE), patient_id=case.patient.id)
    with pytest.raises(PermissionDenied):
        service.create_case(actors["pharmacien.marche"], reuse, engine=engine)
    again = service.create_case(actors["pharmacien.officine"], reuse, engine=engine)
    assert again.patient.id == case.patient.id


def test_identity_is_apart_and_audited(service: WorkflowService, actors, engine) -> None:
    new = NewCase(
        pathway="iatroprev",
        prescription=load_prescription(ELIGIBLE),
        patient=PatientInput(
            birth_year=1944,
            sex="F",
            identity={"family_name": "Dupont", "given_name": "Jeanne", "birth_date": dt.date(1944, 5, 1)},
        ),
    )
    case = service.create_case(actors["geriatre"], new, engine=engine)
    assert case.patient.has_identity
    assert "Dupont" not in case.model_dump_json()  # the case view never carries the identity
    identity = service.get_identity(actors["geriatre"], case.id)
    assert identity is not None and identity.family_name == "Dupont"
    trail = service.audit_trail(actors["geriatre"], case.id)
    assert [e.detail for e in trail if e.action == "read"] == ["identity"]
    assert all("Dupont" not in e.detail for e in trail)


def test_message_recipients_must_be_of_the_case(service: WorkflowService, actors, engine) -> None:
    case = new_case(service, actors["geriatre"], engine)
    with pytest.raises(FieldError) as err:
        service.post_message(
            actors["geriatre"],
            case.id,
            NewMessage(body="Bonjour", recipient_ids=(actors["pharmacien.marche"].user_id,)),
        )
    assert err.value.field == "message.recipient_ids.0"
    with pytest.raises(PermissionDenied):
        service.post_message(
            actors["pharmacien.marche"], case.id, NewMessage(body="x", recipient_roles=("geriatre",))
        )
    sent = service.post_message(
        actors["geriatre"], case.id, NewMessage(body="RCP jeudi ?", recipient_roles=("coordinateur",))
    )
    assert [m.body for m in service.list_messages(actors["coordinateur"], case.id)] == [sent.body]
    assert service.get_case(actors["geriatre"], case.id).version == case.version  # messages do not bump it


def test_precondition_refusal_names_the_item(service: WorkflowService, actors, engine) -> None:
    case = case_in(service, actors, engine, "iatroprev", "medication_review")
    with pytest.raises(InvalidTransition, match="no recommendation"):
        from .pathway import plan_rcp

        plan_rcp(service, actors, case, engine)


def _inclusion():
    from rcp_workflow.schemas import Inclusion

    from .pathway import CONSENT

    return Inclusion(entry_door="town", consent=CONSENT)
