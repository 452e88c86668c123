"""The workflow tables (SQLAlchemy 2 typed ORM). The schema itself is created by the Alembic
migrations in ``rcp_workflow/migrations``; a test checks the two agree.

The patient's identity lives in its own table (``patient_identities``), read only by
``WorkflowService.get_identity``; everything else refers to the patient by id or pseudonym.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the workflow database; use UTC-aware datetimes")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


Json = JSON()


class Base(DeclarativeBase):
    pass


class Organisation(Base):
    __tablename__ = "organisations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # hospital, officine, cabinet
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(40))
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class LoginSessionRow(Base):
    __tablename__ = "login_sessions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Patient(Base):
    __tablename__ = "patients"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    pseudonym: Mapped[str] = mapped_column(String(64), unique=True)
    birth_year: Mapped[int | None] = mapped_column(Integer)
    sex: Mapped[str | None] = mapped_column(String(1))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))


class PatientIdentity(Base):
    __tablename__ = "patient_identities"
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    family_name: Mapped[str] = mapped_column(String(200))
    given_name: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    ins: Mapped[str | None] = mapped_column(String(15))


class Case(Base):
    __tablename__ = "cases"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # Bumped by an atomic UPDATE ... WHERE version = expected at the start of every change.
    version: Mapped[int] = mapped_column(Integer, default=1)
    pathway: Mapped[str] = mapped_column(String(20), index=True)
    state: Mapped[str] = mapped_column(String(40), index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    entry_door: Mapped[str | None] = mapped_column(String(20))
    eligibility: Mapped[dict[str, Any] | None] = mapped_column(Json)
    eligibility_justification: Mapped[str | None] = mapped_column(Text)
    consent: Mapped[dict[str, Any] | None] = mapped_column(Json)
    medecin_traitant_agreed: Mapped[bool] = mapped_column(Boolean, default=False)
    pharmacien_officine_agreed: Mapped[bool] = mapped_column(Boolean, default=False)
    rcp_scheduled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    rcp_modality: Mapped[str | None] = mapped_column(String(20))
    rcp_participant_ids: Mapped[list[str] | None] = mapped_column(Json)
    rcp_held_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    convention_signed: Mapped[bool] = mapped_column(Boolean, default=False)
    participation_agreement_signed: Mapped[bool] = mapped_column(Boolean, default=False)
    bpm: Mapped[dict[str, Any] | None] = mapped_column(Json)
    stop_reason: Mapped[str | None] = mapped_column(Text)


class CaseParticipant(Base):
    __tablename__ = "case_participants"
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    added_by: Mapped[str] = mapped_column(ForeignKey("users.id"))


class Analysis(Base):
    __tablename__ = "analyses"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, … within the case: the latest is the one reviewed
    kind: Mapped[str] = mapped_column(String(20))
    kb_version: Mapped[str] = mapped_column(String(200))
    prescription: Mapped[dict[str, Any]] = mapped_column(Json)
    report: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))


class Recommendation(Base):
    __tablename__ = "recommendations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))
    drug: Mapped[str] = mapped_column(String(300))
    rationale: Mapped[str] = mapped_column(Text)
    actip_problem: Mapped[str] = mapped_column(String(10))
    actip_intervention: Mapped[str] = mapped_column(String(10))
    responsible_role: Mapped[str] = mapped_column(String(40))
    before: Mapped[str | None] = mapped_column(String(500))
    after: Mapped[str | None] = mapped_column(String(500))
    monitoring_what: Mapped[str | None] = mapped_column(String(500))
    monitoring_when: Mapped[str | None] = mapped_column(String(200))
    analysis_id: Mapped[str | None] = mapped_column(ForeignKey("analyses.id"))
    alert_index: Mapped[int | None] = mapped_column(Integer)
    line_index: Mapped[int | None] = mapped_column(Integer)
    alert_rule_id: Mapped[str | None] = mapped_column(String(300))
    alert_source: Mapped[str | None] = mapped_column(String(300))
    author_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    decision_outcome: Mapped[str | None] = mapped_column(String(20))
    decision_comment: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class PPPIssue(Base):
    __tablename__ = "ppp_issues"
    __table_args__ = (UniqueConstraint("case_id", "version"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    issued_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    document: Mapped[dict[str, Any]] = mapped_column(Json)


class FollowUp(Base):
    __tablename__ = "followups"
    __table_args__ = (UniqueConstraint("case_id", "day"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    day: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    items: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    notes: Mapped[str | None] = mapped_column(Text)
    analysis_id: Mapped[str | None] = mapped_column(ForeignKey("analyses.id"))


class Message(Base):
    __tablename__ = "messages"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    author_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    recipient_roles: Mapped[list[str]] = mapped_column(Json)
    recipient_ids: Mapped[list[str]] = mapped_column(Json)
    body: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """Who did what on which case, when. ``detail`` holds action names only, never personal data."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id"), index=True)
    detail: Mapped[str] = mapped_column(String(200))
