"""POST /v1/prescriptions/ocr (issue 7): a generated ordonnance uploaded, read on the real KB; bad files."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from api.routes.ocr import MULTIPART_SLACK, PATH
from iatro.kb.store import KnowledgeBase
from iatro.settings import get_settings
from ocr.generator import DrugPool, GeneratedPage, generate_page, png, simple_page
from ocr.pipeline import OcrPipeline

MAX_BYTES = 3_000_000


@pytest.fixture(scope="module")
def client(kb: KnowledgeBase) -> Iterator[TestClient]:
    settings = get_settings().model_copy(update={"ocr_max_bytes": MAX_BYTES})
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def page(pool: DrugPool) -> GeneratedPage:
    return generate_page(pool, 7110, "bizone", "scan")


def _upload(client: TestClient, data: bytes, query: str = "", name: str = "ordonnance.jpg"):
    return client.post(PATH + query, files={"file": (name, data, "application/octet-stream")})


def test_upload_returns_the_ocr_document_and_the_analysis(
    client: TestClient, page: GeneratedPage, pipeline: OcrPipeline
):
    response = _upload(client, page.data, "?analyze=true")
    assert response.status_code == 200, response.text
    body = response.json()
    # The same document as `iatro ocr --format json` (the pipeline's result), plus the analysis.
    assert body.pop("analysis")["lines"]
    direct = pipeline.read_bytes(page.data).model_dump(mode="json", exclude_none=True)
    for record in (*body["pages"], *direct["pages"]):
        record.pop("seconds")  # the only value that differs between two readings
    assert body == direct
    got = {line["product"]["cis"] for line in body["lines"] if "product" in line}
    want = {item.expected.product.cis for item in page.items if item.expected.product is not None}
    assert len(got & want) >= len(want) - 1, (got, want)
    assert {line["zone"] for line in body["lines"]} == {"ald", "hors_ald"}


def test_analysis_marks_the_same_lines(client: TestClient):
    data = png(simple_page(["Docteur Jean MARTIN", "ELIQUIS 6 mg, comprimé pelliculé", "1 cp matin et soir",
                            "AMIODARONE 200 mg cp", "1 cp le matin"]))  # fmt: skip
    body = _upload(client, data, "?analyze=true&checks=interactions").json()
    [eliquis, amiodarone] = body["lines"]
    assert eliquis["needs_review"] and eliquis["strength_read"] == "6 mg" and eliquis["strength"] == "5 mg"
    report = body["analysis"]
    assert [line["index"] for line in report["lines"]] == [0, 1]
    assert report["lines"][0]["product"]["cis"] == eliquis["product"]["cis"]
    assert report["lines"][0]["input"].startswith("ELIQUIS 5 mg")
    assert [s["name"] for s in report["lines"][1]["substances"]] == [
        s["name"] for s in amiodarone["substances"]
    ]
    assert "analysis" not in _upload(client, data).json()


def test_page_without_a_drug_line_says_so(client: TestClient):
    body = _upload(client, png(simple_page(["Docteur Jean MARTIN", "Le 12/03/2026"]))).json()
    assert body["lines"] == []
    assert "page 1: no drug line found" in body["warnings"]


def _truncated_png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (60, 60), 255).save(out, format="PNG")
    return out.getvalue()[:70]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"AMLODIPINE 5 mg 1 cp le matin", "not an image"),
        (_truncated_png(), "cannot be decoded"),
        (b"%PDF-1.4\nnot a pdf at all\n%%EOF\n", "PDF"),
    ],
)
def test_bad_files_are_422_naming_the_field(client: TestClient, data: bytes, reason: str):
    response = _upload(client, data)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "file" and reason in error["reason"]


def test_missing_file_field_and_unknown_check(client: TestClient):
    response = client.post(PATH, data={"other": "x"})
    assert response.status_code == 422 and response.json()["error"]["field"] == "file"
    response = _upload(client, b"x", "?analyze=true&checks=astrology")
    assert response.status_code == 422 and response.json()["error"]["field"] == "query.checks"


def test_oversize_is_413(client: TestClient):
    # Over the file limit, within the body slack: the route refuses it, naming the field.
    response = _upload(client, b"\xff\xd8\xff" + b"\0" * MAX_BYTES)
    assert response.status_code == 413 and response.json()["error"]["field"] == "file"
    # Far over: the body limit refuses it before anything is parsed.
    response = _upload(client, b"\xff\xd8\xff" + b"\0" * (MAX_BYTES + 2 * MULTIPART_SLACK))
    assert response.status_code == 413 and response.json()["error"]["type"] == "payload_too_large"
    # Other routes keep the general limit.
    small = get_settings().max_body_bytes
    response = client.post(
        "/v1/analyses", content=b" " * (small + 1), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_route_is_documented_as_a_multipart_upload(client: TestClient):
    spec = client.get("/openapi.json").json()
    operation = spec["paths"][PATH]["post"]
    schema_ref = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    body = spec["components"]["schemas"][schema_ref.rsplit("/", 1)[-1]]
    assert body["required"] == ["file"] and "PDF" in body["properties"]["file"]["description"]
    assert {p["name"] for p in operation["parameters"]} == {"analyze", "checks"}
    assert {"413", "422"} <= set(operation["responses"])
