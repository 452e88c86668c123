"""Issue 6: the SFPC proposals are cached on what they read; on real reports they are what the rules give.

The cache key (``sfpc._Facts``) is what the rules are given, so they cannot read anything else; these
tests check the other half: on the reports of real prescriptions (the real KB, the benchmark's
generator), the cached proposals, and their JSON, equal a fresh computation for every alert.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api import sfpc
from benchmarks.generator import prescriptions
from iatro.analysis import CHECKS
from iatro.model.report import Alert

PATIENT = {
    "age": 84,
    "sex": "F",
    "weight_kg": 52,
    "creatinine_umol_l": 130,
    "conditions": ["I48", "I10", "E11", "F03"],
    "labs": {"potassium_mmol_l": 3.4, "qtc_ms": 470, "heart_rate_bpm": 58},
}
# One substance on two lines (paracetamol as a brand and as a DCI): the one rule the key reads by id.
SAME_SUBSTANCE = {
    "date": "2026-11-24",
    "patient": PATIENT,
    "lines": [{"text": "DOLIPRANE 1000 mg, 1 cp 3 fois par jour"}, {"substance": "paracetamol"}],
}


def _fresh(alert: Alert) -> dict[str, Any]:
    """The proposal computed now, bypassing the cache."""
    return sfpc._propose.__wrapped__(sfpc._facts(alert)).model_dump(mode="json")


@pytest.fixture(scope="module")
def reported(client: TestClient) -> list[tuple[Alert, dict[str, Any]]]:
    """Every alert of the reports of 40 real prescriptions, with the SFPC codes the API sent for it."""
    bodies: list[dict[str, Any]] = [
        {**item, "date": "2026-11-24", "patient": PATIENT}
        for item in prescriptions(40, seed=6, lines=(8, 15))
    ]
    out = []
    for i, body in enumerate([SAME_SUBSTANCE, *bodies]):
        # Every fourth with all checks: proven alternatives change the intervention (3 rather than 2).
        params = {} if i % 4 == 0 else {"checks": ",".join(c for c in CHECKS if c != "alternatives")}
        response = client.post("/v1/analyses", json=body, params=params)
        assert response.status_code == 200, response.text
        for data in response.json()["alerts"]:
            sent = data.pop("sfpc")
            out.append((Alert.model_validate(data), sent))
    return out


def test_the_reports_cover_the_keys_fields(reported: list[tuple[Alert, dict[str, Any]]]) -> None:
    facts = {sfpc._facts(alert) for alert, _ in reported}
    assert len(reported) > 200
    assert {"interaction", "cyp", "pim", "omission", "duplicate"} <= {f.kind for f in facts}
    assert {True, False} == {f.has_alternatives for f in facts}
    assert any(f.kind == "duplicate" and f.same_substance for f in facts)


def test_cached_proposals_equal_a_fresh_computation_on_real_reports(
    reported: list[tuple[Alert, dict[str, Any]]],
) -> None:
    for alert, sent in reported:
        fresh = _fresh(alert)
        assert sent == fresh, alert.rule_id
        assert sfpc.propose(alert).model_dump(mode="json") == fresh
        assert sfpc.propose_json(alert) == fresh


def test_propose_json_hands_out_a_copy(reported: list[tuple[Alert, dict[str, Any]]]) -> None:
    alert = reported[0][0]
    first = sfpc.propose_json(alert)
    first["problem"]["code"] = "changed"
    first["why"] = "changed"
    assert sfpc.propose_json(alert) == _fresh(alert)


def test_fields_outside_the_key_do_not_change_the_proposal() -> None:
    base = Alert(type="interaction", severity="contre-indication", source="s", rule_id="ansm:1", message="m")
    other = base.model_copy(
        update={"rule_id": "ansm:2", "message": "autre", "lines": (3, 4), "via": ("CLASSE",), "why": "w"}
    )
    assert sfpc.propose(other) is sfpc.propose(base)
    duplicate = Alert(
        type="duplicate", severity="moderate", source="s", rule_id="duplicate:class:ipp", message="m"
    )
    same = duplicate.model_copy(update={"rule_id": "duplicate:substance"})
    assert (sfpc.propose(duplicate).problem.code, sfpc.propose(same).problem.code) == ("5", "4")
