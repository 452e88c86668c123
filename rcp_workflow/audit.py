"""The audit trail: who read or changed which case, when. ``detail`` never holds personal data, only
the name of the action (``include``, ``ppp``, ``identity``…)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from rcp_workflow.models import AuditEvent
from rcp_workflow.schemas import Actor, AuditAction, AuditEntry


def record(
    session: Session, actor: Actor, action: AuditAction, case_id: str | None, detail: str, now: dt.datetime
) -> None:
    session.add(AuditEvent(at=now, user_id=actor.user_id, action=action, case_id=case_id, detail=detail))


def trail(session: Session, case_id: str) -> tuple[AuditEntry, ...]:
    rows = session.scalars(select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(AuditEvent.id))
    return tuple(
        AuditEntry(id=r.id, at=r.at, user_id=r.user_id, action=r.action, case_id=r.case_id, detail=r.detail)
        for r in rows
    )
