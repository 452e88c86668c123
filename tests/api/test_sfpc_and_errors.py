"""SFPC code proposals, the curated code table, and the last-resort error path."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import sfpc
from api.app import create_app
from api.errors import LimitExceeded, NotFoundError, status_of
from iatro.errors import (
    ConflictError,
    FieldError,
    InvalidTransition,
    KnowledgeBaseCorrupt,
    PermissionDenied,
)
from iatro.model.report import Alert, Alternative

ROOT = Path(__file__).resolve().parents[2]


def _alert(kind: str, severity: str, rule_id: str = "r", alternatives: int = 0) -> Alert:
    return Alert(
        type=kind,
        severity=severity,
        source="s",
        rule_id=rule_id,
        message="m",
        alternatives=tuple(Alternative(name=f"alt{i}") for i in range(alternatives)),
    )


def test_curated_codes_match_the_knowledge_base_source() -> None:
    # The API ships its own copy (it must not read knowledge_base/ at run time): they must agree.
    with (ROOT / "knowledge_base/sources/sfpc_actip/sfpc_ip_codes.csv").open(encoding="utf-8") as handle:
        source = {(r["axis"], r["code"]): r["label_fr"] for r in csv.DictReader(handle)}
    shipped = sfpc._codes()
    assert shipped, "the packaged table is empty"
    for (axis, code), entry in shipped.items():
        assert source[(axis, code)] == entry.label, (axis, code)
    assert {k for k in source if k[0] != "problem_detail"} == set(shipped)


@pytest.mark.parametrize(
    ("level", "problem"),
    [
        ("a-prendre-en-compte", "6.1"),
        ("precaution-emploi", "6.2"),
        ("association-deconseillee", "6.3"),
        ("contre-indication", "6.4"),
    ],
)
def test_interaction_levels_map_to_problems_6_1_to_6_4(level: str, problem: str) -> None:
    assert sfpc.propose(_alert("interaction", level)).problem.code == problem


@pytest.mark.parametrize(
    ("alert", "problem", "intervention"),
    [
        (_alert("interaction", "contre-indication", alternatives=2), "6.4", "3"),  # substitution
        (_alert("interaction", "contre-indication"), "6.4", "2"),  # no alternative: stop
        (_alert("interaction", "precaution-emploi"), "6.2", "5"),  # monitoring
        (_alert("cyp", "high", alternatives=1), "6.5", "3"),
        (_alert("cyp", "moderate"), "6.5", "7"),
        (_alert("pim", "moderate"), "1", "2"),
        (_alert("omission", "moderate"), "2", "1"),
        (_alert("vaccine", "low"), "2", "1"),
        (_alert("duplicate", "moderate", "duplicate:substance"), "4", "2"),
        (_alert("duplicate", "moderate", "duplicate:class:ipp"), "5", "2"),
        (_alert("renal", "high"), "1", "2"),
        (_alert("renal", "moderate"), "4", "7"),
        (_alert("qt", "high"), "10", "2"),
        (_alert("qt", "moderate"), "10", "5"),
        (_alert("anticholinergic", "moderate"), "7", "5"),
    ],
)
def test_alert_types_map_to_problem_and_intervention(alert: Alert, problem: str, intervention: str) -> None:
    proposal = sfpc.propose(alert)
    assert (proposal.problem.code, proposal.intervention.code) == (problem, intervention)
    assert proposal.why


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (LimitExceeded("lines", "too many", 200), 413),
        (FieldError("lines.0", "bad"), 422),
        (NotFoundError("no such service"), 404),
        (KnowledgeBaseCorrupt("hash"), 503),
        (PermissionDenied("no"), 403),
        (InvalidTransition("no"), 409),
        (ConflictError("changed"), 409),
    ],
)
def test_error_hierarchy_maps_to_http(error: Exception, status: int) -> None:
    assert status_of(error)[0] == status  # type: ignore[arg-type]


def test_an_unexpected_exception_is_a_500_without_the_message_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("patient DUPONT Jeanne, née le 01/03/1942")

    # Not entered as a context manager: the lifespan (the KB load) is not needed for this route.
    client = TestClient(app, raise_server_exceptions=False)
    with caplog.at_level(logging.INFO, logger="iatro.api"):
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "internal_error"
    assert "DUPONT" not in response.text
    assert "RuntimeError" in caplog.text and "test_sfpc_and_errors.py" in caplog.text
    assert "DUPONT" not in caplog.text
