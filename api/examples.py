"""Request examples shown in the OpenAPI docs (``/docs``); the fuzzing tests start from them too."""

from __future__ import annotations

from typing import Any

_SUBJECT = {"reference": "Patient/example"}


def draft_order(
    resource_id: str, concept: dict[str, Any], posology: str, subject: dict[str, str] = _SUBJECT
) -> dict[str, Any]:
    """A draft MedicationRequest entry of a CDS Hooks ``draftOrders`` bundle."""
    return {
        "resource": {
            "resourceType": "MedicationRequest",
            "id": resource_id,
            "status": "draft",
            "intent": "order",
            "subject": subject,
            "medicationCodeableConcept": concept,
            "dosageInstruction": [{"text": posology}],
        }
    }


ORDER_SIGN: dict[str, Any] = {
    "hook": "order-sign",
    "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
    "context": {
        "userId": "Practitioner/example",
        "patientId": "example",
        "draftOrders": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                draft_order(
                    "draft-1",
                    {
                        "coding": [
                            {"system": "https://smt.esante.gouv.fr/terminologie-bdpm", "code": "64607301"}
                        ]
                    },
                    "1 cp le soir",
                ),
                draft_order(
                    "draft-2", {"text": "clarithromycine 500 mg"}, "1 cp matin et soir pendant 7 jours"
                ),
            ],
        },
    },
    "prefetch": {
        "patient": {"resourceType": "Patient", "id": "example", "gender": "male", "birthDate": "1944-05-02"}
    },
}

ORDER_SELECT: dict[str, Any] = {
    **ORDER_SIGN,
    "hook": "order-select",
    "context": {**ORDER_SIGN["context"], "selections": ["MedicationRequest/draft-2"]},
}

FHIR_BUNDLE: dict[str, Any] = {
    "resourceType": "Bundle",
    "type": "collection",
    "entry": [
        {
            "resource": {
                "resourceType": "Patient",
                "id": "example",
                "birthDate": "1942-03-01",
                "gender": "female",
            }
        },
        {
            "resource": {
                "resourceType": "MedicationStatement",
                "id": "ms-1",
                "status": "active",
                "subject": _SUBJECT,
                "medicationCodeableConcept": {"text": "PREVISCAN 20 mg"},
                "dosage": [{"text": "3/4 cp le soir"}],
            }
        },
        {
            "resource": {
                "resourceType": "MedicationRequest",
                "id": "mr-1",
                "status": "active",
                "intent": "order",
                "subject": _SUBJECT,
                "medicationCodeableConcept": {
                    "coding": [
                        {"system": "http://www.whocc.no/atc", "code": "C01BD01", "display": "amiodarone"}
                    ]
                },
                "dosageInstruction": [{"text": "1 cp par jour"}],
            }
        },
        {
            "resource": {
                "resourceType": "Condition",
                "subject": _SUBJECT,
                "code": {
                    "coding": [{"system": "https://smt.esante.gouv.fr/terminologie-cim-10", "code": "I48"}]
                },
            }
        },
        {
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "14682-9"}]},
                "valueQuantity": {
                    "value": 110,
                    "unit": "µmol/L",
                    "system": "http://unitsofmeasure.org",
                    "code": "umol/L",
                },
            }
        },
    ],
}
