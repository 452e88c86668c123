"""Issue 8, PPP: the FHIR R4 export (CarePlan + MedicationRequest intent=proposal)."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from iatro.errors import FieldError
from rcp_workflow.ppp import labels
from rcp_workflow.ppp.fhir import PSEUDONYM_SYSTEM, SMT_BDPM, to_fhir
from tests.rcp_workflow.ppp_examples import ITEMS, KB_VERSION, iatroprev_plan, long_plan

SFPC_SOURCE = (
    Path(__file__).resolve().parents[2] / "knowledge_base" / "sources" / "sfpc_actip" / "sfpc_ip_codes.csv"
)


def _resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _codes(concept: dict[str, Any], system: str) -> list[str]:
    return [c["code"] for c in concept.get("coding", []) if c["system"] == system]


@pytest.fixture(scope="module")
def bundle() -> dict[str, Any]:
    return to_fhir(iatroprev_plan())


def test_the_bundle_validates_against_the_r4_models(bundle: dict[str, Any]) -> None:
    parsed = Bundle.model_validate(bundle)
    assert parsed.type == "collection"
    assert parsed.model_dump(mode="json", exclude_none=True) == bundle
    # Every reference inside the bundle resolves to one of its entries.
    urls = {e["fullUrl"] for e in bundle["entry"]}
    references = set(json.dumps(bundle).split('"reference": "')[1:])
    assert {ref.split('"')[0] for ref in references} <= urls


def test_careplan(bundle: dict[str, Any]) -> None:
    [plan] = _resources(bundle, "CarePlan")
    assert (plan["status"], plan["intent"]) == ("active", "plan")
    assert plan["created"] == "2026-11-14T10:30:00Z"
    assert plan["subject"]["identifier"] == {"system": PSEUDONYM_SYSTEM, "value": "PAT-7F3K2Q"}
    assert KB_VERSION in plan["description"]
    assert plan["author"]["display"] == "Julien Morel"
    assert [c["display"] for c in plan["contributor"]] == [
        "Dr Claire Vasseur",
        "Julien Morel",
        "Dr Hélène Garçon",
        "Éloïse Bérard",
    ]
    # No Patient resource: the export carries the pseudonym only.
    assert _resources(bundle, "Patient") == []
    roles = _resources(bundle, "PractitionerRole")
    assert sorted(r["code"][0]["coding"][0]["code"] for r in roles) == sorted(
        ["geriatre", "pharmacien_hospitalier", "medecin_traitant", "pharmacien_officine"]
    )


def test_one_medication_request_per_item_as_a_proposal(bundle: dict[str, Any]) -> None:
    requests = _resources(bundle, "MedicationRequest")
    assert len(requests) == len(ITEMS)
    for request, item in zip(requests, ITEMS, strict=True):
        assert (request["intent"], request["status"]) == ("proposal", "active")
        assert request["medicationCodeableConcept"]["text"] == item.drug
        assert request.get("doNotPerform", False) is (item.action == "stop")
        assert request["reasonCode"][0]["text"] == item.reason
        notes = " ".join(n["text"] for n in request["note"])
        assert labels.ACTION_LABELS[item.action] in notes
        if item.comment:
            assert item.comment in notes
        if item.after and item.action != "stop":
            assert request["dosageInstruction"] == [{"text": item.after}]
    # A drug of the new list carries its BDPM code.
    [uvedose] = [r for r in requests if r["medicationCodeableConcept"]["text"].startswith("UVEDOSE")]
    assert _codes(uvedose["medicationCodeableConcept"], SMT_BDPM) == ["63489259"]


def test_actip_codings(bundle: dict[str, Any]) -> None:
    requests = _resources(bundle, "MedicationRequest")
    issues = {f"urn:uuid:{i['id']}": i for i in _resources(bundle, "DetectedIssue")}
    problem, intervention = labels.ACTIP_SYSTEMS["problem"], labels.ACTIP_SYSTEMS["intervention"]
    coded = [item for item in ITEMS if item.actip_problem]
    assert len(issues) == len(coded)
    for request, item in zip(requests, ITEMS, strict=True):
        if not item.actip_problem:
            assert "detectedIssue" not in request
            continue
        assert _codes(request["reasonCode"][0], problem) == [item.actip_problem]
        issue = issues[request["detectedIssue"][0]["reference"]]
        assert issue["status"] == "final"
        assert _codes(issue["code"], problem) == [item.actip_problem]
        assert _codes(issue["mitigation"][0]["action"], intervention) == [item.actip_intervention]
    [plan] = _resources(bundle, "CarePlan")
    outcomes = [a["outcomeCodeableConcept"][0] for a in plan["activity"] if "reference" in a]
    devenir = labels.ACTIP_SYSTEMS["outcome"]
    assert [_codes(o, devenir) for o in outcomes] == [
        ["4"] if item.decision == "modified" else ["1"] for item in ITEMS
    ]


def test_counts_round_trip(bundle: dict[str, Any]) -> None:
    doc = iatroprev_plan()
    [plan] = _resources(bundle, "CarePlan")
    activities = plan["activity"]
    assert len(activities) == len(doc.items) + len(doc.monitoring) + len(doc.follow_ups)
    monitoring = [a["detail"] for a in activities if a.get("detail", {}).get("kind") == "ServiceRequest"]
    assert [(m["code"]["text"], m["scheduledString"]) for m in monitoring] == [
        (m.what, m.when) for m in doc.monitoring
    ]
    follow_ups = [a["detail"] for a in activities if "scheduledPeriod" in a.get("detail", {})]
    assert [(f["code"]["text"], f["scheduledPeriod"]["start"]) for f in follow_ups] == [
        (f.label, f.due.isoformat()) for f in doc.follow_ups
    ]
    [medication_list] = _resources(bundle, "List")
    statements = _resources(bundle, "MedicationStatement")
    assert len(medication_list["entry"]) == len(statements) == len(doc.new_medications)
    assert [s["status"] for s in statements] == [
        "intended" if m.status == "new" else "active" for m in doc.new_medications
    ]
    assert [e["flag"]["coding"][0]["code"] for e in medication_list["entry"]] == [
        m.status for m in doc.new_medications
    ]


def test_sixty_items(bundle: dict[str, Any]) -> None:
    data = to_fhir(long_plan(60))
    Bundle.model_validate(data)
    assert len(_resources(data, "MedicationRequest")) == 60


def test_same_plan_same_bundle() -> None:
    assert json.dumps(to_fhir(iatroprev_plan())) == json.dumps(to_fhir(iatroprev_plan()))
    assert to_fhir(replace(iatroprev_plan(), version=2))["id"] != to_fhir(iatroprev_plan())["id"]


def test_an_unknown_actip_code_is_refused_naming_the_field() -> None:
    bad = replace(ITEMS[0], actip_intervention="9")
    with pytest.raises(FieldError) as caught:
        to_fhir(replace(iatroprev_plan(), items=(bad,)))
    assert caught.value.field == "items.0.actip_intervention"


def test_actip_table_is_the_shipped_sfpc_source() -> None:
    # The one runtime copy (read by the workflow and the API) equals the source's three axes; the
    # problem_detail rows are left out on purpose (SOURCE.md marks them unverified).
    text = SFPC_SOURCE.read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    curated = {
        (r["axis"], r["code"], r["label_fr"], r["source_ref"])
        for r in rows
        if r["axis"] in ("problem", "intervention", "outcome")
    }
    ours = {(c.axis, c.code, c.label, c.system) for c in labels.actip_rows()}
    assert ours == curated
