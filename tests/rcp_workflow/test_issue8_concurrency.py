"""Issue 8: two writers holding the same version: exactly one wins, the other gets ConflictError,
no lost update. Real threads, each with its own connection, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from iatro.errors import ConflictError
from rcp_workflow.db import open_database
from rcp_workflow.schemas import BillingUpdate
from rcp_workflow.workflow import WorkflowService

from .pathway import new_case


def test_two_writers_one_conflict(db_url: str, service: WorkflowService, actors, engine, clock) -> None:
    case = new_case(service, actors["geriatre"], engine)
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def writer(name: str, update: BillingUpdate) -> None:
        db = open_database(db_url)  # its own engine and connection, as two app workers would have
        try:
            own = WorkflowService(db, clock=clock)
            barrier.wait()
            results[name] = own.update_billing(actors["coordinateur"], case.id, case.version, update)
        except ConflictError as exc:
            results[name] = exc
        finally:
            db.dispose()

    threads = [
        threading.Thread(target=writer, args=("a", BillingUpdate(convention_signed=True))),
        threading.Thread(target=writer, args=("b", BillingUpdate(participation_agreement_signed=True))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    conflicts = [r for r in results.values() if isinstance(r, ConflictError)]
    winners = [r for r in results.values() if not isinstance(r, ConflictError)]
    assert len(conflicts) == 1 and len(winners) == 1, results
    final = service.get_case(actors["coordinateur"], case.id)
    assert final.version == case.version + 1
    # exactly the winner's change is there, not both, not none
    assert final.billing.convention_signed != final.billing.participation_agreement_signed
    assert "version" in str(conflicts[0])


def test_stale_version_is_refused_and_changes_nothing(service: WorkflowService, actors, engine) -> None:
    case = new_case(service, actors["geriatre"], engine)
    fresh = service.update_billing(
        actors["coordinateur"], case.id, case.version, BillingUpdate(convention_signed=True)
    )
    with pytest.raises(ConflictError):
        service.stop(actors["coordinateur"], case.id, case.version, "stale")
    after = service.get_case(actors["coordinateur"], case.id)
    assert after.state == "reperage" and after.version == fresh.version
