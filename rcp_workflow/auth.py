"""Authentication primitives (no HTTP): password hashing, login sessions, API bearer tokens.

Passwords are hashed with Argon2id (argon2-cffi, its default parameters). Session and API tokens are
32 random bytes (``secrets``); the database keeps only their SHA-256, which is enough for a secret
of that entropy and lets a token be found by its hash. Login failures and unknown tokens give
``None``, never an exception, and the same answer whether the e-mail exists or not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from iatro.errors import FieldError
from rcp_workflow.db import Database
from rcp_workflow.models import ApiTokenRow, LoginSessionRow, Organisation, User
from rcp_workflow.schemas import Actor, ApiToken, LoginSession, ProfessionalView
from rcp_workflow.states import ROLES, Role

ORGANISATION_KINDS = ("hospital", "officine", "cabinet")
# Which organisation kind each role belongs to.
ROLE_ORGANISATION_KIND: dict[str, str] = {
    "medecin_traitant": "cabinet",
    "pharmacien_officine": "officine",
    "pharmacien_hospitalier": "hospital",
    "geriatre": "hospital",
    "coordinateur": "hospital",
}
MIN_PASSWORD_LENGTH = 8
_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so that both answers take the same time.
_DUMMY_HASH = _hasher.hash("not-a-password-of-anyone")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _normalise_email(email: str) -> str:
    return email.strip().lower()


def actor_of(session: Session, user: User) -> Actor:
    org = session.get_one(Organisation, user.organisation_id)
    return Actor(
        user_id=user.id,
        display_name=user.display_name,
        role=user.role,
        organisation_id=org.id,
        organisation_kind=org.kind,
        organisation_name=org.name,
    )


class AuthService:
    def __init__(
        self,
        db: Database,
        *,
        session_ttl: dt.timedelta = dt.timedelta(hours=12),
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.db = db
        self.session_ttl = session_ttl
        self.clock = clock

    # --- directory (used by the demo seed and by administrators' scripts) ------------------------
    def create_organisation(self, name: str, kind: str) -> str:
        """Create an organisation (hospital, officine, cabinet); returns its id."""
        with self.db.transaction() as session:
            return create_organisation(session, name, kind, self.clock())

    def create_user(
        self, *, email: str, password: str, display_name: str, role: Role, organisation_id: str
    ) -> ProfessionalView:
        with self.db.transaction() as session:
            user = create_user(
                session,
                email=email,
                password=password,
                display_name=display_name,
                role=role,
                organisation_id=organisation_id,
                now=self.clock(),
            )
            actor = actor_of(session, user)
            return ProfessionalView(
                user_id=actor.user_id,
                display_name=actor.display_name,
                role=actor.role,
                organisation_id=actor.organisation_id,
                organisation_name=actor.organisation_name,
            )

    # --- sessions ---------------------------------------------------------------------------------
    def login(self, email: str, password: str) -> LoginSession | None:
        """A new session for good credentials, None otherwise (same answer for unknown e-mail)."""
        with self.db.transaction() as session:
            user = session.scalar(select(User).where(User.email == _normalise_email(email)))
            if user is None:
                verify_password(_DUMMY_HASH, password)
                return None
            if not verify_password(user.password_hash, password) or not user.active:
                return None
            if _hasher.check_needs_rehash(user.password_hash):
                user.password_hash = hash_password(password)
            token = secrets.token_urlsafe(32)
            now = self.clock()
            row = LoginSessionRow(
                token_hash=_digest(token), user_id=user.id, created_at=now, expires_at=now + self.session_ttl
            )
            session.add(row)
            return LoginSession(token=token, expires_at=row.expires_at, actor=actor_of(session, user))

    def logout(self, token: str) -> None:
        with self.db.transaction() as session:
            row = session.scalar(select(LoginSessionRow).where(LoginSessionRow.token_hash == _digest(token)))
            if row is not None and row.revoked_at is None:
                row.revoked_at = self.clock()

    def resolve_session(self, token: str) -> Actor | None:
        """The actor of a live session token, None when unknown, expired or logged out."""
        with self.db.transaction() as session:
            row = session.scalar(select(LoginSessionRow).where(LoginSessionRow.token_hash == _digest(token)))
            if row is None or row.revoked_at is not None or row.expires_at <= self.clock():
                return None
            return self._active_actor(session, row.user_id)

    # --- API tokens -------------------------------------------------------------------------------
    def create_api_token(self, user_id: str, name: str, *, ttl: dt.timedelta | None = None) -> ApiToken:
        if not name.strip():
            raise FieldError("name", "an API token needs a name saying which software uses it")
        with self.db.transaction() as session:
            if session.get(User, user_id) is None:
                raise FieldError("user_id", "no such user")
            token = "iat_" + secrets.token_urlsafe(32)
            now = self.clock()
            row = ApiTokenRow(
                token_hash=_digest(token),
                user_id=user_id,
                name=name.strip(),
                created_at=now,
                expires_at=now + ttl if ttl is not None else None,
            )
            session.add(row)
            session.flush()
            return ApiToken(id=row.id, token=token, name=row.name, created_at=now, expires_at=row.expires_at)

    def revoke_api_token(self, token_id: str) -> None:
        with self.db.transaction() as session:
            row = session.get(ApiTokenRow, token_id)
            if row is not None and row.revoked_at is None:
                row.revoked_at = self.clock()

    def resolve_api_token(self, token: str) -> Actor | None:
        with self.db.transaction() as session:
            row = session.scalar(select(ApiTokenRow).where(ApiTokenRow.token_hash == _digest(token)))
            if row is None or row.revoked_at is not None:
                return None
            if row.expires_at is not None and row.expires_at <= self.clock():
                return None
            return self._active_actor(session, row.user_id)

    @staticmethod
    def _active_actor(session: Session, user_id: str) -> Actor | None:
        user = session.get(User, user_id)
        return actor_of(session, user) if user is not None and user.active else None


def create_organisation(session: Session, name: str, kind: str, now: dt.datetime) -> str:
    if kind not in ORGANISATION_KINDS:
        raise FieldError("kind", f"{kind!r} is not one of {', '.join(ORGANISATION_KINDS)}")
    if not name.strip():
        raise FieldError("name", "an organisation needs a name")
    org = Organisation(name=name.strip(), kind=kind, created_at=now)
    session.add(org)
    session.flush()
    return org.id


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    display_name: str,
    role: str,
    organisation_id: str,
    now: dt.datetime,
) -> User:
    email = _normalise_email(email)
    if "@" not in email:
        raise FieldError("email", "not an e-mail address")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise FieldError("password", f"at least {MIN_PASSWORD_LENGTH} characters")
    if role not in ROLES:
        raise FieldError("role", f"{role!r} is not one of {', '.join(ROLES)}")
    org = session.get(Organisation, organisation_id)
    if org is None:
        raise FieldError("organisation_id", "no such organisation")
    if org.kind != ROLE_ORGANISATION_KIND[role]:
        raise FieldError(
            "organisation_id", f"a {role} belongs to a {ROLE_ORGANISATION_KIND[role]}, not a {org.kind}"
        )
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise FieldError("email", "already used by another user")
    user = User(
        email=email,
        password_hash=hash_password(password),
        display_name=display_name.strip(),
        role=role,
        organisation_id=organisation_id,
        active=True,
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user
