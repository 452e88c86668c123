"""Each HTTP endpoint on the real KB: analyses, line resolution, drug search, KB info, probes, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from iatro.analysis import CHECKS
from iatro.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SIMVA_CLARI = {
    "date": "2026-11-24",
    "patient": {"age": 80, "sex": "M"},
    "lines": [{"substance": "simvastatine"}, {"substance": "clarithromycine"}],
}


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["kb_version"].startswith("ansm-")


def test_kb_info_has_sources_editions_licences_and_coverage(client: TestClient) -> None:
    body = client.get("/v1/kb").json()
    assert body["kb_version"].startswith("ansm-")
    assert body["sources"]["ansm_thesaurus"]["edition"] == "2020-10"
    assert all(src["licence"] for src in body["sources"].values())
    assert body["coverage"]["products"]["marketed"] > 10_000
    # Name lists are replaced by their lengths: the payload stays small.
    assert isinstance(body["coverage"]["products"]["marketed_without_substance_count"], int)
    assert body["checks"] == list(CHECKS)


def test_analysis_of_the_contract_example(client: TestClient) -> None:
    document = json.loads((ROOT / "examples" / "prescription.json").read_text())
    response = client.post("/v1/analyses", json=document)
    assert response.status_code == 200
    report = response.json()
    assert report["complete"] is False  # MIRACLOR is not a French product
    assert [line["status"] for line in report["lines"]][-1] == "unresolved"
    assert len(report["lines"]) == len(document["lines"])
    levels = {a["severity"] for a in report["alerts"] if a["type"] == "interaction"}
    assert "association-deconseillee" in levels
    for alert in report["alerts"]:
        assert alert["sfpc"]["problem"]["code"]
        assert alert["sfpc"]["intervention"]["code"]


def test_analysis_proposes_sfpc_codes_from_the_ansm_level(client: TestClient) -> None:
    report = client.post("/v1/analyses", json=SIMVA_CLARI).json()
    interaction = next(a for a in report["alerts"] if a["type"] == "interaction")
    assert interaction["severity"] == "contre-indication"
    assert interaction["sfpc"]["problem"]["code"] == "6.4"
    assert interaction["sfpc"]["intervention"]["code"] == "3"  # alternatives were proven: substitution
    assert interaction["alternatives"]
    cyp = next(a for a in report["alerts"] if a["type"] == "cyp")
    assert cyp["sfpc"]["problem"]["code"] == "6.5"


def test_checks_query_selects_checks(client: TestClient) -> None:
    report = client.post("/v1/analyses?checks=interactions,cyp", json=SIMVA_CLARI).json()
    assert {a["type"] for a in report["alerts"]} == {"interaction", "cyp"}
    assert "vaccine" in report["checks_not_run"]
    assert all(not a["alternatives"] for a in report["alerts"])  # alternatives were not selected


def test_unknown_codes_are_unresolved_lines_in_a_200_report(client: TestClient) -> None:
    document = {"lines": [{"cis": "99999999"}, {"cip13": "3400000000000"}, {"text": "ZZZYX 12 mg"}]}
    response = client.post("/v1/analyses", json=document)
    assert response.status_code == 200
    assert [line["status"] for line in response.json()["lines"]] == ["unresolved"] * 3


def test_lines_resolve(client: TestClient) -> None:
    body = {
        "lines": [{"text": "LAROXYL 25 mg cp, 1 le soir"}, {"cip13": "3400936110694"}, {"cis": "99999999"}]
    }
    response = client.post("/v1/lines/resolve", json=body)
    assert response.status_code == 200
    lines = response.json()["lines"]
    assert lines[0]["substances"][0]["name"] == "amitriptyline"
    assert lines[0]["posology"]["mg_per_day"] == 25
    assert lines[1]["product"]["cis"] == "64607301"
    assert lines[2]["status"] == "unresolved"
    assert [line["index"] for line in lines] == [0, 1, 2]


@pytest.mark.parametrize(
    ("query", "kind", "name_start", "match"),
    [
        ("amlo", "substance", "amlodipine", "prefix"),
        ("simvastatine", "substance", "simvastatine", "exact"),
        ("smvastatine", "substance", "simvastatine", "fuzzy"),
        ("64607301", "product", "ZOCOR 40 mg", "cis"),
        ("3400936110694", "product", "ZOCOR 40 mg", "cip13"),
        ("doliprane 1000", "product", "DOLIPRANE 1000 mg", "prefix"),
        ("Kardégic", "product", "KARDEGIC", "exact"),
    ],
)
def test_drug_search_ranks_the_expected_result_first(
    client: TestClient, query: str, kind: str, name_start: str, match: str
) -> None:
    response = client.get("/v1/drugs", params={"q": query, "limit": 5})
    assert response.status_code == 200
    first = response.json()["results"][0]
    assert (first["kind"], first["match"]) == (kind, match)
    assert first["name"].startswith(name_start)


def test_drug_search_limit_and_no_match(client: TestClient) -> None:
    assert len(client.get("/v1/drugs", params={"q": "biogaran", "limit": 7}).json()["results"]) == 7
    assert client.get("/v1/drugs", params={"q": "qqqqqqqqqq"}).json()["results"] == []
    assert client.get("/v1/drugs", params={"q": "amlo", "limit": 0}).status_code == 422


# -- errors ---------------------------------------------------------------------------------------
def test_invalid_field_gives_422_with_its_path_and_reason(client: TestClient) -> None:
    response = client.post("/v1/analyses", json={"lines": [{"text": "x"}, {"cip13": "12ab"}]})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "invalid_input"
    assert error["field"] == "lines.1.cip13"
    assert "pattern" in error["reason"]


def test_unknown_field_is_refused_not_dropped(client: TestClient) -> None:
    response = client.post("/v1/analyses", json={"patient": {"creatinine": 110}, "lines": []})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "patient.creatinine"


def test_invalid_json_gives_422(client: TestClient) -> None:
    response = client.post("/v1/analyses", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "(document)"


def test_unknown_check_gives_422(client: TestClient) -> None:
    response = client.post("/v1/analyses?checks=interactions,telepathy", json=SIMVA_CLARI)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "query.checks"


def test_body_over_the_limit_gives_413(client: TestClient, settings: Settings) -> None:
    big = b'{"lines": [' + b" " * settings.max_body_bytes + b"]}"
    response = client.post("/v1/analyses", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "payload_too_large"


def test_body_over_the_limit_without_content_length_gives_413(client: TestClient, settings: Settings) -> None:
    def chunks() -> Iterator[
        bytes
    ]:  # a streamed upload: no Content-Length, the bytes are counted as they come
        for _ in range(settings.max_body_bytes // 10_000 + 2):
            yield b" " * 10_000

    response = client.post("/v1/analyses", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_too_many_lines_gives_413(client: TestClient, settings: Settings) -> None:
    lines = [{"substance": "paracetamol"}] * (settings.max_lines + 1)
    for path, body in (("/v1/analyses", {"lines": lines}), ("/v1/lines/resolve", {"lines": lines})):
        response = client.post(path, json=body)
        assert response.status_code == 413, path
        assert response.json()["error"]["field"] == "lines"


def test_unknown_route_and_method_use_the_error_shape(client: TestClient) -> None:
    assert client.get("/v2/nothing").json()["error"]["type"] == "not_found"
    response = client.get("/v1/analyses")
    assert response.status_code == 405
    assert response.json()["error"]["type"] == "method_not_allowed"


def test_without_a_knowledge_base_the_process_is_up_but_not_ready(tmp_path: Path) -> None:
    settings = Settings(kb_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'iatro.sqlite'}")
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert "iatro kb build" in ready.json()["reason"]
        response = client.post("/v1/analyses", json=SIMVA_CLARI)
        assert response.status_code == 503
        assert response.json()["error"]["type"] == "knowledge_base_unavailable"
        assert str(tmp_path) not in response.text  # deployment paths stay in the server log
