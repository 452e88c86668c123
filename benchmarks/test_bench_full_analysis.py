"""Issue 5 timings: the full analysis of a 20-line prescription, and the share of each check.

Every check runs on the same prepared context, so the figures add up to (almost) the full
analysis; the baseline of the group is the resolution of the 20 lines alone, measured in the same
run. The checks remember what does not depend on the prescription (alerts of a pair, ratings of a
substance): analysing the same prescription again reuses them, so the group also times a stream of
200 distinct 20-line prescriptions, each analysed once (``distinct``), after 200 others have warmed
the caches as a running service would. Run:
`.venv/bin/pytest benchmarks/test_bench_full_analysis.py --benchmark-only`.
"""

from __future__ import annotations

import gc

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


@pytest.fixture(scope="module")
def stream() -> list[Prescription]:
    """400 distinct 20-line prescriptions with varied patients: 200 to warm, 200 to time."""
    out = []
    for k, item in enumerate(prescriptions(400, seed=99, lines=(20, 20))):
        item["date"] = "2026-11-24"
        item["patient"] = {
            "age": 70 + k % 26,
            "sex": "FM"[k % 2],
            "weight_kg": 60,
            "creatinine_umol_l": (80, 105, 160)[k % 3],
            "conditions": (["I48", "I10", "E11"], ["I50"], ["K25", "F03"], [])[k % 4],
            "labs": {"potassium_mmol_l": 4.0, "qtc_ms": 440},
        }
        out.append(Prescription.model_validate(item))
    return out


def test_full_analysis_distinct_prescriptions(benchmark, engine: Engine, stream: list[Prescription]):
    """Each of 200 prescriptions the engine has not analysed before, timed alone.

    As the API server does after loading the KB (``api/state.py``), the KB's objects are moved out
    of the garbage collector's reach (``gc.freeze``): otherwise a full collection walks the whole KB
    now and then, and the mean measures that walk more than the analysis.
    """
    benchmark.group = "full analysis, 20 lines"
    warm, timed = stream[:200], stream[200:]
    for p in warm:
        engine.analyze(p, ALL_BUT_ALTERNATIVES)
    for p in timed:
        [engine.resolver.resolve(line, i) for i, line in enumerate(p.lines)]  # the line cache only
    gc.collect()
    gc.freeze()
    try:
        pending = iter(timed)
        benchmark.pedantic(
            lambda: engine.analyze(next(pending), ALL_BUT_ALTERNATIVES), rounds=len(timed), iterations=1
        )
    finally:
        gc.unfreeze()
    stats = benchmark.stats.stats
    print(
        f"\nfull analysis of 200 distinct 20-line prescriptions, each analysed once: "
        f"median {stats.median * 1000:.2f} ms, mean {stats.mean * 1000:.2f} ms"
    )


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
