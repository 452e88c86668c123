"""CDS Hooks 2.0: discovery, an order-sign and an order-select round trip, feedback, refusals."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.medicationrequest import MedicationRequest

from api.cds import SUMMARY_MAX, summary
from api.examples import draft_order
from iatro.model.report import Alert

SUBJECT = {"reference": "Patient/p1"}


def _draft(resource_id: str, concept: dict[str, Any], posology: str = "1 cp le soir") -> dict[str, Any]:
    return draft_order(resource_id, concept, posology, SUBJECT)


SIGN: dict[str, Any] = {
    "hook": "order-sign",
    "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
    "context": {
        "userId": "Practitioner/123",
        "patientId": "p1",
        "draftOrders": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                _draft("mr-simva", {"text": "simvastatine 40 mg"}),
                _draft(
                    "mr-clari",
                    {
                        "coding": [
                            {
                                "system": "http://www.whocc.no/atc",
                                "code": "J01FA09",
                                "display": "clarithromycine",
                            }
                        ]
                    },
                ),
            ],
        },
    },
    "prefetch": {
        "patient": {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1944-05-02"},
        "conditions": None,
    },
}


def test_discovery_lists_both_services(client: TestClient) -> None:
    services = {s["id"]: s for s in client.get("/cds-services").json()["services"]}
    assert services["iatro-order-select"]["hook"] == "order-select"
    assert services["iatro-order-sign"]["hook"] == "order-sign"
    for service in services.values():
        assert service["description"] and service["title"]
        assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"


@pytest.fixture(scope="module")
def sign_response(client: TestClient) -> dict[str, Any]:
    response = client.post("/cds-services/iatro-order-sign", json=SIGN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_simvastatin_and_clarithromycin_give_a_critical_card_with_suggestions(
    sign_response: dict[str, Any],
) -> None:
    cards = sign_response["cards"]
    card = cards[0]  # critical cards come first
    assert card["indicator"] == "critical"
    assert "clarithromycine" in card["summary"] and "simvastatine" in card["summary"]
    assert len(card["summary"]) <= SUMMARY_MAX
    assert card["source"]["label"].startswith("ANSM")
    assert "2020-10" in card["detail"] and "ansm:" in card["detail"]  # rule, source and edition
    assert "SFPC" in card["detail"]
    assert card["selectionBehavior"] == "at-most-one"
    assert all(reason["display"] for reason in card["overrideReasons"])
    suggestion = card["suggestions"][0]
    assert suggestion["isRecommended"] is True
    delete, create = suggestion["actions"]
    assert delete == {
        "type": "delete",
        "description": delete["description"],
        "resourceId": "MedicationRequest/mr-simva",
    }
    assert create["type"] == "create"
    created = MedicationRequest.model_validate(create["resource"])  # a valid FHIR MedicationRequest
    assert created.status == "draft"
    assert created.subject.reference == "Patient/p1"
    assert created.medicationCodeableConcept is not None
    alternative = created.medicationCodeableConcept.text
    assert alternative in suggestion["label"] and alternative != "simvastatine"
    # One suggestion per proven alternative, each replacing the drug it substitutes.
    assert {s["actions"][0]["resourceId"] for s in card["suggestions"]} <= {
        "MedicationRequest/mr-simva",
        "MedicationRequest/mr-clari",
    }


def test_cards_only_concern_draft_orders(client: TestClient) -> None:
    request = copy.deepcopy(SIGN)
    # The active treatment holds an interaction of its own (amiodarone + fluindione): not this order's.
    request["prefetch"]["medications"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {
                "resource": {
                    "resourceType": "MedicationRequest",
                    "id": f"active-{name}",
                    "status": "active",
                    "intent": "order",
                    "subject": SUBJECT,
                    "medicationCodeableConcept": {"text": name},
                }
            }
            for name in ("amiodarone", "fluindione")
        ],
    }
    request["context"]["draftOrders"]["entry"] = [
        _draft("mr-para", {"text": "paracetamol 1 g"}, "1 cp 4 fois par jour")
    ]
    cards = client.post("/cds-services/iatro-order-sign", json=request).json()["cards"]
    # paracetamol + fluindione (précaution d'emploi) is about the draft order; amiodarone + fluindione is not.
    assert cards, "the new paracetamol meets the fluindione already taken"
    assert all("amiodarone" not in c["summary"] for c in cards)
    assert any("paracetamol" in c["summary"] and c["indicator"] == "warning" for c in cards)


def test_order_select_reports_on_the_selected_orders_only(client: TestClient) -> None:
    request = copy.deepcopy(SIGN)
    request["hook"] = "order-select"
    request["context"]["draftOrders"]["entry"].append(_draft("mr-unknown", {"text": "MIRACLOR 5 mg"}))
    request["context"]["selections"] = ["MedicationRequest/mr-unknown"]
    cards = client.post("/cds-services/iatro-order-select", json=request).json()["cards"]
    # The selected order was not recognised: one info card says so, no interaction card about the others.
    assert [c["indicator"] for c in cards] == ["info"]
    assert "MIRACLOR" in cards[0]["summary"]
    request["context"]["selections"] = ["MedicationRequest/mr-clari"]
    cards = client.post("/cds-services/iatro-order-select", json=request).json()["cards"]
    assert cards[0]["indicator"] == "critical"


def test_feedback_is_recorded(client: TestClient, sign_response: dict[str, Any]) -> None:
    card = sign_response["cards"][0]
    feedback = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
                "outcomeTimestamp": "2026-11-24T10:00:00Z",
            },
            {
                "card": "not-a-card-of-ours",
                "outcome": "overridden",
                "overrideReason": {"reason": card["overrideReasons"][0], "userComment": "vu avec le patient"},
                "outcomeTimestamp": "2026-11-24T10:01:00Z",
            },
        ]
    }
    response = client.post("/cds-services/iatro-order-sign/feedback", json=feedback)
    assert response.status_code == 200
    assert response.json() == {"recorded": 2, "unknown_cards": 1}
    log = client.app.state.iatro.feedback  # type: ignore[attr-defined]
    accepted, overridden = list(log.feedback)[-2:]
    assert (accepted.known_card, accepted.rule_id, accepted.sfpc_outcome) == (True, card_rule(card), "1")
    assert overridden.override_reason == "benefit-outweighs-risk" and overridden.has_comment
    assert not hasattr(overridden, "user_comment")  # free text is not kept


def card_rule(card: dict[str, Any]) -> str:
    rule: str = card["detail"].split("`")[1]
    return rule


def test_accepted_feedback_names_its_suggestions(client: TestClient) -> None:
    feedback = {
        "feedback": [{"card": "x", "outcome": "accepted", "outcomeTimestamp": "2026-11-24T10:00:00Z"}]
    }
    response = client.post("/cds-services/iatro-order-sign/feedback", json=feedback)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "feedback.0"


@pytest.mark.parametrize(
    ("path", "mutate", "status", "field"),
    [
        ("/cds-services/no-such-service", lambda r: None, 404, None),
        ("/cds-services/iatro-order-sign", lambda r: r.update(hook="patient-view"), 422, "hook"),
        ("/cds-services/iatro-order-sign", lambda r: r["context"].pop("patientId"), 422, "context.patientId"),
        (
            "/cds-services/iatro-order-sign",
            lambda r: r["context"].pop("draftOrders"),
            422,
            "context.draftOrders",
        ),
        (
            "/cds-services/iatro-order-sign",
            lambda r: r["context"]["draftOrders"]["entry"][0]["resource"].update(intent=7),
            422,
            "context.draftOrders.entry.0.resource.intent",
        ),
        (
            "/cds-services/iatro-order-sign",
            lambda r: r["prefetch"].update(patient={"resourceType": "Patient", "gender": 5}),
            422,
            "prefetch.patient.gender",
        ),
        (
            "/cds-services/iatro-order-select",
            lambda r: r.update(hook="order-select"),
            422,
            "context.selections",
        ),
    ],
)
def test_refusals(client: TestClient, path: str, mutate: Any, status: int, field: str | None) -> None:
    request = copy.deepcopy(SIGN)
    mutate(request)
    response = client.post(path, json=request)
    assert response.status_code == status, response.text
    assert response.json()["error"].get("field") == field


def test_summary_is_cut_at_140_characters() -> None:
    alert = Alert(type="qt", severity="high", source="s", rule_id="r", message="x" * 300 + ". Suite.")
    text = summary(alert)
    assert len(text) == SUMMARY_MAX and text.endswith("…")
