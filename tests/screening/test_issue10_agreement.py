"""Issue 10: every count of the screening equals what the engine reports for the same patient.

The screening's per-patient medication lists are turned into contract prescriptions and analysed by
``iatro.analysis.Engine``; interaction counts by level, STOPP/START alerts, ACB total, Tisdale level
and score, and the eligibility answers must be the same.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa
import pytest

from iatro.analysis import Engine
from screening.batch import Screener
from screening.output_schema import LEVEL_COLUMNS

CHECKS = frozenset({"interactions", "pim", "omission", "anticholinergic", "qt", "eligibility"})


def _engine_row(engine: Engine, prescription) -> dict[str, object]:
    report = engine.analyze(prescription, CHECKS)
    levels = Counter(a.severity for a in report.alerts if a.type == "interaction")
    # The report keeps these as JSON objects (dict[str, object]): read as the documents they are.
    scores: dict[str, Any] = report.scores
    qt = scores["qt"]
    eligibility: dict[str, Any] = report.eligibility
    row: dict[str, object] = {column: levels.get(level, 0) for level, column in LEVEL_COLUMNS.items()}
    row |= {
        "interactions_unresolved": sum(
            1 for a in report.alerts if a.type == "interaction" and a.unresolved_conditions
        ),
        "stopp": sum(1 for a in report.alerts if a.type == "pim"),
        "start": sum(1 for a in report.alerts if a.type == "omission"),
        "acb_total": scores["anticholinergic"]["total"],
        "qt_level": qt["level"],
        "qt_score": qt["score"],
        "qt_max_possible": qt["max_possible"],
        "town_door": eligibility["doors"]["town"],
        "iatroprev": eligibility["iatroprev"],
        "optimedoc": eligibility["optimedoc"],
        "bilan_partage_medication": eligibility["bilan_partage_medication"],
        "n_lines": len(report.lines),
        "unresolved_codes": sum(1 for line in report.lines if line.status != "resolved"),
    }
    return row


def _agree(engine: Engine, screener: Screener, rows: pa.Table) -> int:
    screened = {r["patient_id"]: r for r in screener.screen(rows).to_pylist()}
    compared = 0
    for pid, prescription in screener.prescriptions(rows):
        assert prescription is not None
        expected = _engine_row(engine, prescription)
        got = {k: screened[pid][k] for k in expected}
        assert got == expected, pid
        compared += 1
    return compared


@pytest.mark.slow
def test_counts_agree_with_the_engine_on_cip13_claims(
    engine: Engine, screener: Screener, cip13_claims
) -> None:
    assert _agree(engine, screener, cip13_claims) == 300


@pytest.mark.slow
def test_counts_agree_with_the_engine_on_mixed_codes(
    engine: Engine, screener: Screener, mixed_claims
) -> None:
    assert _agree(engine, screener, mixed_claims) == 150


@pytest.mark.slow
def test_the_sample_exercises_every_count(screener: Screener, cip13_claims) -> None:
    """The agreement above is not vacuous: the sample has alerts of each kind the test compares."""
    out = screener.screen(cip13_claims)
    for column in ("contraindications", "deconseillees", "stopp", "acb_total", "unresolved_codes"):
        assert pa.compute.sum(out[column]).as_py() > 0, column
    assert set(out["qt_level"].to_pylist()) >= {"low", "moderate"}
    assert set(out["bilan_partage_medication"].to_pylist()) >= {True, None}
