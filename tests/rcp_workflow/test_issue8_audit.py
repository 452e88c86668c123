"""Issue 8: the audit trail records who read or changed a case, and when; never personal data."""

from __future__ import annotations

import pytest

from iatro.errors import InvalidTransition
from rcp_workflow.schemas import NewCase, PatientInput
from rcp_workflow.workflow import WorkflowService

from .conftest import ELIGIBLE, load_prescription
from .pathway import case_in


def test_reads_changes_and_downloads_are_audited(service: WorkflowService, actors, engine, clock) -> None:
    case = case_in(service, actors, engine, "iatroprev", "ppp_issued")
    clock.advance(hours=1)
    service.get_case(actors["medecin.traitant"], case.id)
    service.get_ppp(actors["pharmacien.officine"], case.id, download=True)
    trail = service.audit_trail(actors["coordinateur"], case.id)
    pairs = [(e.action, e.detail) for e in trail]
    assert pairs[0] == ("create", "case")
    for expected in [
        ("transition", "include"),
        ("transition", "start_review"),
        ("update", "add_recommendation"),
        ("transition", "plan_rcp"),
        ("update", "record_decision"),
        ("transition", "hold_rcp"),
        ("transition", "issue_ppp"),
        ("read", "case"),
        ("download", "ppp"),
    ]:
        assert expected in pairs
    assert trail[-2].user_id == actors["medecin.traitant"].user_id
    assert trail[-1].user_id == actors["pharmacien.officine"].user_id
    assert trail[-1].at == clock.now
    assert [e.id for e in trail] == sorted(e.id for e in trail)


def test_refused_calls_leave_no_audit_row(service: WorkflowService, actors, engine) -> None:
    case = case_in(service, actors, engine, "iatroprev", "reperage")
    before = len(service.audit_trail(actors["geriatre"], case.id))
    with pytest.raises(InvalidTransition):
        service.hold_rcp(actors["geriatre"], case.id, case.version)
    assert len(service.audit_trail(actors["geriatre"], case.id)) == before


def test_audit_holds_no_personal_data(service: WorkflowService, actors, engine) -> None:
    new = NewCase(
        pathway="iatroprev",
        prescription=load_prescription(ELIGIBLE),
        patient=PatientInput(
            pseudonym="PSEUDO-42",
            birth_year=1944,
            identity={"family_name": "Martin", "given_name": "Lucienne"},
        ),
    )
    case = service.create_case(actors["geriatre"], new, engine=engine)
    service.get_identity(actors["geriatre"], case.id)
    for entry in service.audit_trail(actors["geriatre"], case.id):
        text = entry.model_dump_json()
        assert "Martin" not in text and "Lucienne" not in text and "PSEUDO-42" not in text
