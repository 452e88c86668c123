"""Typed dependencies: what a route needs, taken from the state the lifespan built.

They are ``async`` on purpose: they do no I/O, and a sync dependency would cost a thread-pool hop
per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.cds import CdsServices, FeedbackLog
from api.fhir.inbound import FhirReader
from api.search import DrugIndex
from api.state import ApiState, Loaded, Workflow
from iatro.analysis import Engine
from iatro.errors import IatroError, KnowledgeBaseMissing
from iatro.settings import Settings
from rcp_workflow.service import AuthService, WorkflowService


async def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.iatro
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


async def get_loaded(state: StateDep) -> Loaded:
    if state.loaded is None:
        # The error handler turns this into 503 with the same body as /ready explains.
        raise state.error or KnowledgeBaseMissing("the knowledge base is not loaded")
    return state.loaded


LoadedDep = Annotated[Loaded, Depends(get_loaded)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


async def get_engine(loaded: LoadedDep) -> Engine:
    return loaded.engine


async def get_drugs(loaded: LoadedDep) -> DrugIndex:
    return loaded.drugs


async def get_fhir(loaded: LoadedDep) -> FhirReader:
    return loaded.fhir


async def get_cds(loaded: LoadedDep) -> CdsServices:
    return loaded.cds


async def get_feedback(state: StateDep) -> FeedbackLog:
    return state.feedback


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
DrugIndexDep = Annotated[DrugIndex, Depends(get_drugs)]
FhirReaderDep = Annotated[FhirReader, Depends(get_fhir)]
CdsDep = Annotated[CdsServices, Depends(get_cds)]
FeedbackDep = Annotated[FeedbackLog, Depends(get_feedback)]


async def get_workflow(state: StateDep) -> Workflow:
    if state.workflow is None:
        # Only before the lifespan ran (a test client used without its context manager).
        raise IatroError("the workflow database is not open")
    return state.workflow


WorkflowDep = Annotated[Workflow, Depends(get_workflow)]


async def get_auth(workflow: WorkflowDep) -> AuthService:
    return workflow.auth


async def get_workflow_service(workflow: WorkflowDep) -> WorkflowService:
    return workflow.service


AuthDep = Annotated[AuthService, Depends(get_auth)]
WorkflowServiceDep = Annotated[WorkflowService, Depends(get_workflow_service)]
