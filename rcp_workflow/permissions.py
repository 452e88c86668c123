"""Who may see a case, in one place.

A professional sees a case when they are one of its participants, or when they belong to the
organisation team of its pathway: the hospital team (pharmacien hospitalier, gériatre, coordinateur)
of the case's hospital for Iatroprev/Optimedoc, the pharmacists of the case's officine for a BPM.
A community pharmacist therefore never sees another pharmacy's patients: the BPM team rule only covers
their own officine, and a case accepts pharmacists of one officine only (``check_officine``).
Unknown and invisible cases get the same answer (PermissionDenied), so case ids cannot be probed.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, false, or_, select
from sqlalchemy.orm import Session

from iatro.errors import PermissionDenied
from rcp_workflow.models import Case, CaseParticipant, User
from rcp_workflow.schemas import Actor
from rcp_workflow.states import HOSPITAL_TEAM, RCP_PATHWAYS

NOT_VISIBLE = "no such case, or you are not allowed to see it"


def _team_clause(actor: Actor) -> ColumnElement[bool]:
    if actor.organisation_kind == "hospital" and actor.role in HOSPITAL_TEAM:
        return and_(Case.organisation_id == actor.organisation_id, Case.pathway.in_(sorted(RCP_PATHWAYS)))
    if actor.organisation_kind == "officine" and actor.role == "pharmacien_officine":
        return and_(Case.organisation_id == actor.organisation_id, Case.pathway == "bpm")
    return false()


def visible_cases(actor: Actor) -> ColumnElement[bool]:
    """A filter on ``Case`` selecting what the actor may see."""
    participant = exists().where(CaseParticipant.case_id == Case.id, CaseParticipant.user_id == actor.user_id)
    return or_(participant, _team_clause(actor))


def can_see(session: Session, actor: Actor, case_id: str) -> bool:
    return session.scalar(select(Case.id).where(Case.id == case_id, visible_cases(actor))) is not None


def visible_case(session: Session, actor: Actor, case_id: str) -> Case:
    """The case, or PermissionDenied when it does not exist or the actor may not see it."""
    case = session.scalar(select(Case).where(Case.id == case_id, visible_cases(actor)))
    if case is None:
        raise PermissionDenied(NOT_VISIBLE)
    return case


def require_role(actor: Actor, roles: frozenset[str], action: str) -> None:
    if actor.role not in roles:
        raise PermissionDenied(
            f"a {actor.role} may not perform {action!r} on this case; "
            f"roles allowed: {', '.join(sorted(roles))}"
        )


def check_officine(session: Session, case: Case, user: User) -> None:
    """A case holds the pharmacists of one officine only: refuse a second pharmacy's pharmacist."""
    if user.role != "pharmacien_officine":
        return
    if case.pathway == "bpm" and user.organisation_id != case.organisation_id:
        raise PermissionDenied("a bilan partagé de médication stays within its officine")
    others = session.scalars(
        select(User.organisation_id)
        .join(CaseParticipant, CaseParticipant.user_id == User.id)
        .where(CaseParticipant.case_id == case.id, User.role == "pharmacien_officine")
    ).all()
    if any(org != user.organisation_id for org in others):
        raise PermissionDenied("this case already has the pharmacist of another officine")
