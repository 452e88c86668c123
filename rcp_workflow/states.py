"""The states of a case and the transition table, kept as data.

Each row says: in which pathways, from which state, which action leads to which state, which roles
may perform it and which preconditions the service checks (by name, see ``service/preconditions``).
A row whose ``to`` equals its ``source`` is an action that changes the case without moving it (adding a
recommendation, recording a decision…): it is in the table so that "what may this person do now" has
one answer, and so that the tests can generate every refused (state, action) pair from the table.

``stop`` is allowed from every non-final state of every pathway; its rows are generated below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Pathway = Literal["iatroprev", "optimedoc", "bpm"]
PATHWAYS: tuple[Pathway, ...] = ("iatroprev", "optimedoc", "bpm")
RCP_PATHWAYS: frozenset[str] = frozenset({"iatroprev", "optimedoc"})

Role = Literal[
    "medecin_traitant", "pharmacien_officine", "pharmacien_hospitalier", "geriatre", "coordinateur"
]
ROLES: tuple[Role, ...] = (
    "medecin_traitant",
    "pharmacien_officine",
    "pharmacien_hospitalier",
    "geriatre",
    "coordinateur",
)
# The pathway team of a hospital: they see every Iatroprev/Optimedoc case of their hospital.
HOSPITAL_TEAM: frozenset[str] = frozenset({"pharmacien_hospitalier", "geriatre", "coordinateur"})
_ALL: frozenset[str] = frozenset(ROLES)
_CLINICAL_HOSPITAL: frozenset[str] = frozenset({"pharmacien_hospitalier", "geriatre"})
_OFFICINE: frozenset[str] = frozenset({"pharmacien_officine"})

State = Literal[
    # Iatroprev / Optimedoc
    "reperage",
    "inclusion",
    "medication_review",
    "rcp_planned",
    "rcp_held",
    "ppp_issued",
    "followup_45",
    "followup_90",
    # Bilan partagé de médication
    "information_interview",
    "bpm_analysis",
    "summary_sent",
    "advice_interview",
    "adherence_followup",
    # Final
    "closed",
    "stopped",
]
FINAL_STATES: frozenset[str] = frozenset({"closed", "stopped"})
INITIAL_STATE: State = "reperage"

Action = Literal[
    "include",
    "start_review",
    "attach_analysis",
    "add_recommendation",
    "plan_rcp",
    "record_decision",
    "hold_rcp",
    "issue_ppp",
    "record_followup_45",
    "record_followup_90",
    "update_billing",
    "close",
    "stop",
    "add_participant",
    "record_information_interview",
    "record_bpm_analysis",
    "send_summary",
    "record_advice_interview",
    "record_adherence_followup",
]


@dataclass(frozen=True, slots=True)
class Transition:
    pathways: frozenset[str]
    source: str
    action: str
    to: str
    roles: frozenset[str]
    preconditions: tuple[str, ...] = ()


def _rcp(source: str, action: str, to: str, roles: frozenset[str], *pre: str) -> Transition:
    return Transition(RCP_PATHWAYS, source, action, to, roles, pre)


def _bpm(source: str, action: str, to: str, *pre: str) -> Transition:
    return Transition(frozenset({"bpm"}), source, action, to, _OFFICINE, pre)


_RCP_OPEN = ("reperage", "inclusion", "medication_review", "rcp_planned", "rcp_held", "ppp_issued",
             "followup_45", "followup_90")  # fmt: skip
_BPM_OPEN = ("reperage", "inclusion", "information_interview", "bpm_analysis", "summary_sent",
             "advice_interview", "adherence_followup")  # fmt: skip

_INCLUDERS = frozenset({"coordinateur", "geriatre", "pharmacien_hospitalier", "medecin_traitant"})
_BILLING = frozenset({"coordinateur", "pharmacien_hospitalier", "geriatre"})
_STOPPERS = frozenset({"coordinateur", "geriatre", "pharmacien_hospitalier", "medecin_traitant"})

TRANSITIONS: tuple[Transition, ...] = (
    # --- Iatroprev / Optimedoc ------------------------------------------------------------------
    _rcp("reperage", "include", "inclusion", _INCLUDERS,
         "eligible_or_justified", "consent_recorded", "hospital_door_agreements"),
    _rcp("inclusion", "start_review", "medication_review", _CLINICAL_HOSPITAL, "analysis_attached"),
    _rcp("medication_review", "attach_analysis", "medication_review", _CLINICAL_HOSPITAL),
    _rcp("medication_review", "add_recommendation", "medication_review", _CLINICAL_HOSPITAL),
    _rcp("medication_review", "plan_rcp", "rcp_planned", _BILLING, "has_recommendation"),
    _rcp("rcp_planned", "add_recommendation", "rcp_planned", _CLINICAL_HOSPITAL),
    _rcp("rcp_planned", "record_decision", "rcp_planned", _ALL),
    _rcp("rcp_planned", "hold_rcp", "rcp_held", _BILLING, "every_recommendation_decided"),
    _rcp("rcp_held", "issue_ppp", "ppp_issued", _CLINICAL_HOSPITAL),
    _rcp("ppp_issued", "record_followup_45", "followup_45", _ALL, "every_plan_item_followed"),
    _rcp("followup_45", "record_followup_90", "followup_90", _ALL, "every_plan_item_followed"),
    _rcp("followup_90", "close", "closed", _BILLING, "billing_checklist_complete"),
    *(_rcp(s, "update_billing", s, _BILLING) for s in _RCP_OPEN),
    *(_rcp(s, "add_participant", s, _BILLING | {"medecin_traitant"}) for s in _RCP_OPEN),
    # --- Bilan partagé de médication (community pharmacist) -------------------------------------
    _bpm("reperage", "include", "inclusion", "eligible_or_justified", "consent_recorded"),
    _bpm("inclusion", "record_information_interview", "information_interview"),
    _bpm("information_interview", "record_bpm_analysis", "bpm_analysis", "analysis_attached"),
    _bpm("bpm_analysis", "send_summary", "summary_sent"),
    _bpm("summary_sent", "record_advice_interview", "advice_interview"),
    _bpm("advice_interview", "record_adherence_followup", "adherence_followup"),
    _bpm("adherence_followup", "close", "closed"),
    *(_bpm(s, "add_participant", s) for s in _BPM_OPEN),
    # --- Stop, from every non-final state ---------------------------------------------------------
    *(_rcp(s, "stop", "stopped", _STOPPERS) for s in _RCP_OPEN),
    *(_bpm(s, "stop", "stopped") for s in _BPM_OPEN),
)  # fmt: skip

ACTIONS: tuple[str, ...] = tuple(dict.fromkeys(t.action for t in TRANSITIONS))
STATES: tuple[str, ...] = tuple(dict.fromkeys([*_RCP_OPEN, *_BPM_OPEN, "closed", "stopped"]))


def rows_for(pathway: str, state: str) -> tuple[Transition, ...]:
    """The rows that start from ``state`` in ``pathway`` (whatever the role)."""
    return tuple(t for t in TRANSITIONS if pathway in t.pathways and t.source == state)


def find(pathway: str, state: str, action: str) -> Transition | None:
    return next((t for t in rows_for(pathway, state) if t.action == action), None)


def allowed_actions(pathway: str, state: str, role: str) -> tuple[str, ...]:
    """What a person with ``role`` may do on a case in ``state`` (preconditions not checked)."""
    return tuple(t.action for t in rows_for(pathway, state) if role in t.roles)
