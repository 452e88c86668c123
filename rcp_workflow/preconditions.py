"""The preconditions named in the transition table (``states.TRANSITIONS``).

Each takes the facts it needs and returns ``None`` when met, or a sentence saying what is missing;
the service raises InvalidTransition with that sentence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rcp_workflow.models import Analysis, Case, Recommendation
from rcp_workflow.schemas import BillingChecklist, FollowUpInput, Inclusion

# The eligibility key of the analysis report for each pathway.
ELIGIBILITY_KEY = {"iatroprev": "iatroprev", "optimedoc": "optimedoc", "bpm": "bilan_partage_medication"}


@dataclass(frozen=True, slots=True)
class Facts:
    session: Session
    case: Case
    payload: Any
    eligibility: dict[str, Any] | None = None  # from the latest analysis, for inclusion
    plan_item_count: int = 0  # items of the issued PPP, for follow-ups
    billing: BillingChecklist | None = None


def eligible_or_justified(f: Facts) -> str | None:
    inclusion: Inclusion = f.payload
    eligible = (f.eligibility or {}).get("eligible")
    if eligible is True or inclusion.eligibility_justification:
        return None
    said = "not eligible" if eligible is False else "eligibility undecided"
    return f"the analysis says {said} for {f.case.pathway}; give eligibility_justification to include anyway"


def consent_recorded(f: Facts) -> str | None:
    inclusion: Inclusion = f.payload
    if not inclusion.consent.informed:
        return f"the {inclusion.consent.given_by} has not been informed"
    if not inclusion.consent.consented:
        return f"the {inclusion.consent.given_by} has not consented"
    return None


def hospital_door_agreements(f: Facts) -> str | None:
    inclusion: Inclusion = f.payload
    if inclusion.entry_door != "hospital":
        return None
    missing = [
        who
        for who, agreed in (
            ("médecin traitant", inclusion.medecin_traitant_agreed),
            ("pharmacien d'officine", inclusion.pharmacien_officine_agreed),
        )
        if not agreed
    ]
    return f"hospital door: agreement missing from the {' and the '.join(missing)}" if missing else None


def analysis_attached(f: Facts) -> str | None:
    count = f.session.scalar(select(func.count()).select_from(Analysis).where(Analysis.case_id == f.case.id))
    return None if count else "no analysis is attached to the case"


def has_recommendation(f: Facts) -> str | None:
    count = f.session.scalar(
        select(func.count()).select_from(Recommendation).where(Recommendation.case_id == f.case.id)
    )
    return None if count else "the medication review has no recommendation yet"


def every_recommendation_decided(f: Facts) -> str | None:
    undecided = f.session.scalars(
        select(Recommendation.position)
        .where(Recommendation.case_id == f.case.id, Recommendation.decision_outcome.is_(None))
        .order_by(Recommendation.position)
    ).all()
    if undecided:
        return f"recommendation(s) {', '.join(f'#{p}' for p in undecided)} have no decision yet"
    return None


def every_plan_item_followed(f: Facts) -> str | None:
    followup: FollowUpInput = f.payload
    given = {item.item_index for item in followup.items}
    missing = [i for i in range(f.plan_item_count) if i not in given]
    if missing:
        return f"no follow-up given for PPP item(s) {', '.join(str(i) for i in missing)}"
    return None


def billing_checklist_complete(f: Facts) -> str | None:
    if f.billing is None:
        return "no billing checklist"
    missing = f.billing.missing()
    return f"billing checklist incomplete: {', '.join(missing)} missing" if missing else None


PRECONDITIONS: dict[str, Callable[[Facts], str | None]] = {
    fn.__name__: fn
    for fn in (
        eligible_or_justified,
        consent_recorded,
        hospital_door_agreements,
        analysis_attached,
        has_recommendation,
        every_recommendation_decided,
        every_plan_item_followed,
        billing_checklist_complete,
    )
}
