"""Issue 8 over HTTP (JSON): authentication, permissions, If-Match/ETag, and the whole pathway.

One app for the module, on the real compiled KB and a fresh SQLite database with the demo
organisation; prescriptions are the golden ones (real BDPM names).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pdfplumber
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from iatro.kb.store import KnowledgeBase
from iatro.settings import Settings, get_settings
from tests.api.workflow_client import (
    GERIATRE,
    GP,
    HOSPITAL_PHARMACIST,
    OFFICINE,
    OTHER_OFFICINE,
    bearer,
    golden,
    if_match,
)


@pytest.fixture(scope="module")
def client(kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    db = tmp_path_factory.mktemp("workflow") / "workflow.sqlite"
    settings = Settings(kb_dir=get_settings().kb_dir, database_url=f"sqlite:///{db}", demo_seed=True)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def pharmacist(client: TestClient) -> dict[str, str]:
    return bearer(client, HOSPITAL_PHARMACIST)


def new_case(
    client: TestClient, headers: dict[str, str], prescription: str = "04_amiodarone_escitalopram.json"
):
    body = {"pathway": "iatroprev", "prescription": golden(prescription), "patient": {"sex": "F"}}
    response = client.post("/v1/cases", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response


def alert_index(case: dict[str, Any], severity: str, *names: str) -> int:
    alerts = case["analyses"][-1]["report"]["alerts"]
    for i, alert in enumerate(alerts):
        drugs = {s["name"] for s in alert.get("substances", ())}
        if alert["severity"] == severity and set(names) <= drugs:
            return i
    raise AssertionError(f"no {severity} alert on {names}")


# ---------------------------------------------------------------------------------------------------
# Authentication
# ---------------------------------------------------------------------------------------------------


def test_every_workflow_endpoint_needs_a_bearer_token(client: TestClient) -> None:
    for method, path in (
        ("GET", "/v1/cases"),
        ("POST", "/v1/cases"),
        ("GET", "/v1/cases/abc"),
        ("POST", "/v1/cases/abc/decisions"),
        ("GET", "/v1/cases/abc/ppp.pdf"),
        ("GET", "/v1/followups/due"),
        ("GET", "/v1/auth/me"),
    ):
        response = client.request(method, path, json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["type"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == "Bearer"
    bad = client.get("/v1/cases", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    assert "unknown" in bad.json()["error"]["message"]


def test_login_refuses_a_wrong_password_and_the_api_ignores_the_session_cookie(client: TestClient) -> None:
    wrong = client.post("/v1/auth/login", json={"email": HOSPITAL_PHARMACIST, "password": "nope"})
    assert wrong.status_code == 401
    unknown = client.post("/v1/auth/login", json={"email": "nobody@demo.iatro.local", "password": "nope"})
    assert unknown.json() == wrong.json()  # the answer does not tell which e-mails exist
    # A browser session (cookie) is for the pages; the JSON API wants a bearer token.
    page_login = client.post(
        "/connexion",
        data={"email": HOSPITAL_PHARMACIST, "password": "demo-iatro", "suite": "/dossiers"},
        follow_redirects=False,
    )
    assert page_login.status_code == 303
    assert client.cookies.get("iatro_session")
    assert client.get("/v1/cases").status_code == 401
    client.cookies.clear()


def test_named_api_tokens_authenticate_until_revoked(client: TestClient, pharmacist: dict[str, str]) -> None:
    created = client.post(
        "/v1/auth/tokens", json={"name": "logiciel de l'officine", "days": 30}, headers=pharmacist
    )
    assert created.status_code == 201
    headers = {"Authorization": f"Bearer {created.json()['token']}"}
    me = client.get("/v1/auth/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["role"] == "pharmacien_hospitalier"


def test_logout_ends_the_session_token(client: TestClient) -> None:
    headers = bearer(client, GERIATRE)
    assert client.get("/v1/cases", headers=headers).status_code == 200
    assert client.post("/v1/auth/logout", headers=headers).status_code == 204
    assert client.get("/v1/cases", headers=headers).status_code == 401


# ---------------------------------------------------------------------------------------------------
# Versions: ETag, If-Match, one 409 for two writers
# ---------------------------------------------------------------------------------------------------


def test_if_match_is_required_and_a_stale_version_gets_409(
    client: TestClient, pharmacist: dict[str, str]
) -> None:
    created = new_case(client, pharmacist)
    case = created.json()
    assert created.headers["ETag"] == f'"{case["version"]}"'
    assert created.headers["Location"] == f"/v1/cases/{case['id']}"
    path = f"/v1/cases/{case['id']}/billing"

    missing = client.post(path, json={"convention_signed": True}, headers=pharmacist)
    assert missing.status_code == 428
    assert missing.json()["error"]["type"] == "precondition_required"
    assert missing.json()["error"]["field"] == "If-Match"

    malformed = client.post(path, json={"convention_signed": True}, headers={**pharmacist, "If-Match": '"v"'})
    assert malformed.status_code == 422
    assert malformed.json()["error"]["field"] == "If-Match"

    # Two writers read the same version; the first wins, the second gets 409 and changes nothing.
    read = client.get(f"/v1/cases/{case['id']}", headers=pharmacist)
    first = client.post(path, json={"convention_signed": True}, headers={**pharmacist, **if_match(read)})
    assert first.status_code == 200
    assert first.headers["ETag"] == f'"{read.json()["version"] + 1}"'
    geriatre = bearer(client, GERIATRE)
    second = client.post(
        path, json={"participation_agreement_signed": True}, headers={**geriatre, **if_match(read)}
    )
    assert second.status_code == 409
    assert second.json()["error"]["type"] == "conflict"
    now = client.get(f"/v1/cases/{case['id']}", headers=pharmacist).json()
    assert now["billing"]["convention_signed"] is True
    assert now["billing"]["participation_agreement_signed"] is False  # the loser's change is not applied
    assert now["version"] == read.json()["version"] + 1

    # A weak ETag form is read the same way.
    weak = client.post(
        path,
        json={"participation_agreement_signed": True},
        headers={**pharmacist, "If-Match": f'W/"{now["version"]}"'},
    )
    assert weak.status_code == 200


# ---------------------------------------------------------------------------------------------------
# Permissions and refusals
# ---------------------------------------------------------------------------------------------------


def test_professionals_outside_the_case_are_refused(client: TestClient, pharmacist: dict[str, str]) -> None:
    case = new_case(client, pharmacist, "05_citalopram_hydroxyzine.json").json()
    path = f"/v1/cases/{case['id']}"
    for email in (OTHER_OFFICINE, OFFICINE, GP):
        headers = bearer(client, email)
        response = client.get(path, headers=headers)
        assert response.status_code == 403, email
        assert response.json()["error"]["type"] == "forbidden"
        assert case["id"] not in {c["id"] for c in client.get("/v1/cases", headers=headers).json()["cases"]}
        for sub in ("/ppp.pdf", "/audit", "/messages"):
            assert client.get(path + sub, headers=headers).status_code == 403, (email, sub)
        write = client.post(path + "/stop", json={"reason": "essai"}, headers={**headers, "If-Match": '"1"'})
        assert write.status_code == 403
    # An unknown id answers exactly like an invisible one: ids cannot be probed.
    other = bearer(client, OTHER_OFFICINE)
    unknown = client.get("/v1/cases/0123456789abcdef", headers=other)
    assert unknown.status_code == 403
    assert unknown.json() == client.get(path, headers=other).json()


def test_wrong_role_and_wrong_state_are_refused(client: TestClient, pharmacist: dict[str, str]) -> None:
    created = new_case(client, pharmacist, "06_domperidone_sotalol.json")
    case = created.json()
    path = f"/v1/cases/{case['id']}"
    # Issuing the PPP at repérage: the state machine refuses, naming what is allowed.
    early = client.post(path + "/ppp", headers={**pharmacist, **if_match(created)})
    assert early.status_code == 409
    assert early.json()["error"]["type"] == "invalid_transition"
    # The médecin traitant, once a participant, sees the case but may not do the hospital team's part.
    gp_id = next(
        p["user_id"]
        for p in client.get("/v1/professionals", headers=pharmacist).json()
        if p["role"] == "medecin_traitant"
    )
    added = client.post(
        path + "/participants", json={"user_id": gp_id}, headers={**pharmacist, **if_match(created)}
    )
    assert added.status_code == 200, added.text
    gp = bearer(client, GP)
    seen = client.get(path, headers=gp)
    assert seen.status_code == 200
    # Billing is the hospital team's: the médecin traitant is refused by role, with the roles allowed.
    billing = client.post(
        path + "/billing", json={"convention_signed": True}, headers={**gp, **if_match(seen)}
    )
    assert billing.status_code == 403
    assert billing.json()["error"]["type"] == "forbidden"
    assert "coordinateur" in billing.json()["error"]["message"]
    assert client.get(path, headers=gp).json()["billing"]["convention_signed"] is False


def test_invalid_input_names_the_field(client: TestClient, pharmacist: dict[str, str]) -> None:
    prescription = golden("04_amiodarone_escitalopram.json")
    prescription["patient"]["age"] = 200
    response = client.post(
        "/v1/cases",
        json={"pathway": "iatroprev", "prescription": prescription, "patient": {}},
        headers=pharmacist,
    )
    assert response.status_code == 422
    assert "age" in response.json()["error"]["field"]
    missing = client.post("/v1/cases", json={"pathway": "iatroprev", "prescription": {}}, headers=pharmacist)
    assert missing.status_code == 422


# ---------------------------------------------------------------------------------------------------
# The whole pathway over the JSON API
# ---------------------------------------------------------------------------------------------------


def test_the_whole_iatroprev_pathway_over_json(client: TestClient, pharmacist: dict[str, str]) -> None:
    created = new_case(client, pharmacist)
    case = created.json()
    path = f"/v1/cases/{case['id']}"
    assert case["state"] == "reperage"
    report = case["analyses"][-1]["report"]
    assert report["kb_version"] == case["analyses"][-1]["kb_version"]
    ci = alert_index(case, "contre-indication", "amiodarone", "escitalopram")

    def step(url: str, body: dict[str, Any] | None, expected_state: str) -> Any:
        nonlocal created
        response = client.post(path + url, json=body, headers={**pharmacist, **if_match(created)})
        assert response.status_code == 200, (url, response.text)
        assert response.json()["state"] == expected_state, url
        created = response
        return response.json()

    step(
        "/include",
        {
            "entry_door": "town",
            "consent": {
                "given_by": "patient",
                "informed": True,
                "consented": True,
                "recorded_on": "2026-11-24",
            },
            "eligibility_justification": "Chute récente sous amiodarone et ISRS.",
        },
        "inclusion",
    )
    step("/start-review", None, "medication_review")
    step(
        "/recommendations",
        {
            "action": "stop",
            "drug": "escitalopram",
            "rationale": "Contre-indication ANSM avec l'amiodarone (torsades de pointes).",
            "actip_problem": "6.4",
            "actip_intervention": "2",
            "alert_index": ci,
        },
        "medication_review",
    )
    after = step(
        "/recommendations",
        {
            "action": "monitor",
            "drug": "furosemide",
            "rationale": "Hypokaliémie et torsadogènes.",
            "actip_problem": "6.2",
            "actip_intervention": "5",
            "monitoring_what": "kaliémie",
            "monitoring_when": "à J7",
        },
        "medication_review",
    )
    first, second = (r["id"] for r in after["recommendations"])
    assert after["recommendations"][0]["alert_rule_id"].startswith("ansm:")
    participants = [p["user_id"] for p in client.get("/v1/professionals", headers=pharmacist).json()]
    step(
        "/rcp",
        {
            "scheduled_at": "2026-12-01T14:00:00+01:00",
            "modality": "video",
            "participant_ids": participants[:3],
        },
        "rcp_planned",
    )
    step(
        "/decisions",
        {"recommendation_id": first, "outcome": "modified", "comment": "Relais par sertraline."},
        "rcp_planned",
    )
    step(
        "/decisions",
        {"recommendation_id": second, "outcome": "refused", "comment": "Déjà suivie."},
        "rcp_planned",
    )
    step("/rcp/hold", None, "rcp_held")
    issued = step("/ppp", None, "ppp_issued")
    assert issued["ppp"]["item_count"] == 1  # the refused recommendation is not in the plan
    assert {f["day"] for f in issued["followups"]} == {45, 90}

    ppp = client.get(path + "/ppp", headers=pharmacist).json()
    assert [i["drug"] for i in ppp["items"]] == ["escitalopram"]
    assert ppp["items"][0]["comment"] == "Relais par sertraline."

    pdf = client.get(path + "/ppp.pdf", headers=pharmacist)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert "attachment" in pdf.headers["content-disposition"]
    with pdfplumber.open(io.BytesIO(pdf.content)) as document:
        text = "\n".join(p.extract_text() or "" for p in document.pages)
    assert "escitalopram" in text and "Relais par sertraline." in text
    assert "furosemide" not in text.split("Nouvelle liste")[0]  # refused: not among the decisions

    fhir = client.get(path + "/ppp.fhir.json", headers=pharmacist)
    assert fhir.status_code == 200
    assert fhir.headers["content-type"].startswith("application/fhir+json")
    bundle = fhir.json()
    assert bundle["resourceType"] == "Bundle"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert "CarePlan" in kinds and "MedicationRequest" in kinds

    # Every professional of the case may download the plan: the gériatre of the hospital team too.
    assert client.get(path + "/ppp.pdf", headers=bearer(client, GERIATRE)).status_code == 200

    step(
        "/followups/45",
        {"items": [{"item_index": 0, "implemented": True, "outcome": "Relais fait."}]},
        "followup_45",
    )

    audit = client.get(path + "/audit", headers=pharmacist).json()
    actions = [e["action"] for e in audit]
    assert actions[0] == "create" and actions.count("download") >= 3 and "read" in actions

    message = client.post(
        path + "/messages",
        json={"body": "PPP envoyé par messagerie sécurisée.", "recipient_roles": ["medecin_traitant"]},
        headers=pharmacist,
    )
    assert message.status_code == 201
    assert [m["body"] for m in client.get(path + "/messages", headers=pharmacist).json()] == [
        "PPP envoyé par messagerie sécurisée."
    ]
    listed = client.get("/v1/cases", headers=pharmacist).json()
    assert case["id"] in {c["id"] for c in listed["cases"]}


def test_openapi_documents_the_workflow(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/cases/{case_id}/decisions" in paths
    assert "428" in paths["/v1/cases/{case_id}/decisions"]["post"]["responses"]
    assert not any(p.startswith("/dossiers") for p in paths)  # the pages are not API
