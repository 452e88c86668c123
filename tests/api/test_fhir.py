"""FHIR R4: a Bundle in, a Bundle of DetectedIssue out, both validated with the fhir.resources models."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.detectedissue import DetectedIssue
from fhir.resources.R4B.operationoutcome import OperationOutcome

from api.fhir.inbound import _age
from iatro.settings import Settings

SUBJECT = {"reference": "Patient/p1"}


def _request(resource_id: str, concept: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "resource": {
            "resourceType": "MedicationRequest",
            "id": resource_id,
            "status": "active",
            "intent": "order",
            "subject": SUBJECT,
            "medicationCodeableConcept": concept,
            **extra,
        }
    }


def _observation(loinc: str, value: float, unit: str, when: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "valueQuantity": {"value": value, "unit": unit},
    }
    if when:
        resource["effectiveDateTime"] = when
    return {"resource": resource}


BUNDLE: dict[str, Any] = {
    "resourceType": "Bundle",
    "type": "collection",
    "timestamp": "2026-11-24T10:00:00+01:00",
    "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1", "birthDate": "1942-03-01", "gender": "female"}},
        _request(
            "mr-zocor",
            {"coding": [{"system": "https://smt.esante.gouv.fr/terminologie-bdpm", "code": "64607301"}]},
            dosageInstruction=[{"text": "1 cp le soir", "route": {"text": "voie orale"}}],
        ),
        _request(
            "mr-clari",
            {"coding": [{"system": "http://www.whocc.no/atc", "code": "J01FA09"}]},
            dosageInstruction=[
                {
                    "doseAndRate": [{"doseQuantity": {"value": 500, "unit": "mg"}}],
                    "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                }
            ],
        ),
        {
            "resource": {
                "resourceType": "MedicationStatement",
                "id": "ms-tareg",
                "status": "active",
                "subject": SUBJECT,
                "medicationCodeableConcept": {
                    "coding": [
                        {
                            "system": "http://data.esante.gouv.fr/ansm/medicament/UCD",
                            "code": "3400892360690",
                            "display": "TAREG 160MG CPR",
                        }
                    ]
                },
            }
        },
        _request("mr-unknown", {"text": "MIRACLOR 5 mg"}),
        _request("mr-stopped", {"text": "amiodarone 200 mg"}, status="stopped"),
        _request("mr-not", {"text": "ibuprofene 400 mg"}, doNotPerform=True),
        {
            "resource": {
                "resourceType": "Condition",
                "subject": SUBJECT,
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I48.9"}]},
            }
        },
        {
            "resource": {
                "resourceType": "Condition",
                "subject": SUBJECT,
                "clinicalStatus": {"coding": [{"code": "resolved"}]},
                "code": {
                    "coding": [{"system": "https://smt.esante.gouv.fr/terminologie-cim-10", "code": "K25"}]
                },
            }
        },
        _observation("2160-0", 1.5, "mg/dL", "2026-10-01"),
        _observation("14682-9", 110, "µmol/L", "2026-11-01"),  # the latest creatinine wins
        _observation("2823-3", 3.2, "mmol/L"),
        _observation("8636-3", 480, "ms"),
        _observation("29463-7", 52, "kg"),
        _observation("2951-2", 140, "furlongs"),
    ],
}


def _post(client: TestClient, bundle: dict[str, Any]) -> Any:
    return client.post("/fhir/$analyze", json=bundle, headers={"content-type": "application/fhir+json"})


@pytest.fixture(scope="module")
def result(client: TestClient) -> Bundle:
    response = _post(client, BUNDLE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    return Bundle.model_validate_json(response.content)


def _issues(bundle: Bundle) -> list[DetectedIssue]:
    return [e.resource for e in bundle.entry or () if isinstance(e.resource, DetectedIssue)]


def _outcome(bundle: Bundle) -> OperationOutcome:
    return next(e.resource for e in bundle.entry or () if isinstance(e.resource, OperationOutcome))


def test_output_is_a_valid_collection_of_detected_issues(result: Bundle) -> None:
    assert result.type == "collection"
    issues = _issues(result)
    assert issues
    for issue in issues:
        assert issue.status == "preliminary"
        assert issue.severity in ("high", "moderate", "low")
        assert issue.detail
        assert issue.mitigation
        assert issue.patient is not None and issue.patient.reference == "Patient/p1"


def test_contraindicated_interaction_implicates_both_requests(result: Bundle) -> None:
    issue = next(
        i
        for i in _issues(result)
        if i.code is not None and any(c.code == "DRG" for c in i.code.coding or ()) and i.severity == "high"
    )
    assert issue.code is not None
    assert {r.reference for r in issue.implicated or ()} == {
        "MedicationRequest/mr-zocor",
        "MedicationRequest/mr-clari",
    }
    codes = {(c.system or "").rsplit("/", 1)[-1]: c.code for c in issue.code.coding or ()}
    assert codes["fr-pharmaceutical-intervention-problem-code"] == "6.4"
    assert any(
        "ansm:" in (c.code or "")
        for e in issue.evidence or ()
        for cc in e.code or ()
        for c in cc.coding or ()
    )
    actions = [m.action for m in issue.mitigation or ()]
    assert any("Substitution" in (a.text or "") for a in actions)


def test_inputs_are_read_and_converted(client: TestClient) -> None:
    from api.fhir.inbound import FhirReader, bundle_resources, validate_resource

    reader: FhirReader = client.app.state.iatro.loaded.fhir  # type: ignore[attr-defined]
    bundle = validate_resource(BUNDLE, "", "Bundle")
    assert isinstance(bundle, Bundle)
    reading = reader.read(bundle_resources(bundle, ""), dt.date(2026, 11, 24))
    p = reading.prescription
    assert (p.patient.age, p.patient.sex, p.patient.weight_kg) == (84, "F", 52)
    assert p.patient.creatinine_umol_l == 110  # 14682-9 is later than the 1.5 mg/dL of 2160-0
    assert p.patient.labs.potassium_mmol_l == 3.2
    assert p.patient.labs.qtc_ms == 480
    assert p.patient.labs.sodium_mmol_l is None  # an unknown unit is not guessed
    assert p.patient.conditions == ("I489",)  # the resolved K25 is not used
    lines = p.lines
    assert lines[0].cis == "64607301" and lines[0].posology == "1 cp le soir" and lines[0].route == "orale"
    assert lines[1].substance == "clarithromycine" and lines[1].dose_mg_per_day == 1000
    assert lines[2].text == "TAREG 160MG CPR"  # UCD: not in the KB, read from its display
    assert lines[3].text == "MIRACLOR 5 mg"
    assert len(lines) == 4  # neither the stopped amiodarone nor the "do not give" ibuprofen
    notes = " ".join(n.text for n in reading.notes)
    assert "not in the KB" in notes and "furlongs" in notes and "stopped" in notes and "doNotPerform" in notes


def test_unresolved_lines_and_skipped_inputs_are_in_the_operation_outcome(result: Bundle) -> None:
    outcome = _outcome(result)
    unresolved = [i for i in outcome.issue if i.code == "not-found"]
    assert any("MIRACLOR" in (i.diagnostics or "") for i in unresolved)
    assert any(i.expression == ["entry.4.resource"] for i in unresolved)


def test_mg_per_dl_creatinine_is_converted(client: TestClient) -> None:
    from api.fhir.inbound import bundle_resources, validate_resource

    bundle = validate_resource(
        {"resourceType": "Bundle", "type": "collection", "entry": [_observation("2160-0", 1.5, "mg/dL")]},
        "",
        "Bundle",
    )
    assert isinstance(bundle, Bundle)
    reading = client.app.state.iatro.loaded.fhir.read(bundle_resources(bundle, ""))  # type: ignore[attr-defined]
    assert reading.prescription.patient.creatinine_umol_l == pytest.approx(132.63)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.update(resourceType="Patient"), "resourceType"),
        (lambda b: b["entry"][1]["resource"].update(status=3), "entry.1.resource.status"),
        (lambda b: b["entry"][0]["resource"].update(birthDate="1942-13-01"), "entry.0.resource.birthDate"),
        (
            lambda b: b["entry"][1]["resource"].update(resourceType="Nonsense"),
            "entry.1.resource.resourceType",
        ),
        # The models name the resource and list the choices (medicationCodeableConcept, ...Reference).
        (lambda b: b["entry"][1]["resource"].pop("medicationCodeableConcept"), "entry.1.resource"),
        (
            lambda b: b["entry"][7]["resource"]["code"]["coding"][0].update(code="not-icd"),
            "entry.7.resource.code.coding.0.code",
        ),
        (
            lambda b: b["entry"].append({"resource": {"resourceType": "Patient", "id": "p2"}}),
            "entry.15.resource",
        ),
        (
            lambda b: b["entry"][12]["resource"]["valueQuantity"].update(value=42),
            "entry.12.resource.valueQuantity.value",
        ),
    ],
)
def test_invalid_bundles_give_422_with_the_element_path(client: TestClient, mutate: Any, field: str) -> None:
    bundle = copy.deepcopy(BUNDLE)
    mutate(bundle)
    response = _post(client, bundle)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


def test_a_bundle_over_the_line_limit_gives_413(client: TestClient, settings: Settings) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [_request(f"m{i}", {"text": "paracetamol"}) for i in range(settings.max_lines + 1)],
    }
    response = _post(client, bundle)
    assert response.status_code == 413
    assert response.json()["error"]["field"] == "entry"


@pytest.mark.parametrize(
    ("birth", "age"),
    [(dt.date(1942, 3, 1), 84), (dt.date(1942, 11, 25), 83), ("1942", 83), ("1942-11", 83), ("1942-10", 84)],
)
def test_age_from_a_full_or_partial_birth_date(birth: dt.date | str, age: int) -> None:
    # A partial date gives the youngest age the patient can have on 2026-11-24.
    assert _age(birth, dt.date(2026, 11, 24)) == age


def test_unknown_codes_without_text_are_unresolved_lines_not_errors(client: TestClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            _request("a", {"coding": [{"system": "urn:oid:1.2.250.1.213.2.3.1", "code": "99999999"}]}),
            _request("b", {"coding": [{"system": "http://snomed.info/sct", "code": "108600003"}]}),
            _request(
                "c",
                {"coding": [{"system": "http://data.esante.gouv.fr/ansm/medicament/UCD", "code": "9400000"}]},
            ),
        ],
    }
    response = _post(client, bundle)
    assert response.status_code == 200, response.text
    outcome = _outcome(Bundle.model_validate_json(response.content))
    unresolved = [i for i in outcome.issue if i.code == "not-found"]
    assert [i.expression for i in unresolved] == [[f"entry.{n}.resource"] for n in range(3)]
    assert "CIS 99999999" in (unresolved[0].diagnostics or "")


def test_a_medication_with_nothing_to_identify_it_is_refused(client: TestClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [_request("a", {"coding": [{"system": "http://snomed.info/sct"}]})],
    }
    response = _post(client, bundle)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "entry.0.resource.medicationCodeableConcept"


def test_medication_references_are_followed(client: TestClient) -> None:
    def by_reference(resource_id: str, reference: str, **extra: Any) -> dict[str, Any]:
        resource = _request(resource_id, {})["resource"]
        resource.pop("medicationCodeableConcept")
        return {"resource": {**resource, "medicationReference": {"reference": reference}, **extra}}

    contained = {"resourceType": "Medication", "id": "m1", "code": {"text": "amiodarone 200 mg"}}
    in_bundle = {"resourceType": "Medication", "id": "m2", "code": {"text": "fluindione 20 mg"}}
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": in_bundle},
            by_reference("a", "#m1", contained=[contained]),
            by_reference("b", "Medication/m2"),
            by_reference("c", "Medication/elsewhere"),  # not in the request: an unresolved line
        ],
    }
    response = _post(client, bundle)
    assert response.status_code == 200, response.text
    result = Bundle.model_validate_json(response.content)
    interaction = next(
        i for i in _issues(result) if i.code is not None and "interaction" in (i.code.text or "")
    )
    assert {r.reference for r in interaction.implicated or ()} == {
        "MedicationRequest/a",
        "MedicationRequest/b",
    }
    unresolved = [i for i in _outcome(result).issue if i.code == "not-found"]
    assert [i.expression for i in unresolved] == [["entry.3.resource"]]
