"""A workflow app of its own for the workflow API tests: the real KB, a fresh SQLite file, the demo seeded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

DEMO_PASSWORD = "demo-iatro"
HOSPITAL_PHARMACIST = "pharmacien.hospitalier@demo.iatro.local"
GERIATRE = "geriatre@demo.iatro.local"
COORDINATOR = "coordinateur@demo.iatro.local"
OFFICINE = "pharmacien.officine@demo.iatro.local"
OTHER_OFFICINE = "pharmacien.marche@demo.iatro.local"
GP = "medecin.traitant@demo.iatro.local"

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "prescriptions"


def golden(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((GOLDEN / name).read_text(encoding="utf-8"))
    return document


def bearer(client: TestClient, email: str) -> dict[str, str]:
    response = client.post("/v1/auth/login", json={"email": email, "password": DEMO_PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def if_match(response: Any) -> dict[str, str]:
    return {"If-Match": response.headers["ETag"]}
