"""Issue 5 timings: the full analysis of a 20-line prescription, and the share of each check.

Every check runs on the same prepared context, so the figures add up to (almost) the full
analysis; the baseline of the group is the resolution of the 20 lines alone, measured in the same
run. Run: `.venv/bin/pytest benchmarks --benchmark-only -k full`.
"""

from __future__ import annotations

import pytest

from benchmarks.generator import prescriptions
from iatro.analysis import CHECKS, Engine
from iatro.model.prescription import Prescription

ALL_BUT_ALTERNATIVES = frozenset(CHECKS) - {"alternatives"}


@pytest.fixture(scope="module")
def prescription() -> Prescription:
    item = next(prescriptions(1, seed=7, lines=(20, 20)))
    item["date"] = "2026-11-24"
    item["patient"] = {
        "age": 84,
        "sex": "F",
        "weight_kg": 58,
        "creatinine_umol_l": 105,
        "conditions": ["I48", "I10", "E11"],
        "labs": {"potassium_mmol_l": 4.0, "qtc_ms": 440},
    }
    return Prescription.model_validate(item)


def test_full_analysis_all_checks(benchmark, engine: Engine, prescription: Prescription):
    benchmark.group = "full analysis, 20 lines"
    engine.analyze(prescription)
    benchmark(engine.analyze, prescription, ALL_BUT_ALTERNATIVES)


def test_full_analysis_with_alternatives(benchmark, engine: Engine, prescription: Prescription):
    benchmark.group = "full analysis, 20 lines"
    benchmark(engine.analyze, prescription)


def test_full_analysis_baseline_resolution_only(benchmark, engine: Engine, prescription: Prescription):
    benchmark.group = "full analysis, 20 lines"
    benchmark(lambda: [engine.resolver.resolve(line, i) for i, line in enumerate(prescription.lines)])


@pytest.mark.parametrize(
    "check",
    [
        "interactions",
        "cyp",
        "criteria",
        "duplicate",
        "anticholinergic",
        "qt",
        "renal",
        "vaccine",
        "eligibility",
    ],
)
def test_share_of_each_check(benchmark, engine: Engine, prescription: Prescription, check: str):
    benchmark.group = "share of each check, 20 lines"
    lines = tuple(engine.resolver.resolve(line, i) for i, line in enumerate(prescription.lines))
    ctx = engine.context(prescription, lines)
    runners = {
        "interactions": engine.interactions.check,
        "cyp": engine.cyp.check,
        "criteria": engine.criteria.run,
        **{name: c.run for name, c in engine.geriatric},
    }
    benchmark(runners[check], ctx)
