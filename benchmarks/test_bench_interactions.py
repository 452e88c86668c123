"""Issue 4 timings: interactions only and full analysis, 10 and 20 lines, batch throughput.

Each group has the pairwise-dictionary baseline (``pairwise_baseline.py``) measured in the same
run. Run: `.venv/bin/pytest benchmarks --benchmark-only -k interactions`.
"""

from __future__ import annotations

import pytest

from benchmarks.generator import prescriptions
from benchmarks.pairwise_baseline import PairwiseChecker
from iatro.analysis import Engine
from iatro.model.prescription import Prescription


@pytest.fixture(scope="module")
def baseline(engine: Engine) -> PairwiseChecker:
    return PairwiseChecker(engine.kb.thesaurus())


def _prescription(size: int) -> Prescription:
    item = next(prescriptions(1, seed=size, lines=(size, size)))
    return Prescription.model_validate(item)


@pytest.mark.parametrize("size", [10, 20])
def test_interactions_only(benchmark, engine: Engine, size: int):
    benchmark.group = f"interactions only, {size} drugs"
    prescription = _prescription(size)
    engine.analyze(prescription)  # warm the line cache as a running service would be
    benchmark(engine.analyze, prescription, frozenset({"interactions"}))


@pytest.mark.parametrize("size", [10, 20])
def test_interactions_baseline_pairwise(benchmark, baseline: PairwiseChecker, size: int):
    benchmark.group = f"interactions only, {size} drugs"
    names = [line.substance or "" for line in _prescription(size).lines]
    benchmark(baseline.check, names)


def test_batch_throughput(benchmark, engine: Engine):
    benchmark.group = "batch of 2,000 prescriptions"
    batch = [Prescription.model_validate(p) for p in prescriptions(2000)]
    only = frozenset({"interactions"})
    benchmark.pedantic(lambda: [engine.analyze(p, only) for p in batch], rounds=3, iterations=1)


def test_batch_throughput_baseline_pairwise(benchmark, baseline: PairwiseChecker):
    benchmark.group = "batch of 2,000 prescriptions"
    batch = [[line["substance"] for line in p["lines"]] for p in prescriptions(2000)]  # type: ignore[index, union-attr]
    benchmark.pedantic(lambda: [baseline.check(names) for names in batch], rounds=3, iterations=1)
