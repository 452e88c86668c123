"""Read-only views of a case, built from the database inside the caller's transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rcp_workflow import actip, states
from rcp_workflow.models import (
    Analysis,
    Case,
    CaseParticipant,
    FollowUp,
    Organisation,
    Patient,
    PatientIdentity,
    PPPIssue,
    Recommendation,
    User,
)
from rcp_workflow.ppp.build import FOLLOWUP_DAYS
from rcp_workflow.schemas import (
    Actor,
    AdherenceFollowUp,
    AnalysisView,
    BillingChecklist,
    BpmQuestionnaire,
    BpmView,
    CaseSummary,
    CaseView,
    Consent,
    DecisionView,
    FollowUpView,
    ItemFollowUpView,
    ParticipantView,
    PatientView,
    PPPInfo,
    RcpView,
    RecommendationView,
)


def latest_ppp(session: Session, case_id: str) -> PPPIssue | None:
    return session.scalar(
        select(PPPIssue).where(PPPIssue.case_id == case_id).order_by(PPPIssue.version.desc())
    )


def latest_analysis(session: Session, case_id: str) -> Analysis | None:
    return session.scalar(
        select(Analysis).where(Analysis.case_id == case_id).order_by(Analysis.seq.desc()).limit(1)
    )


def followups_of(session: Session, case_id: str) -> dict[int, FollowUp]:
    return {f.day: f for f in session.scalars(select(FollowUp).where(FollowUp.case_id == case_id))}


def due_dates(ppp: PPPIssue | None) -> dict[int, dt.date]:
    if ppp is None:
        return {}
    return {day: ppp.issued_at.date() + dt.timedelta(days=day) for day in FOLLOWUP_DAYS}


def billing(case: Case, followups: dict[int, FollowUp]) -> BillingChecklist:
    # The follow-up proofs are the follow-ups recorded in Iatro at day 45 and day 90.
    return BillingChecklist(
        convention_signed=case.convention_signed,
        participation_agreement_signed=case.participation_agreement_signed,
        followup_45_proof=45 in followups,
        followup_90_proof=90 in followups,
    )


def next_due(session: Session, case: Case) -> tuple[int, dt.date] | None:
    """The next follow-up to record (day, due date), when the case waits for one."""
    if case.pathway not in states.RCP_PATHWAYS or case.state not in ("ppp_issued", "followup_45"):
        return None
    day = 45 if case.state == "ppp_issued" else 90
    due = due_dates(latest_ppp(session, case.id)).get(day)
    return (day, due) if due is not None else None


def participants(session: Session, case_id: str) -> tuple[ParticipantView, ...]:
    rows = session.execute(
        select(User, Organisation)
        .join(CaseParticipant, CaseParticipant.user_id == User.id)
        .join(Organisation, Organisation.id == User.organisation_id)
        .where(CaseParticipant.case_id == case_id)
        .order_by(CaseParticipant.added_at, User.display_name)
    ).all()
    return tuple(
        ParticipantView(
            user_id=u.id,
            display_name=u.display_name,
            role=u.role,
            organisation_id=o.id,
            organisation_name=o.name,
        )
        for u, o in rows
    )


def _names(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.display_name).where(User.id.in_(sorted(ids))))
    return {user_id: name for user_id, name in rows}


def recommendation_view(r: Recommendation, names: dict[str, str]) -> RecommendationView:
    decision = None
    if r.decision_outcome is not None and r.decided_by is not None and r.decided_at is not None:
        decision = DecisionView(
            outcome=r.decision_outcome,
            comment=r.decision_comment,
            decided_by=r.decided_by,
            decided_by_name=names.get(r.decided_by, r.decided_by),
            decided_at=r.decided_at,
        )
    return RecommendationView(
        id=r.id,
        position=r.position,
        action=r.action,
        drug=r.drug,
        rationale=r.rationale,
        actip_problem=r.actip_problem,
        actip_problem_label=actip.lookup("problem", r.actip_problem, field="actip_problem").label,
        actip_intervention=r.actip_intervention,
        actip_intervention_label=actip.lookup(
            "intervention", r.actip_intervention, field="actip_intervention"
        ).label,
        responsible_role=r.responsible_role,
        before=r.before,
        after=r.after,
        monitoring_what=r.monitoring_what,
        monitoring_when=r.monitoring_when,
        alert_index=r.alert_index,
        line_index=r.line_index,
        alert_rule_id=r.alert_rule_id,
        alert_source=r.alert_source,
        author_id=r.author_id,
        created_at=r.created_at,
        decision=decision,
    )


def recommendations(session: Session, case_id: str) -> tuple[Recommendation, ...]:
    return tuple(
        session.scalars(
            select(Recommendation).where(Recommendation.case_id == case_id).order_by(Recommendation.position)
        )
    )


def _bpm_view(data: dict[str, Any] | None) -> BpmView | None:
    if data is None:
        return None
    questionnaire = data.get("questionnaire")
    adherence = data.get("adherence_followup")
    sent = data.get("summary_sent_at")
    return BpmView(
        questionnaire=BpmQuestionnaire.model_validate(questionnaire) if questionnaire else None,
        conclusions=data.get("conclusions"),
        summary=data.get("summary"),
        summary_sent_at=dt.datetime.fromisoformat(sent) if sent else None,
        advice_notes=data.get("advice_notes"),
        adherence_followup=AdherenceFollowUp.model_validate(adherence) if adherence else None,
    )


def case_view(session: Session, actor: Actor, case: Case) -> CaseView:
    patient = session.get_one(Patient, case.patient_id)
    org = session.get_one(Organisation, case.organisation_id)
    recs = recommendations(session, case.id)
    names = _names(session, {r.decided_by for r in recs if r.decided_by})
    analyses = session.scalars(select(Analysis).where(Analysis.case_id == case.id).order_by(Analysis.seq))
    ppp = latest_ppp(session, case.id)
    done = followups_of(session, case.id)
    followups = tuple(
        FollowUpView(
            day=day,
            due=due,
            recorded_at=done[day].recorded_at if day in done else None,
            recorded_by=done[day].recorded_by if day in done else None,
            items=tuple(ItemFollowUpView.model_validate(i) for i in done[day].items) if day in done else (),
            notes=done[day].notes if day in done else None,
            analysis_id=done[day].analysis_id if day in done else None,
        )
        for day, due in due_dates(ppp).items()
    )
    rcp = None
    if case.rcp_scheduled_at is not None and case.rcp_modality is not None:
        rcp = RcpView(
            scheduled_at=case.rcp_scheduled_at,
            modality=case.rcp_modality,
            participant_ids=tuple(case.rcp_participant_ids or ()),
            held_at=case.rcp_held_at,
        )
    has_identity = session.get(PatientIdentity, patient.id) is not None
    return CaseView(
        id=case.id,
        version=case.version,
        pathway=case.pathway,
        state=case.state,
        patient=PatientView(
            id=patient.id,
            pseudonym=patient.pseudonym,
            birth_year=patient.birth_year,
            sex=patient.sex,
            has_identity=has_identity,
        ),
        organisation_id=org.id,
        organisation_name=org.name,
        created_at=case.created_at,
        created_by=case.created_by,
        updated_at=case.updated_at,
        entry_door=case.entry_door,
        eligibility=case.eligibility,
        eligibility_justification=case.eligibility_justification,
        consent=Consent.model_validate(case.consent) if case.consent else None,
        medecin_traitant_agreed=case.medecin_traitant_agreed,
        pharmacien_officine_agreed=case.pharmacien_officine_agreed,
        participants=participants(session, case.id),
        analyses=tuple(
            AnalysisView(
                id=a.id,
                kind=a.kind,
                kb_version=a.kb_version,
                created_at=a.created_at,
                created_by=a.created_by,
                prescription=a.prescription,
                report=a.report,
            )
            for a in analyses
        ),
        recommendations=tuple(recommendation_view(r, names) for r in recs),
        rcp=rcp,
        ppp=(
            PPPInfo(
                version=ppp.version,
                issued_at=ppp.issued_at,
                issued_by=ppp.issued_by,
                item_count=len(ppp.document.get("items", ())),
            )
            if ppp is not None
            else None
        ),
        followups=followups,
        billing=billing(case, done),
        bpm=_bpm_view(case.bpm),
        stop_reason=case.stop_reason,
        allowed_actions=states.allowed_actions(case.pathway, case.state, actor.role),
    )


def case_summary(session: Session, case: Case) -> CaseSummary:
    patient = session.get_one(Patient, case.patient_id)
    org = session.get_one(Organisation, case.organisation_id)
    due = next_due(session, case)
    return CaseSummary(
        id=case.id,
        version=case.version,
        pathway=case.pathway,
        state=case.state,
        patient_pseudonym=patient.pseudonym,
        organisation_id=org.id,
        organisation_name=org.name,
        created_at=case.created_at,
        updated_at=case.updated_at,
        next_followup_due=due[1] if due else None,
    )
