"""WorkflowService: cases, transitions, recommendations, RCP, PPP, follow-ups, BPM, messages, audit.

Every public method opens one transaction. A change goes through :meth:`WorkflowService._change`,
which in this order: bumps the case's version atomically (``UPDATE … WHERE id = ? AND version = ?``,
so that of two writers holding the same version exactly one wins), checks that the actor sees the
case, finds the (pathway, state, action) row of the transition table, checks the role and the
row's preconditions, lets the caller change the case, moves it to the row's target state and writes
the audit row. Any error rolls the whole transaction back, version bump included.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from iatro.analysis import Engine
from iatro.errors import ConflictError, FieldError, InvalidTransition, PermissionDenied
from iatro.model.prescription import Prescription
from rcp_workflow import actip, audit, permissions, states, views
from rcp_workflow.db import Database
from rcp_workflow.models import (
    Analysis,
    Case,
    CaseParticipant,
    FollowUp,
    Message,
    Organisation,
    Patient,
    PatientIdentity,
    PPPIssue,
    Recommendation,
    User,
)
from rcp_workflow.ppp import build, labels
from rcp_workflow.ppp.model import PPPDocument, Professional
from rcp_workflow.preconditions import ELIGIBILITY_KEY, PRECONDITIONS, Facts
from rcp_workflow.schemas import (
    Actor,
    AdherenceFollowUp,
    AuditEntry,
    BillingUpdate,
    BpmAnalysisInput,
    BpmQuestionnaire,
    CaseSummary,
    CaseView,
    Decision,
    DueFollowUp,
    FollowUpInput,
    Inclusion,
    MessageView,
    NewCase,
    NewMessage,
    NewRecommendation,
    OrganisationView,
    PatientIdentityView,
    ProfessionalView,
    RcpPlan,
)

# Who may open a case (repérage), per pathway: anyone for Iatroprev/Optimedoc, the officine for a BPM.
CREATORS: dict[str, frozenset[str]] = {
    "iatroprev": frozenset(states.ROLES),
    "optimedoc": frozenset(states.ROLES),
    "bpm": frozenset({"pharmacien_officine"}),
}
DUE_SOON_DAYS = 7
M = TypeVar("M", bound=BaseModel)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _validate(model: type[M], value: object, field: str) -> M:
    """Validate a payload given as a dict (or already a model); errors name the field."""
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        path = ".".join(str(p) for p in (field, *error["loc"]) if p != "")
        raise FieldError(path, error["msg"]) from None


def _prescription(data: dict[str, Any], field: str) -> Prescription:
    try:
        return Prescription.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        path = ".".join(str(p) for p in (field, *error["loc"]))
        raise FieldError(path, error["msg"]) from None


@dataclass(slots=True)
class _Change:
    """What a change's body may use: the session, the case (already checked), the time, the row."""

    session: Session
    case: Case
    now: dt.datetime
    row: states.Transition


