"""Issue 8: the transition table, every valid transition performed, every invalid one refused.

The invalid set is generated from the table: for every pathway and state, each action without a row
must raise InvalidTransition, whatever the payload; the case is left untouched (same version).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from iatro.errors import InvalidTransition
from rcp_workflow import states
from rcp_workflow.schemas import (
    AdherenceFollowUp,
    BillingUpdate,
    BpmAnalysisInput,
    Decision,
    FollowUpInput,
    Inclusion,
    ItemFollowUp,
    RcpPlan,
)
from rcp_workflow.workflow import WorkflowService

from .pathway import CONSENT, QUESTIONNAIRE, RECOMMENDATIONS, add_recommendations, case_in, decide


def test_table_is_consistent() -> None:
    seen = set()
    for row in states.TRANSITIONS:
        key = (tuple(sorted(row.pathways)), row.source, row.action)
        assert key not in seen, f"duplicate row {key}"
        seen.add(key)
        assert row.source not in states.FINAL_STATES
        assert row.roles <= set(states.ROLES)
        assert row.to in states.STATES
    # stop is allowed from every non-final state of every pathway
    for pathway in states.PATHWAYS:
        reachable = {t.source for t in states.TRANSITIONS if pathway in t.pathways}
        for state in reachable:
            assert states.find(pathway, state, "stop") is not None


def _reachable(pathway: str) -> list[str]:
    sources = [t.source for t in states.TRANSITIONS if pathway in t.pathways]
    return [*dict.fromkeys(sources), "closed", "stopped"]


def _invoke(action: str) -> Callable[[WorkflowService, dict, object, object], object]:
    """A call of ``action`` with a payload valid in itself, so only the state can refuse it."""
    when = dt.datetime(2026, 3, 10, 14, tzinfo=dt.UTC)
    calls: dict[str, Callable] = {
        "include": lambda s, a, c, e: s.include(
            a, c.id, c.version, Inclusion(entry_door="town", consent=CONSENT)
        ),
        "start_review": lambda s, a, c, e: s.start_review(a, c.id, c.version),
        "attach_analysis": lambda s, a, c, e: s.attach_analysis(
            a, c.id, c.version, c.analyses[-1].prescription, engine=e
        ),
        "add_recommendation": lambda s, a, c, e: s.add_recommendation(a, c.id, c.version, RECOMMENDATIONS[2]),
        "plan_rcp": lambda s, a, c, e: s.plan_rcp(
            a, c.id, c.version, RcpPlan(scheduled_at=when, modality="phone", participant_ids=(a.user_id,))
        ),
        "record_decision": lambda s, a, c, e: s.record_decision(
            a,
            c.id,
            c.version,
            Decision(
                recommendation_id=c.recommendations[0].id if c.recommendations else "x", outcome="accepted"
            ),
        ),
        "hold_rcp": lambda s, a, c, e: s.hold_rcp(a, c.id, c.version),
        "issue_ppp": lambda s, a, c, e: s.issue_ppp(a, c.id, c.version),
        "record_followup_45": lambda s, a, c, e: s.record_followup(a, c.id, c.version, 45, _every_item(c)),
        "record_followup_90": lambda s, a, c, e: s.record_followup(a, c.id, c.version, 90, _every_item(c)),
        "update_billing": lambda s, a, c, e: s.update_billing(
            a, c.id, c.version, BillingUpdate(convention_signed=True)
        ),
        "close": lambda s, a, c, e: s.close(a, c.id, c.version),
        "stop": lambda s, a, c, e: s.stop(a, c.id, c.version, "raison"),
        "add_participant": lambda s, a, c, e: s.add_participant(a, c.id, c.version, a.user_id),
        "record_information_interview": lambda s, a, c, e: s.record_information_interview(
            a, c.id, c.version, QUESTIONNAIRE
        ),
        "record_bpm_analysis": lambda s, a, c, e: s.record_bpm_analysis(
            a, c.id, c.version, BpmAnalysisInput(conclusions="RAS"), engine=e
        ),
        "send_summary": lambda s, a, c, e: s.send_summary(a, c.id, c.version, "synthèse"),
        "record_advice_interview": lambda s, a, c, e: s.record_advice_interview(
            a, c.id, c.version, "conseils"
        ),
        "record_adherence_followup": lambda s, a, c, e: s.record_adherence_followup(
            a, c.id, c.version, AdherenceFollowUp(adherence="good")
        ),
    }
    assert set(calls) == set(states.ACTIONS)
    return calls[action]


@pytest.mark.parametrize("pathway", ["iatroprev", "bpm"])
def test_every_invalid_action_is_refused(service: WorkflowService, actors, engine, pathway: str) -> None:
    actor = actors["pharmacien.officine"] if pathway == "bpm" else actors["geriatre"]
    refused = 0
    for state in _reachable(pathway):
        case = case_in(service, actors, engine, pathway, state)
        for action in states.ACTIONS:
            if states.find(pathway, state, action) is not None:
                continue
            with pytest.raises(InvalidTransition) as err:
                _invoke(action)(service, actor, case, engine)
            message = str(err.value)
            assert repr(state) in message and repr(action) in message and "allowed actions" in message
            refused += 1
        assert service.get_case(actor, case.id).version == case.version  # nothing changed
    assert refused > 100


def _every_item(case) -> FollowUpInput:
    count = case.ppp.item_count if case.ppp else 0
    return FollowUpInput(items=tuple(ItemFollowUp(item_index=i, implemented=True) for i in range(count)))


# Optimedoc shares every row with Iatroprev (the rows name both pathways); its whole pathway runs in
# test_issue8_pathway.
@pytest.mark.parametrize("pathway", ["iatroprev", "bpm"])
def test_every_valid_transition_moves_to_its_target(
    service: WorkflowService, actors, engine, pathway
) -> None:
    """Each row of the table, performed from its source state by each role it allows, leads to its target."""
    rows = [t for t in states.TRANSITIONS if pathway in t.pathways]
    for row in rows:
        case = case_in(service, actors, engine, pathway, row.source)
        if row.action == "plan_rcp":
            case = add_recommendations(service, actors, case, engine)
        if row.action == "hold_rcp":
            case = decide(service, actors, case, engine)
        performers = [a for a in actors.values() if a.role in row.roles and _sees(service, a, case.id)]
        assert performers, row
        for actor in performers:
            if row.to == row.source or actor is performers[0]:
                current = service.get_case(actor, case.id)
                after = _invoke(row.action)(service, actor, current, engine)
                assert after.state == row.to, row
                assert after.version == current.version + 1
            if row.to != row.source:
                break  # the case has moved on; one performer is enough for a moving transition


def _sees(service: WorkflowService, actor, case_id: str) -> bool:
    return any(c.id == case_id for c in service.list_cases(actor))
