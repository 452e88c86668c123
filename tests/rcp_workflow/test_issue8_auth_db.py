"""Issue 8: login, sessions, API tokens; migrations and the demo seed."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from iatro.errors import FieldError
from rcp_workflow import demo
from rcp_workflow.auth import AuthService
from rcp_workflow.db import Database, migrate, open_database
from rcp_workflow.models import Base, LoginSessionRow, User


def test_login_logout_and_expiry(auth: AuthService, clock) -> None:
    assert auth.login("geriatre@demo.iatro.local", "wrong-password") is None
    assert auth.login("nobody@demo.iatro.local", demo.DEMO_PASSWORD) is None
    session = auth.login("  Geriatre@Demo.Iatro.Local ", demo.DEMO_PASSWORD)
    assert session is not None and session.actor.role == "geriatre"
    assert session.actor.organisation_kind == "hospital"
    actor = auth.resolve_session(session.token)
    assert actor == session.actor
    assert auth.resolve_session(session.token + "x") is None
    clock.advance(hours=13)
    assert auth.resolve_session(session.token) is None  # expired (12 h)
    again = auth.login("geriatre@demo.iatro.local", demo.DEMO_PASSWORD)
    assert again is not None
    auth.logout(again.token)
    assert auth.resolve_session(again.token) is None


def test_tokens_are_stored_hashed(auth: AuthService, db: Database) -> None:
    session = auth.login("coordinateur@demo.iatro.local", demo.DEMO_PASSWORD)
    assert session is not None
    with db.transaction() as s:
        hashes = s.scalars(select(LoginSessionRow.token_hash)).all()
        password_hash = s.scalar(
            select(User.password_hash).where(User.email == "coordinateur@demo.iatro.local")
        )
    assert session.token not in hashes and len(hashes) == 1 and len(hashes[0]) == 64
    assert password_hash is not None and password_hash.startswith("$argon2id$")


def test_api_tokens(auth: AuthService, actors, clock) -> None:
    user_id = actors["pharmacien.hospitalier"].user_id
    token = auth.create_api_token(user_id, "logiciel de pharmacie", ttl=dt.timedelta(days=30))
    assert token.token.startswith("iat_")
    assert auth.resolve_api_token(token.token) == actors["pharmacien.hospitalier"]
    assert auth.resolve_session(token.token) is None  # an API token is not a login session
    clock.advance(days=31)
    assert auth.resolve_api_token(token.token) is None
    other = auth.create_api_token(user_id, "autre")
    auth.revoke_api_token(other.id)
    assert auth.resolve_api_token(other.token) is None
    with pytest.raises(FieldError):
        auth.create_api_token(user_id, "  ")


def test_user_creation_is_validated(auth: AuthService, actors) -> None:
    hospital = actors["geriatre"].organisation_id
    with pytest.raises(FieldError) as err:
        auth.create_user(
            email="x@y.z", password="short", display_name="X", role="geriatre", organisation_id=hospital
        )
    assert err.value.field == "password"
    with pytest.raises(FieldError) as err:
        auth.create_user(
            email="x@y.z",
            password="long-enough",
            display_name="X",
            role="pharmacien_officine",
            organisation_id=hospital,
        )
    assert err.value.field == "organisation_id"
    with pytest.raises(FieldError) as err:
        auth.create_user(
            email="geriatre@demo.iatro.local",
            password="long-enough",
            display_name="X",
            role="geriatre",
            organisation_id=hospital,
        )
    assert err.value.field == "email"


def test_migrations_match_the_models_and_are_idempotent(db_url: str, db: Database) -> None:
    migrate(db_url)  # already at head: nothing to do, no error
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    assert diff == []
    assert version == "0001"


def test_demo_seed_is_idempotent(db: Database) -> None:
    demo.seed_database(db)
    demo.seed_database(db)
    with db.transaction() as s:
        count = s.scalar(select(func.count()).select_from(User).where(User.email.like("%@demo.iatro.local")))
    assert count == len(demo.DEMO_USERS)


def test_sqlite_is_wal_with_foreign_keys(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    migrate(url)
    db = open_database(url)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()
