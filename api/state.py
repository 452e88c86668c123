"""What the application builds once at startup and shares between requests (read-only after that).

Loading can fail (no KB, a corrupt one): the process then still starts, ``/health`` answers and
``/ready`` and every KB-backed route answer 503 with the reason, rather than the server refusing to
start and leaving an orchestrator nothing to probe.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from api.cds import CdsServices, FeedbackLog
from api.fhir.inbound import FhirReader
from api.gc_policy import FreezeAfterFullCollection
from api.report_json import ReportJson
from api.search import DrugIndex
from iatro.analysis import Engine
from iatro.errors import KnowledgeBaseError
from iatro.kb.stats import coverage
from iatro.kb.store import KnowledgeBase, load_kb
from iatro.settings import Settings
from rcp_workflow.db import Database
from rcp_workflow.service import AuthService, WorkflowService

log = logging.getLogger("iatro.api")


@dataclass
class Loaded:
    kb: KnowledgeBase
    engine: Engine
    drugs: DrugIndex
    fhir: FhirReader
    cds: CdsServices
    coverage: dict[str, Any]
    reports: ReportJson = field(default_factory=ReportJson)  # report -> JSON bytes, with its memo


@dataclass
class Workflow:
    """The RCP workflow's database and services, opened in the lifespan."""

    db: Database
    auth: AuthService
    service: WorkflowService


@dataclass
class ApiState:
    settings: Settings
    loaded: Loaded | None = None
    error: KnowledgeBaseError | None = None
    feedback: FeedbackLog = field(default_factory=FeedbackLog)
    workflow: Workflow | None = None
    gc_policy: FreezeAfterFullCollection | None = None


def load(settings: Settings) -> ApiState:
    state = ApiState(settings=settings)
    start = time.perf_counter()
    try:
        kb = load_kb(settings.kb_dir)
    except KnowledgeBaseError as exc:
        log.error("knowledge base not loaded: %s", exc)
        state.error = exc
        return state
    engine = Engine(kb)
    reader = FhirReader(kb)
    state.loaded = Loaded(
        kb=kb,
        engine=engine,
        drugs=DrugIndex(kb),
        fhir=reader,
        cds=CdsServices(engine, reader, state.feedback, settings.max_lines),
        coverage=_figures(coverage(kb)),
    )
    _warm_up(state.loaded)
    # The KB is ~400 000 long-lived objects. A full garbage collection walks them all (~210 ms here)
    # and fires in the middle of requests: p99 of a 15-line analysis 233 ms instead of 65 ms.
    # Frozen, they are left out of every later collection; they live as long as the process anyway.
    gc.collect()
    gc.freeze()
    log.info("knowledge base %s loaded in %.1f s", kb.version, time.perf_counter() - start)
    return state


def _figures(stats: dict[str, Any]) -> dict[str, Any]:
    """Coverage without the name lists (hundreds of names): their lengths stand in for them."""
    out: dict[str, Any] = {}
    for key, value in stats.items():
        if isinstance(value, dict):
            out[key] = _figures(value)
        elif isinstance(value, list):
            out[f"{key}_count"] = len(value)
        else:
            out[key] = value
    return out


def _warm_up(loaded: Loaded) -> None:
    """Build the FHIR models' validators now: the first validation otherwise costs ~50 ms in a request."""
    from api.fhir.inbound import validate_resource

    validate_resource(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"resource": {"resourceType": "Patient", "birthDate": "1940-01-01"}},
                {
                    "resource": {
                        "resourceType": "MedicationRequest",
                        "status": "draft",
                        "intent": "order",
                        "subject": {"reference": "Patient/x"},
                        "medicationCodeableConcept": {"text": "paracetamol"},
                    }
                },
            ],
        },
        "",
    )


def gc_policy(settings: Settings) -> FreezeAfterFullCollection | None:
    """The garbage-collection policy the settings ask for (see :mod:`api.gc_policy`), not installed."""
    if not settings.gc_freeze_after_full:
        return None
    return FreezeAfterFullCollection(
        thaw_interval_s=settings.gc_thaw_interval_s, thaw_growth=settings.gc_thaw_growth
    )


def open_workflow(settings: Settings) -> Workflow:
    """Migrate the workflow database to the latest schema, open it, seed the demo when asked.

    A database that cannot be opened or migrated stops the startup with the error: unlike the KB,
    there is no degraded mode worth serving without it, and a silent fallback would hide data.
    """
    from rcp_workflow import demo
    from rcp_workflow.db import migrate, open_database

    start = time.perf_counter()
    migrate(settings.database_url)
    db = open_database(settings.database_url)
    if settings.demo_seed:
        demo.seed_database(db)
        log.warning("demo organisations and users seeded (published passwords: local use only)")
    log.info("workflow database %s ready in %.1f s", db.engine.url.drivername, time.perf_counter() - start)
    return Workflow(db=db, auth=AuthService(db), service=WorkflowService(db))
