"""Issue 8, the web pages without a browser: login and cookie, CSRF, redirects, the analysis view, the
RCP decision rows (htmx fragments), conflicts. Real KB, a fresh SQLite database, the demo seeded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.routes.analyses import report_document
from api.web.analysis_view import analysis_view
from api.web.prescription_form import parse_prescription, prescription_document
from iatro.analysis import Engine
from iatro.errors import FieldError
from iatro.kb.store import KnowledgeBase
from iatro.model.prescription import Prescription
from iatro.settings import Settings, get_settings
from tests.api.workflow_client import DEMO_PASSWORD, HOSPITAL_PHARMACIST, OFFICINE, OTHER_OFFICINE, golden

LINES = "CORDARONE 200 mg, 1 cp/j\nSEROPLEX 10 mg, 1 cp le matin\nELIQUIS 2,5 mg, 1 cp matin et soir"


@pytest.fixture(scope="module")
def client(kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    db = tmp_path_factory.mktemp("pages") / "workflow.sqlite"
    settings = Settings(kb_dir=get_settings().kb_dir, database_url=f"sqlite:///{db}", demo_seed=True)
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client


def log_in(client: TestClient, email: str = HOSPITAL_PHARMACIST) -> str:
    """Logs the client in (cookie) and answers the CSRF token of its pages."""
    client.cookies.clear()
    response = client.post(
        "/connexion",
        data={"email": email, "password": DEMO_PASSWORD, "suite": "/dossiers"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    page = client.get("/dossiers")
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert match
    return match.group(1)


def create_case(client: TestClient, csrf: str) -> str:
    response = client.post(
        "/dossiers/nouveau",
        data={"csrf_token": csrf, "pathway": "iatroprev", "lines": LINES, "age": "84", "sex": "F"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    match = re.match(r"/dossiers/([0-9a-f]+)\?ok=created", response.headers["location"])
    assert match
    return match.group(1)


def version_of(html: str) -> int:
    match = re.search(r'name="version" value="(\d+)"', html)
    assert match
    return int(match.group(1))


# ---------------------------------------------------------------------------------------------------
# Login, cookie, redirects
# ---------------------------------------------------------------------------------------------------


def test_pages_without_a_session_go_to_the_login_page(client: TestClient) -> None:
    client.cookies.clear()
    for path in (
        "/dossiers",
        "/dossiers/nouveau",
        "/dossiers/abc",
        "/dossiers/abc/rcp",
        "/dossiers/abc/ppp.pdf",
    ):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/connexion?suite=%2Fdossiers")
    assert client.get("/", follow_redirects=False).headers["location"] == "/connexion"
    login = client.get("/connexion")
    assert login.status_code == 200
    assert '<html lang="fr">' in login.text and "Mot de passe" in login.text


def test_the_session_cookie_is_httponly_and_samesite(client: TestClient) -> None:
    client.cookies.clear()
    response = client.post(
        "/connexion",
        data={"email": HOSPITAL_PHARMACIST, "password": DEMO_PASSWORD, "suite": "/dossiers/nouveau"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/dossiers/nouveau"
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith("iatro_session=")
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain http here; https gets Secure
    wrong = client.post(
        "/connexion", data={"email": HOSPITAL_PHARMACIST, "password": "x"}, follow_redirects=False
    )
    assert wrong.status_code == 401
    assert "E-mail ou mot de passe incorrect." in wrong.text


def test_login_never_redirects_off_site(client: TestClient) -> None:
    client.cookies.clear()
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        response = client.post(
            "/connexion",
            data={"email": HOSPITAL_PHARMACIST, "password": DEMO_PASSWORD, "suite": target},
            follow_redirects=False,
        )
        assert response.headers["location"] == "/dossiers", target


# ---------------------------------------------------------------------------------------------------
# CSRF
# ---------------------------------------------------------------------------------------------------


def test_form_posts_need_the_csrf_token_and_the_same_origin(client: TestClient) -> None:
    csrf = log_in(client)
    data = {"pathway": "iatroprev", "lines": LINES}
    missing = client.post("/dossiers/nouveau", data=data, follow_redirects=False)
    assert missing.status_code == 403
    assert "CSRF" in missing.text
    forged = client.post("/dossiers/nouveau", data={**data, "csrf_token": "0" * 64}, follow_redirects=False)
    assert forged.status_code == 403
    cross = client.post(
        "/dossiers/nouveau",
        data={**data, "csrf_token": csrf},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert cross.status_code == 403
    login_cross = client.post(
        "/connexion",
        data={"email": HOSPITAL_PHARMACIST, "password": DEMO_PASSWORD},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert login_cross.status_code == 403
    same = client.post(
        "/dossiers/nouveau",
        data={**data, "csrf_token": csrf},
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert same.status_code == 303
    # htmx sends the token as a header.
    case_id = same.headers["location"].split("/")[2].split("?")[0]
    page = client.get(f"/dossiers/{case_id}")
    assert f'"X-CSRF-Token": "{csrf}"' in page.text


def test_logging_out_invalidates_the_session_and_its_token(client: TestClient) -> None:
    csrf = log_in(client)
    cookie = client.cookies.get("iatro_session")
    out = client.post("/deconnexion", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303
    client.cookies.set("iatro_session", cookie or "")
    assert client.get("/dossiers", follow_redirects=False).status_code == 303  # the old cookie is dead


# ---------------------------------------------------------------------------------------------------
# Case pages: permissions, conflicts, RCP rows
# ---------------------------------------------------------------------------------------------------


def test_another_pharmacy_gets_403_on_every_case_page(client: TestClient) -> None:
    case_id = create_case(client, log_in(client))
    csrf = log_in(client, OTHER_OFFICINE)
    for path in ("", "/rcp", "/ppp", "/ppp.pdf", "/journal", "/suivi/45"):
        response = client.get(f"/dossiers/{case_id}{path}")
        assert response.status_code == 403, path
        assert "Accès refusé" in response.text
        assert "CORDARONE" not in response.text
    stop = client.post(
        f"/dossiers/{case_id}/arret", data={"csrf_token": csrf, "version": "1", "reason": "essai"}
    )
    assert stop.status_code == 403
    assert case_id not in client.get("/dossiers").text


def test_a_stale_form_gets_409_and_changes_nothing(client: TestClient) -> None:
    csrf = log_in(client)
    case_id = create_case(client, csrf)
    version = version_of(client.get(f"/dossiers/{case_id}").text)
    first = client.post(
        f"/dossiers/{case_id}/facturation",
        data={"csrf_token": csrf, "version": str(version), "convention_signed": "1"},
        follow_redirects=False,
    )
    assert first.status_code == 303
    second = client.post(
        f"/dossiers/{case_id}/arret", data={"csrf_token": csrf, "version": str(version), "reason": "doublon"}
    )
    assert second.status_code == 409
    assert "Le dossier a changé entre-temps" in second.text
    assert "Repérage" in client.get(f"/dossiers/{case_id}").text


def test_rcp_rows_save_one_decision_each_and_send_the_new_version(client: TestClient) -> None:
    csrf = log_in(client)
    case_id = create_case(client, csrf)

    def post(path: str, **data: str) -> None:
        version = version_of(client.get(f"/dossiers/{case_id}").text)
        response = client.post(
            f"/dossiers/{case_id}{path}",
            data={"csrf_token": csrf, "version": str(version), **data},
            follow_redirects=False,
        )
        assert response.status_code == 303, (path, response.text)

    post(
        "/inclusion",
        entry_door="town",
        given_by="patient",
        informed="1",
        consented="1",
        eligibility_justification="Chute récente sous amiodarone.",
    )
    post("/revue")
    post(
        "/recommandations",
        action="stop",
        drug="escitalopram",
        rationale="Contre-indication ANSM.",
        actip_problem="6.4",
        actip_intervention="2",
    )
    hospital_ids = re.findall(
        r'name="participant_ids" value="([0-9a-f]+)" checked', client.get(f"/dossiers/{case_id}").text
    )
    post("/rcp/planifier", scheduled_at="2026-12-01T14:00", modality="phone", participant_ids=hospital_ids[0])
    rcp = client.get(f"/dossiers/{case_id}/rcp")
    assert rcp.status_code == 200
    rec_id = re.search(r'id="decision-([0-9a-f]+)"', rcp.text)
    assert rec_id
    version = int(re.search(r'id="case-version" name="version" value="(\d+)"', rcp.text).group(1))  # type: ignore[union-attr]
    # "Modified" without a comment names the field.
    row_path = f"/dossiers/{case_id}/rcp/decisions/{rec_id.group(1)}"
    headers = {"HX-Request": "true", "X-CSRF-Token": csrf}
    refused = client.post(row_path, data={"version": str(version), "outcome": "modified"}, headers=headers)
    assert refused.status_code == 422
    assert refused.headers["HX-Retarget"] == "#messages-erreur"
    saved = client.post(
        row_path, data={"version": str(version), "outcome": "accepted", "comment": "OK"}, headers=headers
    )
    assert saved.status_code == 200
    assert "<html" not in saved.text  # a fragment: the row, the new version, the count left
    assert "decision-row panel saved" in saved.text
    assert f'id="case-version" name="version" value="{version + 1}" hx-swap-oob="true"' in saved.text
    assert "Toutes les recommandations sont décidées." in saved.text
    # The same version again: someone else's change in between is never overwritten.
    stale = client.post(row_path, data={"version": str(version), "outcome": "refused"}, headers=headers)
    assert stale.status_code == 409


# ---------------------------------------------------------------------------------------------------
# « Analyser une ordonnance » and the analysis view
# ---------------------------------------------------------------------------------------------------


def test_the_analysis_page_groups_alerts_by_severity(client: TestClient) -> None:
    client.cookies.clear()
    page = client.post(
        "/analyser",
        data={"lines": LINES + "\nMIRACLOR 5 mg", "age": "84", "sex": "F", "conditions": "I48, I10"},
    )
    assert page.status_code == 200
    text = page.text
    assert "Analyse incomplète : 1 ligne" in text  # MIRACLOR is not a product: flagged, never dropped
    assert text.index("g-contre-indication") < text.index("g-a-prendre-en-compte")
    assert "amiodarone + escitalopram" in text
    assert "ansm:" in text and "2020-10" in text  # rule and edition in the explanation
    assert "6.4 — " in text  # the SFPC problem code proposed for a contre-indication
    invalid = client.post("/analyser", data={"lines": LINES, "age": "deux cents"})
    assert invalid.status_code == 422
    assert "n&#39;est pas un nombre" in invalid.text and 'aria-invalid="true"' in invalid.text


def test_analysis_view_orders_groups_and_keeps_every_alert(engine: Engine) -> None:
    report = report_document(
        engine.analyze(Prescription.model_validate(golden("04_amiodarone_escitalopram.json")))
    )
    view = analysis_view(report)
    keys = [g.key for g in view.groups]
    ansm = [
        k
        for k in keys
        if k in ("contre-indication", "association-deconseillee", "precaution-emploi", "a-prendre-en-compte")
    ]
    assert keys[: len(ansm)] == ansm  # the ANSM levels first, most serious first
    assert ansm == sorted(
        ansm,
        key=[
            "contre-indication",
            "association-deconseillee",
            "precaution-emploi",
            "a-prendre-en-compte",
        ].index,
    )
    assert view.alert_count == len(report["alerts"])
    assert sorted(a.index for g in view.groups for a in g.alerts) == list(range(len(report["alerts"])))
    assert view.complete and not view.unresolved


def test_prescription_form_reads_codes_text_and_json() -> None:
    document = prescription_document(
        {"lines": "3400936110694\n 64607301 \nCORDARONE 200 mg", "age": "84", "conditions": "I48; I10"}
    )
    assert document["lines"] == [
        {"cip13": "3400936110694"},
        {"cis": "64607301"},
        {"text": "CORDARONE 200 mg"},
    ]
    assert document["patient"] == {"age": 84, "conditions": ["I48", "I10"]}
    pasted = parse_prescription({"lines": '{"patient": {"age": 90}, "lines": [{"substance": "amiodarone"}]}'})
    assert pasted.patient.age == 90
    with pytest.raises(FieldError) as error:
        parse_prescription({"lines": "CORDARONE", "age": "200"})
    assert error.value.field == "patient.age"
    with pytest.raises(FieldError) as error:
        parse_prescription({"lines": "  \n "})
    assert error.value.field == "lines"


def test_a_bilan_partage_de_medication_walked_through_the_pages(client: TestClient) -> None:
    csrf = log_in(client, OFFICINE)
    created = client.post(
        "/dossiers/nouveau",
        data={"csrf_token": csrf, "pathway": "bpm", "lines": LINES, "age": "78", "sex": "M"},
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    case_path = created.headers["location"].split("?")[0]

    def post(path: str, **data: str | list[str]) -> str:
        version = version_of(client.get(case_path).text)
        response = client.post(
            f"{case_path}{path}",
            data={"csrf_token": csrf, "version": str(version), **data},
            follow_redirects=False,
        )
        assert response.status_code == 303, (path, response.text)
        page = client.get(case_path)
        assert page.status_code == 200
        return page.text

    post(
        "/inclusion",
        entry_door="town",
        given_by="patient",
        informed="1",
        consented="1",
        eligibility_justification="Polymédication de plus de six mois déclarée par le patient.",
    )
    page = post(
        "/bpm/recueil",
        adherence="partial",
        missed_doses_last_week="2",
        self_medication="1",
        self_medication_details="ibuprofène en vente libre",
        difficulties=["remembering", "opening_packaging"],
        manages_own_medication="1",
    )
    assert "Oublis" in page and "ibuprofène en vente libre" in page
    page = post("/bpm/analyse", conclusions="Arrêt de l'automédication par AINS à proposer.")
    assert "Arrêt de l&#39;automédication" in page
    page = post("/bpm/synthese", text="Synthèse : AINS en automédication, observance partielle.")
    assert "Synthèse envoyée au médecin traitant" in page
    post("/bpm/conseil", text="Pilulier proposé ; AINS déconseillés.")
    page = post("/bpm/observance", adherence="good", notes="Pilulier utilisé.")
    assert "Suivi de l&#39;observance" in page and "Pilulier utilisé." in page
    # The other officine never sees this BPM.
    log_in(client, OTHER_OFFICINE)
    assert client.get(case_path).status_code == 403
