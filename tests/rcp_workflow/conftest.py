"""Fixtures of the workflow tests: a migrated, demo-seeded database on SQLite and on PostgreSQL.

Every test module here runs on both backends: the ``db_url`` fixture is parametrised over
``sqlite`` and ``postgres``. The PostgreSQL run needs ``IATRO_TEST_POSTGRES_URL`` (scripts/test
starts a throwaway server with scripts/postgres and sets it); without it, and only then, the
postgres parameter is skipped.

The schema is migrated and the demo directory seeded once per session and backend (Argon2 hashing
is deliberately slow); each test then starts from that state: a fresh copy of the SQLite file, or the
PostgreSQL tables emptied except the directory (organisations, users).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from rcp_workflow import demo
from rcp_workflow.auth import AuthService, actor_of
from rcp_workflow.db import Database, migrate, open_database
from rcp_workflow.models import Base, User
from rcp_workflow.schemas import Actor
from rcp_workflow.workflow import WorkflowService

ROOT = Path(__file__).resolve().parents[2]
DIRECTORY_TABLES = {"organisations", "users"}
# The PostgreSQL tables a test may fill, children first.
CASE_TABLES = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name not in DIRECTORY_TABLES]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("workflow-db") / "template.sqlite"
    url = f"sqlite:///{path}"
    migrate(url)
    db = open_database(url)
    demo.seed_database(db)
    db.dispose()  # closing the last connection checkpoints the WAL into the file
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture(scope="session")
def postgres_session_url() -> Iterator[str]:
    base = os.environ.get("IATRO_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("IATRO_TEST_POSTGRES_URL is not set (scripts/test sets it with scripts/postgres)")
    name = f"iatro_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    migrate(url)
    db = open_database(url)
    demo.seed_database(db)
    db.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "workflow.sqlite"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_session_url")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(CASE_TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url)
    yield database
    database.dispose()


class Clock:
    """A settable clock, so that due dates and expiries are tested without waiting."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += dt.timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(db: Database, clock: Clock) -> WorkflowService:
    return WorkflowService(db, clock=clock)


@pytest.fixture
def auth(db: Database, clock: Clock) -> AuthService:
    return AuthService(db, clock=clock)


@pytest.fixture
def actors(db: Database) -> dict[str, Actor]:
    """The demo professionals as actors, keyed by the local part of their e-mail."""
    with db.transaction() as session:
        # Only the demo users: tests may add others, which stay in the PostgreSQL directory.
        users = session.scalars(select(User).where(User.email.like("%@demo.iatro.local"))).all()
        return {u.email.split("@")[0]: actor_of(session, u) for u in users}


def load_prescription(relative: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / relative).read_text(encoding="utf-8"))
    return data


# Ten lines, 82 years old: eligible for Iatroprev, Optimedoc and the BPM (real BDPM names).
ELIGIBLE = "tests/golden_geriatric/prescriptions/29_eligibilite_porte_ville.json"
# Five lines (amiodarone + escitalopram): not eligible for Iatroprev by the town door.
NOT_ELIGIBLE = "tests/golden/prescriptions/04_amiodarone_escitalopram.json"
