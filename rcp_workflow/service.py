"""The public API of the RCP workflow: what the HTTP layer and the CLI call.

    db = rcp_workflow.db.open_database(url)      # engine + sessions; rcp_workflow.db.migrate(url) first
    auth = AuthService(db)                       # login, sessions, API tokens -> Actor
    work = WorkflowService(db)                   # cases, transitions, recommendations, PPP, follow-ups
    rcp_workflow.demo.seed_database(db)          # demo organisations and users (local use only)

Every method runs in one database transaction of its own. Every call that changes a case takes the
``expected_version`` the caller read (HTTP ``If-Match``) and raises :class:`~iatro.errors.ConflictError`
when the case changed since; on success the case's version goes up by one (the returned view carries it).

Errors (all from :mod:`iatro.errors`):
- ``FieldError`` (an InputError): a payload field is invalid; ``field`` names it.
- ``PermissionDenied``: the actor may not see the case or may not perform the action with their role.
  An unknown case id raises it too, so that ids cannot be probed.
- ``InvalidTransition``: the case's state does not allow the action, or a precondition is not met
  (the message gives the state, the action, the allowed actions, or the unmet item).
- ``ConflictError``: ``expected_version`` is stale.

Authentication failures are not errors: ``login`` and ``resolve_*`` return ``None``.
"""

from __future__ import annotations

from rcp_workflow.auth import AuthService
from rcp_workflow.schemas import (
    Actor,
    AdherenceFollowUp,
    AnalysisView,
    ApiToken,
    AuditEntry,
    BillingChecklist,
    BillingUpdate,
    BpmAnalysisInput,
    BpmQuestionnaire,
    CaseSummary,
    CaseView,
    Consent,
    Decision,
    DueFollowUp,
    FollowUpInput,
    Inclusion,
    ItemFollowUp,
    LoginSession,
    MessageView,
    NewCase,
    NewMessage,
    NewRecommendation,
    OrganisationView,
    PatientIdentityInput,
    PatientIdentityView,
    PatientInput,
    ProfessionalView,
    RcpPlan,
)
from rcp_workflow.workflow import WorkflowService

__all__ = [
    "Actor",
    "AdherenceFollowUp",
    "AnalysisView",
    "ApiToken",
    "AuditEntry",
    "AuthService",
    "BillingChecklist",
    "BillingUpdate",
    "BpmAnalysisInput",
    "BpmQuestionnaire",
    "CaseSummary",
    "CaseView",
    "Consent",
    "Decision",
    "DueFollowUp",
    "FollowUpInput",
    "Inclusion",
    "ItemFollowUp",
    "LoginSession",
    "MessageView",
    "NewCase",
    "NewMessage",
    "NewRecommendation",
    "OrganisationView",
    "PatientIdentityInput",
    "PatientIdentityView",
    "PatientInput",
    "ProfessionalView",
    "RcpPlan",
    "WorkflowService",
]
