"""Issue 6: the analysis route runs on the event loop (``async def``, no thread pool). Requests in
flight at the same time each get the report of their own prescription, the same as one at a time."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

# Real DCI names of the ANSM index: enough of them for every prescription below to differ.
SUBSTANCES = (
    "amiodarone", "simvastatine", "warfarine", "clarithromycine", "escitalopram", "bisoprolol",
    "furosemide", "ramipril", "spironolactone", "metformine", "tramadol", "oxybutynine",
    "digoxine", "verapamil", "lithium", "haloperidol", "apixaban", "ibuprofene",
)  # fmt: skip


def _prescriptions(count: int, lines: int = 6) -> list[dict[str, Any]]:
    return [
        {
            "patient": {"age": 75 + i, "sex": "FM"[i % 2], "creatinine_umol_l": 90 + 5 * i},
            "lines": [{"substance": SUBSTANCES[(i + k * 5) % len(SUBSTANCES)]} for k in range(lines)],
        }
        for i in range(count)
    ]


async def _all_at_once(app: FastAPI, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return list(await asyncio.gather(*(client.post("/v1/analyses", json=body) for body in bodies)))


def test_issue6_concurrent_analyses_each_get_their_own_report(client: TestClient, app: FastAPI) -> None:
    bodies = _prescriptions(16)
    one_at_a_time = [client.post("/v1/analyses", json=body) for body in bodies]
    assert all(r.status_code == 200 for r in one_at_a_time)
    reports = [r.json() for r in one_at_a_time]
    assert len({tuple(line["input"] for line in report["lines"]) for report in reports}) == len(bodies)
    assert any(report["alerts"] for report in reports)

    # ``client`` has run the lifespan: the app's state (KB, engine) is loaded and shared.
    together = asyncio.run(_all_at_once(app, bodies))
    assert [r.status_code for r in together] == [200] * len(bodies)
    assert [r.json() for r in together] == reports


def test_issue6_an_invalid_body_among_valid_ones_gets_its_own_422(client: TestClient, app: FastAPI) -> None:
    bodies = _prescriptions(4)
    bodies[2] = {"lines": [{"cip13": 3400936110694}]}  # a number where the contract wants a string
    responses = asyncio.run(_all_at_once(app, bodies))
    assert [r.status_code for r in responses] == [200, 200, 422, 200]
    assert responses[2].json()["error"]["field"] == "lines.0.cip13"
