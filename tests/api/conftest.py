"""One application for the whole API test session, on the real compiled KB (loaded once)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from iatro.kb.store import KnowledgeBase
from iatro.settings import Settings, get_settings


@pytest.fixture(scope="session")
def settings(kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # ``kb`` (tests/conftest.py) builds the KB when it is missing; the app then loads it itself.
    # The app opens the workflow database at startup: a throwaway one, never ./iatro.sqlite.
    database = tmp_path_factory.mktemp("workflow-db") / "iatro.sqlite"
    return get_settings().model_copy(update={"database_url": f"sqlite:///{database}"})


@pytest.fixture(scope="session")
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client
