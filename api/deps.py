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
from api.state import ApiState, Loaded
from iatro.analysis import Engine
from iatro.errors import KnowledgeBaseMissing
from iatro.settings import Settings


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
