"""The workflow database: engine, transactions, migrations (SQLite by default, PostgreSQL alike).

SQLite runs in WAL mode with foreign keys on, and every transaction starts with ``BEGIN IMMEDIATE``:
SQLite has one writer at a time, and taking the write lock up front means a transaction never reads a
snapshot it then cannot write from; a concurrent writer waits (busy timeout) instead of failing. On
PostgreSQL the default READ COMMITTED plus the atomic version bump (``UPDATE cases SET version =
version + 1 WHERE id = ? AND version = ?``) gives the same guarantee: of two writers holding the same
version, exactly one wins and the other gets ConflictError.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_S = 30


class Database:
    """One engine and its sessions. Nothing is opened at import; ``open_database`` creates it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session inside one transaction: committed on success, rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def _normalise(url: str) -> str:
    # psycopg 3 is the PostgreSQL driver; a bare postgresql:// URL would ask SQLAlchemy for psycopg2.
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_sqlalchemy_engine(url: str) -> Engine:
    url = _normalise(url)
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see the begin hook).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def open_database(url: str) -> Database:
    """SQLite (``sqlite:///path``: WAL, foreign keys on) or PostgreSQL (``postgresql://``, psycopg 3)."""
    return Database(create_sqlalchemy_engine(url))


def alembic_config(url: str) -> Config:
    """The Alembic configuration shipped in the package (``rcp_workflow/migrations``)."""
    package = resources.files("rcp_workflow")
    config = Config(str(package.joinpath("migrations", "alembic.ini")))
    config.set_main_option("script_location", str(package.joinpath("migrations")))
    # ConfigParser interpolation would read a '%' in a password as a placeholder.
    config.set_main_option("sqlalchemy.url", _normalise(url).replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """Bring the schema to the latest Alembic revision (``upgrade head``); idempotent."""
    command.upgrade(alembic_config(url), "head")
