"""Issue 6: ``POST /v1/analyses`` answered by the fast path (``api.analysis_fast_path``) is the route's
answer, byte for byte: status, headers and body; everything the fast path does not take (errors,
odd bodies, other content types) still reaches the route.

The route is reached on purpose with ``Content-Type: application/iatro+json``: FastAPI reads any
``+json`` type as JSON, and the fast path takes only ``application/json``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response  # what TestClient answers with

from api import analysis_fast_path
from benchmarks.generator import prescriptions
from iatro.analysis import CHECKS
from iatro.settings import Settings

FAST = {"content-type": "application/json"}
ROUTE = {"content-type": "application/iatro+json"}
PATIENT = {
    "age": 86,
    "sex": "F",
    "weight_kg": 50,
    "creatinine_umol_l": 140,
    "conditions": ["I48", "I10", "F03"],
    "labs": {"potassium_mmol_l": 3.3, "qtc_ms": 475},
}
NO_ALTERNATIVES = ",".join(c for c in CHECKS if c != "alternatives")


def _valid_bodies() -> list[tuple[bytes, str]]:
    out = []
    for i, item in enumerate(prescriptions(30, seed=66, lines=(2, 15))):
        lines: list[dict[str, str]] = list(item["lines"])  # type: ignore[call-overload]
        if i % 5 == 0:
            lines += [{"text": "MIRACLOR 5 mg"}, {"cip13": "3400936110694"}]
        body = {"lines": lines, "date": "2026-11-24", "patient": PATIENT if i % 3 else item["patient"]}
        query = (
            "" if i % 7 == 0 else ("checks=interactions,pim" if i % 4 == 0 else f"checks={NO_ALTERNATIVES}")
        )
        out.append((json.dumps(body, ensure_ascii=i % 2 == 0).encode(), query))
    out.append((b'{"lines": []}', ""))
    out.append((b'  {"lines": [{"substance": "amiodarone"}, {"substance": "escitalopram"}]} \n', "checks="))
    # A key given twice: both parsers keep the last one.
    out.append((b'{"lines": [{"substance": "x"}], "lines": [{"substance": "warfarine"}]}', ""))
    return out


INVALID: list[tuple[bytes, str]] = [
    (b"", ""),
    (b"{not json", ""),
    (b'{"lines": [{"cip13": 3400936110694}]}', ""),  # a number where the contract wants a string
    (b'{"patient": {"creatinine": 110}, "lines": []}', ""),  # an unknown field
    (b'{"patient": {"age": NaN}, "lines": []}', ""),  # json.loads reads NaN; the contract refuses it
    (b'{"lines": [{"substance": "amiodarone"}]}', "checks=interactions,telepathy"),
    (b'{"lines": [{"substance": "amiodarone"}]} trailing', ""),
    ('{"lines": [{"substance": "amiodarone"}]}'.encode("utf-16"), ""),  # json.loads reads UTF-16
    (b'\xef\xbb\xbf{"lines": [{"substance": "amiodarone"}]}', ""),  # a UTF-8 byte-order mark
    (b'{"lines": [{"text": "\xff\xfe"}]}', ""),  # not UTF-8
    (b'[{"substance": "amiodarone"}]', ""),
    (b'{"lines": [{"substance": "amiodarone"}], "date": "2026-13-45"}', ""),
]


def _post(client: TestClient, body: bytes, query: str, headers: dict[str, str]) -> Response:
    return client.post("/v1/analyses" + (f"?{query}" if query else ""), content=body, headers=headers)


def _same(fast: Response, route: Response) -> None:
    assert fast.status_code == route.status_code
    assert fast.content == route.content
    assert fast.headers["content-type"] == route.headers["content-type"]
    assert fast.headers["content-length"] == route.headers["content-length"]


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each request was answered by the fast path (True) or handed to the route (False)."""
    seen: list[bool] = []
    answer = analysis_fast_path._answer

    def spy(*args: Any) -> bytes | None:
        found = answer(*args)
        seen.append(found is not None)
        return found

    monkeypatch.setattr(analysis_fast_path, "_answer", spy)
    return seen


def test_valid_requests_get_the_routes_bytes_from_the_fast_path(
    client: TestClient, taken: list[bool]
) -> None:
    bodies = _valid_bodies()
    for body, query in bodies:
        fast = _post(client, body, query, FAST)
        assert fast.status_code == 200, fast.text
        _same(fast, _post(client, body, query, ROUTE))
    assert taken == [True] * len(bodies)  # the route's requests never reach the fast path


@pytest.mark.parametrize(("body", "query"), INVALID)
def test_what_the_fast_path_does_not_take_the_route_answers(
    client: TestClient, taken: list[bool], body: bytes, query: str
) -> None:
    fast = _post(client, body, query, FAST)
    route = _post(client, body, query, ROUTE)
    _same(fast, route)
    assert taken == [False]


def test_other_content_types_and_limits_reach_the_route(
    client: TestClient, taken: list[bool], settings: Settings
) -> None:
    body = json.dumps({"lines": [{"substance": "amiodarone"}, {"substance": "clarithromycine"}]}).encode()
    statuses = [
        _post(client, body, "", headers).status_code
        for headers in ({"content-type": "text/plain"}, {"content-type": "application/fhir+json"}, {})
    ]
    assert statuses == [422, 200, 422]  # the route's rules: +json is JSON, no type is not
    assert taken == []  # none of them was looked at
    many = json.dumps({"lines": [{"substance": "paracetamol"}] * (settings.max_lines + 1)}).encode()
    response = _post(client, many, "", FAST)
    assert response.status_code == 413 and response.json()["error"]["field"] == "lines"
    assert taken == [False]
    big = b'{"lines": [' + b" " * settings.max_body_bytes + b"]}"
    assert _post(client, big, "", FAST).status_code == 413  # refused before any parsing
    assert taken == [False]