class WorkflowService:
    """The workflow of Iatroprev / Optimedoc / BPM cases. ``clock`` is injectable for tests."""

    def __init__(self, db: Database, *, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    # ============================================================================================
    # Plumbing
    # ============================================================================================
    @contextmanager
    def _change(
        self,
        actor: Actor,
        case_id: str,
        expected_version: int,
        action: str,
        payload: object = None,
        facts: Callable[[Session, Case], dict[str, Any]] | None = None,
    ) -> Iterator[_Change]:
        with self.db.transaction() as session:
            now = self.clock()
            bumped = session.execute(
                update(Case)
                .where(Case.id == case_id, Case.version == expected_version)
                .values(version=Case.version + 1, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if bumped.rowcount != 1:  # type: ignore[attr-defined]
                current = permissions.visible_case(session, actor, case_id)  # PermissionDenied first
                raise ConflictError(
                    f"the case changed since you read it: it is at version {current.version}, "
                    f"you sent {expected_version}"
                )
            case = permissions.visible_case(session, actor, case_id)
            row = states.find(case.pathway, case.state, action)
            if row is None:
                allowed = states.allowed_actions(case.pathway, case.state, actor.role)
                raise InvalidTransition(
                    f"a {case.pathway} case in state {case.state!r} does not allow {action!r}; "
                    f"allowed actions: {', '.join(allowed) or 'none'}"
                )
            permissions.require_role(actor, row.roles, action)
            extra = facts(session, case) if facts is not None else {}
            for name in row.preconditions:
                unmet = PRECONDITIONS[name](Facts(session=session, case=case, payload=payload, **extra))
                if unmet is not None:
                    raise InvalidTransition(f"cannot {action} (state {case.state!r}): {unmet}")
            change = _Change(session=session, case=case, now=now, row=row)
            yield change
            moved = row.to != case.state
            case.state = row.to
            audit.record(session, actor, "transition" if moved else "update", case.id, action, now)

    def _changed(
        self,
        actor: Actor,
        case_id: str,
        expected_version: int,
        action: str,
        body: Callable[[_Change], None],
        *,
        payload: object = None,
        facts: Callable[[Session, Case], dict[str, Any]] | None = None,
    ) -> CaseView:
        with self._change(actor, case_id, expected_version, action, payload, facts) as change:
            body(change)
        # A fresh transaction to read what was committed, so the view shows the committed version.
        with self.db.transaction() as session:
            return views.case_view(session, actor, permissions.visible_case(session, actor, case_id))

    @staticmethod
    def _user(session: Session, user_id: str, field: str) -> User:
        user = session.get(User, user_id)
        if user is None or not user.active:
            raise FieldError(field, f"no such professional: {user_id}")
        return user

    def _add_participant(
        self, session: Session, actor: Actor, case: Case, user: User, now: dt.datetime
    ) -> None:
        if session.get(CaseParticipant, (case.id, user.id)) is not None:
            return
        permissions.check_officine(session, case, user)
        session.add(CaseParticipant(case_id=case.id, user_id=user.id, added_at=now, added_by=actor.user_id))
        session.flush()

    def _analyse(
        self,
        session: Session,
        actor: Actor,
        case: Case,
        patient: Patient,
        data: dict[str, Any],
        kind: str,
        engine: Engine,
        field: str,
        now: dt.datetime,
    ) -> Analysis:
        prescription = _prescription(data, field)
        prescription = _with_patient_facts(prescription, patient, now.date())
        report = engine.analyze(prescription)
        seq = (session.scalar(select(func.max(Analysis.seq)).where(Analysis.case_id == case.id)) or 0) + 1
        analysis = Analysis(
            case_id=case.id,
            seq=seq,
            kind=kind,
            kb_version=report.kb_version,
            prescription=prescription.model_dump(mode="json", exclude_none=True),
            report=report.model_dump(mode="json"),
            created_at=now,
            created_by=actor.user_id,
        )
        session.add(analysis)
        session.flush()
        return analysis

    # ============================================================================================
    # Directory
    # ============================================================================================
    def list_organisations(self, actor: Actor) -> tuple[OrganisationView, ...]:
        """Every organisation (names are not personal data): to pick a hospital for a town case."""
        with self.db.transaction() as session:
            rows = session.scalars(select(Organisation).order_by(Organisation.kind, Organisation.name))
            return tuple(OrganisationView(id=o.id, name=o.name, kind=o.kind) for o in rows)

    def list_professionals(self, actor: Actor) -> tuple[ProfessionalView, ...]:
        """Every active professional, to pick RCP participants and message recipients."""
        with self.db.transaction() as session:
            rows = session.execute(
                select(User, Organisation)
                .join(Organisation, Organisation.id == User.organisation_id)
                .where(User.active.is_(True))
                .order_by(Organisation.name, User.display_name)
            ).all()
            return tuple(
                ProfessionalView(
                    user_id=u.id,
                    display_name=u.display_name,
                    role=u.role,
                    organisation_id=o.id,
                    organisation_name=o.name,
                )
                for u, o in rows
            )

    # ============================================================================================
    # Reading
    # ============================================================================================
    def list_cases(
        self, actor: Actor, *, pathway: str | None = None, state: str | None = None
    ) -> tuple[CaseSummary, ...]:
        """The cases the actor may see (participant or organisation team), newest first."""
        query = select(Case).where(permissions.visible_cases(actor))
        if pathway is not None:
            query = query.where(Case.pathway == pathway)
        if state is not None:
            query = query.where(Case.state == state)
        with self.db.transaction() as session:
            cases = session.scalars(query.order_by(Case.created_at.desc(), Case.id))
            return tuple(views.case_summary(session, c) for c in cases)

    def get_case(self, actor: Actor, case_id: str) -> CaseView:
        """One case, audited as a read."""
        with self.db.transaction() as session:
            case = permissions.visible_case(session, actor, case_id)
            audit.record(session, actor, "read", case.id, "case", self.clock())
            return views.case_view(session, actor, case)

    def get_identity(self, actor: Actor, case_id: str) -> PatientIdentityView | None:
        """The patient's identity (name, birth date, INS), audited; None when none was recorded."""
        with self.db.transaction() as session:
            case = permissions.visible_case(session, actor, case_id)
            audit.record(session, actor, "read", case.id, "identity", self.clock())
            identity = session.get(PatientIdentity, case.patient_id)
            if identity is None:
                return None
            return PatientIdentityView(
                family_name=identity.family_name,
                given_name=identity.given_name,
                birth_date=identity.birth_date,
                ins=identity.ins,
            )

    def due_followups(
        self, actor: Actor, *, today: dt.date | None = None, within_days: int = DUE_SOON_DAYS
    ) -> tuple[DueFollowUp, ...]:
        """Follow-ups (J45, J90) not yet recorded, due on or before ``today + within_days``, on the cases
        the actor sees, soonest first; ``overdue`` when the due date is before ``today``."""
        today = today or self.clock().date()
        horizon = today + dt.timedelta(days=within_days)
        query = select(Case).where(
            permissions.visible_cases(actor),
            Case.pathway.in_(sorted(states.RCP_PATHWAYS)),
            Case.state.in_(("ppp_issued", "followup_45")),
        )
        out = []
        with self.db.transaction() as session:
            for case in session.scalars(query):
                nxt = views.next_due(session, case)
                if nxt is None or nxt[1] > horizon:
                    continue
                pseudonym = session.get_one(Patient, case.patient_id).pseudonym
                out.append(
                    DueFollowUp(
                        case_id=case.id,
                        pathway=case.pathway,
                        patient_pseudonym=pseudonym,
                        day=nxt[0],
                        due=nxt[1],
                        overdue=nxt[1] < today,
                    )
                )
        return tuple(sorted(out, key=lambda d: (d.due, d.case_id)))

    def audit_trail(self, actor: Actor, case_id: str) -> tuple[AuditEntry, ...]:
        """Who read or changed the case, oldest first."""
        with self.db.transaction() as session:
            case = permissions.visible_case(session, actor, case_id)
            return audit.trail(session, case.id)

    def get_ppp(self, actor: Actor, case_id: str, *, download: bool = False) -> PPPDocument:
        """The issued PPP as stored at issue time; audited as ``download`` when ``download``."""
        with self.db.transaction() as session:
            case = permissions.visible_case(session, actor, case_id)
            issue = views.latest_ppp(session, case.id)
            if issue is None:
                raise InvalidTransition(f"no PPP has been issued for this case (state {case.state!r})")
            audit.record(session, actor, "download" if download else "read", case.id, "ppp", self.clock())
            return build.document_from_json(issue.document)

    # ============================================================================================
    # Repérage and inclusion
    # ============================================================================================
    def create_case(self, actor: Actor, new: NewCase, *, engine: Engine) -> CaseView:
        """Open a case in ``reperage``: the patient, the prescription and its analysis by ``engine``."""
        new = _validate(NewCase, new, "case")
        permissions.require_role(actor, CREATORS[new.pathway], f"open a {new.pathway} case")
        with self.db.transaction() as session:
            now = self.clock()
            org_id = self._case_organisation(session, actor, new)
            patient = self._patient(session, actor, new, now)
            case = Case(
                version=1,
                pathway=new.pathway,
                state=states.INITIAL_STATE,
                patient_id=patient.id,
                organisation_id=org_id,
                created_at=now,
                created_by=actor.user_id,
                updated_at=now,
                medecin_traitant_agreed=False,
                pharmacien_officine_agreed=False,
                convention_signed=False,
                participation_agreement_signed=False,
            )
            session.add(case)
            session.flush()
            creator = session.get_one(User, actor.user_id)
            self._add_participant(session, actor, case, creator, now)
            for i, user_id in enumerate(new.participant_ids):
                self._add_participant(
                    session, actor, case, self._user(session, user_id, f"participant_ids.{i}"), now
                )
            self._analyse(
                session, actor, case, patient, new.prescription, "initial", engine, "prescription", now
            )
            audit.record(session, actor, "create", case.id, "case", now)
            case_id = case.id
        with self.db.transaction() as session:
            return views.case_view(session, actor, permissions.visible_case(session, actor, case_id))

    def _case_organisation(self, session: Session, actor: Actor, new: NewCase) -> str:
        if new.pathway == "bpm":
            if new.organisation_id not in (None, actor.organisation_id):
                raise PermissionDenied("a bilan partagé de médication belongs to your own officine")
            return actor.organisation_id
        org_id = new.organisation_id or (
            actor.organisation_id if actor.organisation_kind == "hospital" else None
        )
        if org_id is None:
            raise FieldError("organisation_id", "say which hospital's team runs this case")
        org = session.get(Organisation, org_id)
        if org is None or org.kind != "hospital":
            raise FieldError("organisation_id", "not a hospital")
        if actor.organisation_kind == "hospital" and org_id != actor.organisation_id:
            raise PermissionDenied("a hospital team opens cases for its own hospital only")
        return org_id

    def _patient(self, session: Session, actor: Actor, new: NewCase, now: dt.datetime) -> Patient:
        if new.patient_id is not None:
            patient = session.get(Patient, new.patient_id)
            # An existing patient may be reused only by someone who already sees one of their cases.
            seen = session.scalar(
                select(Case.id)
                .where(Case.patient_id == new.patient_id, permissions.visible_cases(actor))
                .limit(1)
            )
            if patient is None or seen is None:
                raise PermissionDenied("no such patient, or you are not allowed to see them")
            return patient
        data = new.patient
        if data is None:  # excluded by NewCase's validator; kept for the type checker
            raise FieldError("patient", "missing")
        pseudonym = data.pseudonym or f"P-{secrets.token_hex(4).upper()}"
        if session.scalar(select(Patient.id).where(Patient.pseudonym == pseudonym)) is not None:
            raise FieldError("patient.pseudonym", "already used by another patient")
        patient = Patient(
            pseudonym=pseudonym,
            birth_year=data.birth_year,
            sex=data.sex,
            created_at=now,
            created_by=actor.user_id,
        )
        session.add(patient)
        session.flush()
        if data.identity is not None:
            session.add(
                PatientIdentity(
                    patient_id=patient.id,
                    family_name=data.identity.family_name,
                    given_name=data.identity.given_name,
                    birth_date=data.identity.birth_date,
                    ins=data.identity.ins,
                )
            )
        return patient

    def include(self, actor: Actor, case_id: str, expected_version: int, inclusion: Inclusion) -> CaseView:
        inclusion = _validate(Inclusion, inclusion, "inclusion")

        def facts(session: Session, case: Case) -> dict[str, Any]:
            return {"eligibility": _eligibility(session, case)}

        def body(c: _Change) -> None:
            if c.case.pathway == "bpm" and inclusion.entry_door != "town":
                raise FieldError(
                    "inclusion.entry_door", "a bilan partagé de médication has the town door only"
                )
            c.case.entry_door = inclusion.entry_door
            c.case.eligibility = _eligibility(c.session, c.case)
            c.case.eligibility_justification = inclusion.eligibility_justification
            c.case.consent = inclusion.consent.model_dump(mode="json")
            c.case.medecin_traitant_agreed = inclusion.medecin_traitant_agreed
            c.case.pharmacien_officine_agreed = inclusion.pharmacien_officine_agreed

        return self._changed(
            actor, case_id, expected_version, "include", body, payload=inclusion, facts=facts
        )

    def add_participant(self, actor: Actor, case_id: str, expected_version: int, user_id: str) -> CaseView:
        def body(c: _Change) -> None:
            self._add_participant(c.session, actor, c.case, self._user(c.session, user_id, "user_id"), c.now)

        return self._changed(actor, case_id, expected_version, "add_participant", body)

    # ============================================================================================
    # Medication review
    # ============================================================================================
    def start_review(self, actor: Actor, case_id: str, expected_version: int) -> CaseView:
        return self._changed(actor, case_id, expected_version, "start_review", lambda c: None)

    def attach_analysis(
        self,
        actor: Actor,
        case_id: str,
        expected_version: int,
        prescription: dict[str, Any],
        *,
        engine: Engine,
    ) -> CaseView:
        """Replace the medication list under review and attach its analysis (kind ``review``)."""

        def body(c: _Change) -> None:
            patient = c.session.get_one(Patient, c.case.patient_id)
            self._analyse(
                c.session, actor, c.case, patient, prescription, "review", engine, "prescription", c.now
            )

        return self._changed(actor, case_id, expected_version, "attach_analysis", body)

    def add_recommendation(
        self, actor: Actor, case_id: str, expected_version: int, recommendation: NewRecommendation
    ) -> CaseView:
        rec = _validate(NewRecommendation, recommendation, "recommendation")
        actip.lookup("problem", rec.actip_problem, field="recommendation.actip_problem")
        actip.lookup("intervention", rec.actip_intervention, field="recommendation.actip_intervention")

        def body(c: _Change) -> None:
            analysis = views.latest_analysis(c.session, c.case.id)
            report = analysis.report if analysis is not None else {}
            alert = None
            if rec.alert_index is not None:
                alerts = report.get("alerts", [])
                if rec.alert_index >= len(alerts):
                    raise FieldError("recommendation.alert_index", f"the analysis has {len(alerts)} alert(s)")
                alert = alerts[rec.alert_index]
            line_index = _line_index(rec, report.get("lines", []))
            count = c.session.scalar(
                select(func.count()).select_from(Recommendation).where(Recommendation.case_id == c.case.id)
            )
            c.session.add(
                Recommendation(
                    case_id=c.case.id,
                    position=(count or 0) + 1,
                    action=rec.action,
                    drug=rec.drug,
                    rationale=rec.rationale,
                    actip_problem=rec.actip_problem,
                    actip_intervention=rec.actip_intervention,
                    responsible_role=rec.responsible_role,
                    before=rec.before,
                    after=rec.after,
                    monitoring_what=rec.monitoring_what,
                    monitoring_when=rec.monitoring_when,
                    analysis_id=analysis.id if analysis is not None else None,
                    alert_index=rec.alert_index,
                    line_index=line_index,
                    alert_rule_id=alert.get("rule_id") if alert else None,
                    alert_source=_alert_source(alert) if alert else None,
                    author_id=actor.user_id,
                    created_at=c.now,
                )
            )

        return self._changed(actor, case_id, expected_version, "add_recommendation", body)

    # ============================================================================================
    # RCP
    # ============================================================================================
    def plan_rcp(self, actor: Actor, case_id: str, expected_version: int, plan: RcpPlan) -> CaseView:
        plan = _validate(RcpPlan, plan, "plan")
        if plan.scheduled_at.tzinfo is None:
            raise FieldError("plan.scheduled_at", "give a time zone (e.g. 2026-12-01T14:00:00+01:00)")

        def body(c: _Change) -> None:
            for i, user_id in enumerate(plan.participant_ids):
                user = self._user(c.session, user_id, f"plan.participant_ids.{i}")
                self._add_participant(c.session, actor, c.case, user, c.now)
            c.case.rcp_scheduled_at = plan.scheduled_at
            c.case.rcp_modality = plan.modality
            c.case.rcp_participant_ids = list(dict.fromkeys(plan.participant_ids))

        return self._changed(actor, case_id, expected_version, "plan_rcp", body)

    def record_decision(
        self, actor: Actor, case_id: str, expected_version: int, decision: Decision
    ) -> CaseView:
        """Record (or change, until the RCP is held) the decision on one recommendation."""
        decision = _validate(Decision, decision, "decision")

        def body(c: _Change) -> None:
            rec = c.session.get(Recommendation, decision.recommendation_id)
            if rec is None or rec.case_id != c.case.id:
                raise FieldError("decision.recommendation_id", "no such recommendation in this case")
            rec.decision_outcome = decision.outcome
            rec.decision_comment = decision.comment
            rec.decided_by = actor.user_id
            rec.decided_at = c.now

        return self._changed(actor, case_id, expected_version, "record_decision", body)

    def hold_rcp(self, actor: Actor, case_id: str, expected_version: int) -> CaseView:
        def body(c: _Change) -> None:
            c.case.rcp_held_at = c.now

        return self._changed(actor, case_id, expected_version, "hold_rcp", body)

    # ============================================================================================
    # PPP and follow-up
    # ============================================================================================
    def issue_ppp(self, actor: Actor, case_id: str, expected_version: int) -> CaseView:
        def body(c: _Change) -> None:
            previous = views.latest_ppp(c.session, c.case.id)
            version = previous.version + 1 if previous is not None else 1
            doc = build.build_ppp(self._ppp_inputs(c.session, actor, c.case, c.now, version))
            c.session.add(
                PPPIssue(
                    case_id=c.case.id,
                    version=version,
                    issued_at=c.now,
                    issued_by=actor.user_id,
                    document=build.document_to_json(doc),
                )
            )

        return self._changed(actor, case_id, expected_version, "issue_ppp", body)

    def _ppp_inputs(
        self, session: Session, actor: Actor, case: Case, now: dt.datetime, version: int
    ) -> build.PPPInputs:
        patient = session.get_one(Patient, case.patient_id)
        analysis = views.latest_analysis(session, case.id)
        if analysis is None:
            raise InvalidTransition("cannot issue the PPP: no analysis is attached to the case")
        people = {p.user_id: p for p in views.participants(session, case.id)}

        def professional(user_id: str) -> Professional:
            p = people.get(user_id)
            if p is not None:
                return Professional(name=p.display_name, role=p.role, organisation=p.organisation_name)
            user = session.get_one(User, user_id)
            org = session.get_one(Organisation, user.organisation_id)
            return Professional(name=user.display_name, role=user.role, organisation=org.name)

        recs = tuple(
            build.DecidedRecommendation(
                action=r.action,
                drug=r.drug,
                rationale=r.rationale,
                outcome=r.decision_outcome or "",
                comment=r.decision_comment,
                decided_by=_signed(professional(r.decided_by)) if r.decided_by else "",
                responsible_role=r.responsible_role,
                before=r.before,
                after=r.after,
                actip_problem=r.actip_problem,
                actip_intervention=r.actip_intervention,
                line_index=r.line_index,
                monitoring_what=r.monitoring_what,
                monitoring_when=r.monitoring_when,
                source=(f"{r.alert_rule_id} ({r.alert_source})" if r.alert_source else r.alert_rule_id),
            )
            for r in views.recommendations(session, case.id)
        )
        rcp_day = case.rcp_scheduled_at or case.rcp_held_at or now
        age = analysis.prescription.get("patient", {}).get("age")
        return build.PPPInputs(
            case_id=case.id,
            pathway=case.pathway,
            patient_pseudonym=patient.pseudonym,
            patient_age=age if isinstance(age, int) else None,
            patient_sex=patient.sex,
            rcp_date=rcp_day.date(),
            issued_at=now,
            issued_by=professional(actor.user_id),
            kb_version=analysis.kb_version,
            reviewed_lines=_reviewed_lines(analysis),
            recommendations=recs,
            participants=tuple(
                Professional(name=p.display_name, role=p.role, organisation=p.organisation_name)
                for p in people.values()
            ),
            version=version,
        )

    def record_followup(
        self,
        actor: Actor,
        case_id: str,
        expected_version: int,
        day: int,
        followup: FollowUpInput,
        *,
        engine: Engine | None = None,
    ) -> CaseView:
        """Day 45 or 90; every PPP item needs an entry; a new prescription needs ``engine``."""
        if day not in build.FOLLOWUP_DAYS:
            raise FieldError("day", f"follow-ups are at day {' or '.join(map(str, build.FOLLOWUP_DAYS))}")
        followup = _validate(FollowUpInput, followup, "followup")
        indexes = [item.item_index for item in followup.items]
        if len(set(indexes)) != len(indexes):
            raise FieldError("followup.items", "one entry per PPP item")
        if followup.new_prescription is not None and engine is None:
            raise FieldError(
                "followup.new_prescription", "cannot be re-analysed: no analysis engine available"
            )

        def facts(session: Session, case: Case) -> dict[str, Any]:
            issue = views.latest_ppp(session, case.id)
            return {"plan_item_count": len(issue.document.get("items", ())) if issue is not None else 0}

        def body(c: _Change) -> None:
            count = facts(c.session, c.case)["plan_item_count"]
            for i, index in enumerate(indexes):
                if index >= count:
                    raise FieldError(f"followup.items.{i}.item_index", f"the PPP has {count} item(s)")
            analysis_id = None
            if followup.new_prescription is not None and engine is not None:
                patient = c.session.get_one(Patient, c.case.patient_id)
                analysis_id = self._analyse(
                    c.session,
                    actor,
                    c.case,
                    patient,
                    followup.new_prescription,
                    f"followup_{day}",
                    engine,
                    "followup.new_prescription",
                    c.now,
                ).id
            c.session.add(
                FollowUp(
                    case_id=c.case.id,
                    day=day,
                    recorded_at=c.now,
                    recorded_by=actor.user_id,
                    items=[item.model_dump(mode="json") for item in followup.items],
                    notes=followup.notes,
                    analysis_id=analysis_id,
                )
            )

        return self._changed(
            actor, case_id, expected_version, f"record_followup_{day}", body, payload=followup, facts=facts
        )

    def update_billing(
        self, actor: Actor, case_id: str, expected_version: int, update: BillingUpdate
    ) -> CaseView:
        update = _validate(BillingUpdate, update, "billing")

        def body(c: _Change) -> None:
            if update.convention_signed is not None:
                c.case.convention_signed = update.convention_signed
            if update.participation_agreement_signed is not None:
                c.case.participation_agreement_signed = update.participation_agreement_signed

        return self._changed(actor, case_id, expected_version, "update_billing", body)

    def close(self, actor: Actor, case_id: str, expected_version: int) -> CaseView:
        """Close; an Iatroprev/Optimedoc case needs its billing checklist complete."""

        def facts(session: Session, case: Case) -> dict[str, Any]:
            return {"billing": views.billing(case, views.followups_of(session, case.id))}

        return self._changed(actor, case_id, expected_version, "close", lambda c: None, facts=facts)

    def stop(self, actor: Actor, case_id: str, expected_version: int, reason: str) -> CaseView:
        reason = reason.strip()
        if not reason:
            raise FieldError("reason", "say why the case stops")

        def body(c: _Change) -> None:
            c.case.stop_reason = reason

        return self._changed(actor, case_id, expected_version, "stop", body)

    # ============================================================================================
    # Bilan partagé de médication
    # ============================================================================================
    def _bpm_set(self, c: _Change, **values: Any) -> None:
        # A new dict: the JSON column is not mutation-tracked, assignment is what SQLAlchemy sees.
        c.case.bpm = {**(c.case.bpm or {}), **values}

    def record_information_interview(
        self, actor: Actor, case_id: str, expected_version: int, questionnaire: BpmQuestionnaire
    ) -> CaseView:
        questionnaire = _validate(BpmQuestionnaire, questionnaire, "questionnaire")
        return self._changed(
            actor,
            case_id,
            expected_version,
            "record_information_interview",
            lambda c: self._bpm_set(c, questionnaire=questionnaire.model_dump(mode="json")),
        )

    def record_bpm_analysis(
        self, actor: Actor, case_id: str, expected_version: int, analysis: BpmAnalysisInput, *, engine: Engine
    ) -> CaseView:
        analysis = _validate(BpmAnalysisInput, analysis, "analysis")

        def body(c: _Change) -> None:
            if analysis.new_prescription is not None:
                patient = c.session.get_one(Patient, c.case.patient_id)
                self._analyse(
                    c.session,
                    actor,
                    c.case,
                    patient,
                    analysis.new_prescription,
                    "bpm",
                    engine,
                    "analysis.new_prescription",
                    c.now,
                )
            self._bpm_set(c, conclusions=analysis.conclusions)

        return self._changed(actor, case_id, expected_version, "record_bpm_analysis", body)

    def send_summary(self, actor: Actor, case_id: str, expected_version: int, summary: str) -> CaseView:
        """Record the summary sent to the médecin traitant (also posted in the case's thread)."""
        summary = summary.strip()
        if not summary:
            raise FieldError("summary", "the summary is empty")

        def body(c: _Change) -> None:
            self._bpm_set(c, summary=summary, summary_sent_at=c.now.isoformat())
            c.session.add(
                Message(
                    case_id=c.case.id,
                    author_id=actor.user_id,
                    recipient_roles=["medecin_traitant"],
                    recipient_ids=[],
                    body=summary,
                    sent_at=c.now,
                )
            )

        return self._changed(actor, case_id, expected_version, "send_summary", body)

    def record_advice_interview(
        self, actor: Actor, case_id: str, expected_version: int, notes: str
    ) -> CaseView:
        notes = notes.strip()
        if not notes:
            raise FieldError("notes", "say what was advised")
        return self._changed(
            actor,
            case_id,
            expected_version,
            "record_advice_interview",
            lambda c: self._bpm_set(c, advice_notes=notes),
        )

    def record_adherence_followup(
        self, actor: Actor, case_id: str, expected_version: int, followup: AdherenceFollowUp
    ) -> CaseView:
        followup = _validate(AdherenceFollowUp, followup, "followup")
        return self._changed(
            actor,
            case_id,
            expected_version,
            "record_adherence_followup",
            lambda c: self._bpm_set(c, adherence_followup=followup.model_dump(mode="json")),
        )

    # ============================================================================================
    # Messages
    # ============================================================================================
    def post_message(self, actor: Actor, case_id: str, message: NewMessage) -> MessageView:
        """Record a message (Iatro does not deliver it). Does not change the case's version."""
        message = _validate(NewMessage, message, "message")
        with self.db.transaction() as session:
            case = permissions.visible_case(session, actor, case_id)
            members = {p.user_id for p in views.participants(session, case.id)}
            for i, user_id in enumerate(message.recipient_ids):
                if user_id not in members:
                    raise FieldError(f"message.recipient_ids.{i}", "not a professional of this case")
            now = self.clock()
            row = Message(
                case_id=case.id,
                author_id=actor.user_id,
                recipient_roles=list(message.recipient_roles),
                recipient_ids=list(message.recipient_ids),
                body=message.body,
                sent_at=now,
            )
            session.add(row)
            session.flush()
            audit.record(session, actor, "create", case.id, "message", now)
            return _message_view(row, actor.display_name)

    def list_messages(self, actor: Actor, case_id: str) -> tuple[MessageView, ...]:
        with self.db.transaction() as session:
            case = permissions.visible_case(session, actor, case_id)
            audit.record(session, actor, "read", case.id, "messages", self.clock())
            rows = session.execute(
                select(Message, User.display_name)
                .join(User, User.id == Message.author_id)
                .where(Message.case_id == case.id)
                .order_by(Message.sent_at, Message.id)
            ).all()
            return tuple(_message_view(m, name) for m, name in rows)


# ================================================================================================
# Helpers
# ================================================================================================
def _message_view(m: Message, author_name: str) -> MessageView:
    return MessageView(
        id=m.id,
        case_id=m.case_id,
        author_id=m.author_id,
        author_name=author_name,
        recipient_roles=tuple(m.recipient_roles),
        recipient_ids=tuple(m.recipient_ids),
        body=m.body,
        sent_at=m.sent_at,
    )


def _with_patient_facts(prescription: Prescription, patient: Patient, today: dt.date) -> Prescription:
    """Give the engine the pseudonymised patient's age and sex when the prescription lacks them."""
    updates: dict[str, Any] = {}
    if prescription.patient.age is None and patient.birth_year is not None:
        year = (prescription.date or today).year
        # The birth year alone gives the age at the end of the year; a year is the precision we keep.
        updates["age"] = year - patient.birth_year
    if prescription.patient.sex is None and patient.sex is not None:
        updates["sex"] = patient.sex
    if not updates:
        return prescription
    return prescription.model_copy(update={"patient": prescription.patient.model_copy(update=updates)})


def _eligibility(session: Session, case: Case) -> dict[str, Any] | None:
    """The eligibility of the latest analysis for the case's pathway (value, reasons, sources)."""
    analysis = views.latest_analysis(session, case.id)
    if analysis is None:
        return None
    section = analysis.report.get("eligibility", {})
    key = ELIGIBILITY_KEY[case.pathway]
    return {
        "analysis_id": analysis.id,
        "kb_version": analysis.kb_version,
        "key": key,
        "eligible": section.get(key),
        "reasons": section.get("reasons", {}).get(key, []),
        "doors": section.get("doors", {}),
    }


def _alert_source(alert: dict[str, Any]) -> str:
    source = str(alert.get("source", ""))
    edition = alert.get("edition")
    return f"{source}, {edition}" if edition and str(edition) not in source else source


def _line_names(line: dict[str, Any]) -> set[str]:
    names = {str(line.get("input", ""))}
    product = line.get("product") or {}
    if product.get("name"):
        names.add(str(product["name"]))
    names.update(str(s.get("name", "")) for s in line.get("substances", ()))
    return {n.strip().casefold() for n in names if n.strip()}


def _line_index(rec: NewRecommendation, lines: list[dict[str, Any]]) -> int | None:
    if rec.line_index is not None:
        if rec.line_index >= len(lines):
            raise FieldError("recommendation.line_index", f"the medication list has {len(lines)} line(s)")
        return rec.line_index
    if rec.action == "start":
        return None
    wanted = rec.drug.strip().casefold()
    matches = [i for i, line in enumerate(lines) if wanted in _line_names(line)]
    if len(matches) == 1:
        return matches[0]
    if rec.action in ("stop", "change"):
        said = "several lines" if matches else "no line"
        raise FieldError("recommendation.line_index", f"{rec.drug!r} matches {said}; give the line index")
    return None


def _reviewed_lines(analysis: Analysis) -> tuple[build.ReviewedLine, ...]:
    inputs = analysis.prescription.get("lines", [])
    out = []
    for i, line in enumerate(analysis.report.get("lines", [])):
        product = line.get("product") or {}
        substances = line.get("substances") or []
        given = inputs[i] if i < len(inputs) else {}
        posology = given.get("posology") or (line.get("posology") or {}).get("text")
        out.append(
            build.ReviewedLine(
                drug=product.get("name") or line.get("input", ""),
                posology=posology if posology != line.get("input") else None,
                cis=product.get("cis"),
                atc=substances[0].get("atc") if len(substances) == 1 else None,
            )
        )
    return tuple(out)


def _signed(person: Professional) -> str:
    # The plan is read by people: the role as a French label, not its code.
    return f"{person.name} ({labels.role_label(person.role)})"
