"""Demo organisations and professionals for local use (never for real patients).

Credentials (local only): every demo user has the password ``demo-iatro``; the e-mails are listed in
``DEMO_USERS`` (e.g. ``geriatre@demo.iatro.local``). Seeding is idempotent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from rcp_workflow.auth import create_organisation, create_user
from rcp_workflow.db import Database
from rcp_workflow.models import Organisation, User

DEMO_PASSWORD = "demo-iatro"


@dataclass(frozen=True, slots=True)
class DemoUser:
    email: str
    display_name: str
    role: str
    organisation: str  # key in DEMO_ORGANISATIONS


# key -> (name, kind)
DEMO_ORGANISATIONS: dict[str, tuple[str, str]] = {
    "chu": ("CHU de démonstration", "hospital"),
    "officine": ("Pharmacie de démonstration", "officine"),
    "officine2": ("Pharmacie du Marché (démonstration)", "officine"),
    "cabinet": ("Cabinet médical de démonstration", "cabinet"),
}

DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("pharmacien.hospitalier@demo.iatro.local", "Dr Anne Martin", "pharmacien_hospitalier", "chu"),
    DemoUser("geriatre@demo.iatro.local", "Dr Paul Bernard", "geriatre", "chu"),
    DemoUser("coordinateur@demo.iatro.local", "Julie Petit", "coordinateur", "chu"),
    DemoUser("pharmacien.officine@demo.iatro.local", "Dr Claire Durand", "pharmacien_officine", "officine"),
    DemoUser("pharmacien.marche@demo.iatro.local", "Dr Luc Moreau", "pharmacien_officine", "officine2"),
    DemoUser("medecin.traitant@demo.iatro.local", "Dr Marc Leroy", "medecin_traitant", "cabinet"),
)


def seed(session: Session) -> None:
    """Create the demo organisations and users when absent (idempotent), in the caller's transaction."""
    now = dt.datetime.now(dt.UTC)
    org_ids: dict[str, str] = {}
    for key, (name, kind) in DEMO_ORGANISATIONS.items():
        existing = session.scalar(select(Organisation.id).where(Organisation.name == name))
        org_ids[key] = existing or create_organisation(session, name, kind, now)
    for user in DEMO_USERS:
        if session.scalar(select(User.id).where(User.email == user.email)) is None:
            create_user(
                session,
                email=user.email,
                password=DEMO_PASSWORD,
                display_name=user.display_name,
                role=user.role,
                organisation_id=org_ids[user.organisation],
                now=now,
            )


def seed_database(db: Database) -> None:
    """``seed`` in a transaction of its own."""
    with db.transaction() as session:
        seed(session)
