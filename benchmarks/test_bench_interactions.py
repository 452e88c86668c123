"""Issue 4 timings: interactions only, 10 and 20 lines, batch throughput through the engine.

Each group has the pairwise-dictionary baseline (``pairwise_baseline.py``) measured in the same
run. Three ways to time "interactions only":

* ``engine.analyze(p, {"interactions"})``: names in, full report out (line resolution from the
  resolver's cache, exposures, qualification, alert objects, report);
* ``engine.interactions.check(ctx)``: resolved lines (the check context) in, alert objects out;
* ``BatchInteractions.check_lines(ids)``: line ids in, interacting pairs with the level for this
  patient out (``iatro.batch``); ``encode + check_lines`` adds the name -> id lookup.

The 100,000-prescription batch kernel is in ``test_bench_batch.py``.
Run: `.venv/bin/pytest benchmarks/test_bench_interactions.py --benchmark-only`.
"""

from __future__ import annotations

from typing import cast

import pytest

from benchmarks.generator import prescriptions
from benchmarks.pairwise_baseline import PairwiseChecker
from iatro.analysis import Engine
from iatro.batch import BatchInteractions
from iatro.model.prescription import Prescription


@pytest.fixture(scope="module")
def baseline(engine: Engine) -> PairwiseChecker:
    return PairwiseChecker(engine.kb.thesaurus())


@pytest.fixture(scope="module")
def kernel(engine: Engine) -> BatchInteractions:
    return BatchInteractions(engine.interactions, engine.resolver)


def _substances(item: dict[str, object]) -> list[str]:
    return [line["substance"] for line in cast(list[dict[str, str]], item["lines"])]


def _prescription(size: int) -> Prescription:
    item = next(prescriptions(1, seed=size, lines=(size, size)))
    return Prescription.model_validate(item)


def _names(size: int) -> list[str]:
    return [line.substance or "" for line in _prescription(size).lines]


@pytest.mark.parametrize("size", [10, 20])
def test_interactions_only(benchmark, engine: Engine, size: int):
    benchmark.group = f"interactions only, {size} drugs"
    prescription = _prescription(size)
    engine.analyze(prescription)  # warm the line cache as a running service would be
    benchmark(engine.analyze, prescription, frozenset({"interactions"}))


@pytest.mark.parametrize("size", [10, 20])
def test_interactions_check_from_resolved_lines(benchmark, engine: Engine, size: int):
    benchmark.group = f"interactions only, {size} drugs"
    prescription = _prescription(size)
    lines = tuple(engine.resolver.resolve(line, i) for i, line in enumerate(prescription.lines))
    ctx = engine.context(prescription, lines)
    benchmark(engine.interactions.check, ctx)


@pytest.mark.parametrize("size", [10, 20])
def test_interactions_kernel_from_ids(benchmark, kernel: BatchInteractions, size: int):
    benchmark.group = f"interactions only, {size} drugs"
    ids = kernel.encode_lines(_names(size)).tolist()
    benchmark(kernel.check_lines, ids)


@pytest.mark.parametrize("size", [10, 20])
def test_interactions_kernel_from_names(benchmark, kernel: BatchInteractions, size: int):
    benchmark.group = f"interactions only, {size} drugs"
    names = _names(size)
    kernel.encode_lines(names)  # names met before (a service's vocabulary), as the line cache above
    benchmark(lambda: kernel.check_lines(kernel.encode_lines(names).tolist()))


@pytest.mark.parametrize("size", [10, 20])
def test_interactions_baseline_pairwise(benchmark, baseline: PairwiseChecker, size: int):
    benchmark.group = f"interactions only, {size} drugs"
    names = _names(size)
    benchmark(baseline.check, names)


def test_batch_throughput(benchmark, engine: Engine):
    benchmark.group = "batch of 2,000 prescriptions"
    batch = [Prescription.model_validate(p) for p in prescriptions(2000)]
    only = frozenset({"interactions"})
    benchmark.pedantic(lambda: [engine.analyze(p, only) for p in batch], rounds=3, iterations=1)


def test_batch_throughput_baseline_pairwise(benchmark, baseline: PairwiseChecker):
    benchmark.group = "batch of 2,000 prescriptions"
    batch = [_substances(p) for p in prescriptions(2000)]
    benchmark.pedantic(lambda: [baseline.check(names) for names in batch], rounds=3, iterations=1)
