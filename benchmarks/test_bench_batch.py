"""Issue 4 batch throughput: the vectorised interaction kernel on 100,000 prescriptions of 5–20 lines.

Prescriptions per second on one core, against the pairwise-dictionary baseline measured in the
same run (on the first 2,000 prescriptions of the same batch: at ~2 ms a prescription the whole
batch would take minutes). Cases: line ids in (the kernel alone); DCI names in (encode + kernel);
with one patient per prescription (the qualification reads each patient's facts); the same batch
written as CIS codes of marketed products (combinations and routes included; encode + kernel).
Run: `.venv/bin/pytest benchmarks/test_bench_batch.py --benchmark-only -s`.
"""

from __future__ import annotations

import random
from typing import cast

import numpy as np
import pytest

from benchmarks.generator import prescriptions
from benchmarks.pairwise_baseline import PairwiseChecker
from iatro.analysis import Engine
from iatro.batch import BatchInteractions
from iatro.model.prescription import Patient

COUNT = 100_000
BASELINE_COUNT = 2_000


@pytest.fixture(scope="module")
def batch() -> tuple[list[list[str]], list[Patient]]:
    items = list(prescriptions(COUNT))
    names = [[line["substance"] for line in cast(list[dict[str, str]], item["lines"])] for item in items]
    patients = [Patient.model_validate(item["patient"]) for item in items]
    return names, patients


@pytest.fixture(scope="module")
def kernel(engine: Engine) -> BatchInteractions:
    return BatchInteractions(engine.interactions, engine.resolver)


@pytest.fixture(scope="module")
def rates() -> dict[str, float]:
    return {}


def _csr(names: list[list[str]]) -> tuple[list[str], np.ndarray]:
    flat = [n for lines in names for n in lines]
    offsets = np.concatenate([[0], np.cumsum([len(lines) for lines in names])]).astype(np.int64)
    return flat, offsets


def _record(benchmark, rates: dict[str, float], name: str, count: int) -> None:
    per_second = count / benchmark.stats.stats.median
    rates[name] = per_second
    benchmark.extra_info["prescriptions_per_s"] = round(per_second)
    if "baseline" in rates and name != "baseline":
        benchmark.extra_info["ratio_to_baseline"] = round(per_second / rates["baseline"], 1)


def test_batch_baseline_pairwise(benchmark, engine: Engine, batch, rates):
    benchmark.group = "batch kernel, prescriptions of 5-20 lines"
    checker = PairwiseChecker(engine.kb.thesaurus())
    names = batch[0][:BASELINE_COUNT]
    benchmark.pedantic(lambda: [checker.check(n) for n in names], rounds=2, iterations=1)
    _record(benchmark, rates, "baseline", BASELINE_COUNT)


def test_batch_kernel_from_ids(benchmark, kernel: BatchInteractions, batch, rates):
    benchmark.group = "batch kernel, prescriptions of 5-20 lines"
    flat, offsets = _csr(batch[0])
    ids = kernel.encode_lines(flat)
    kernel.run(offsets, ids)  # first run fills the qualification outcomes of the pairs met
    benchmark.pedantic(kernel.run, args=(offsets, ids), rounds=5, iterations=1)
    _record(benchmark, rates, "ids", COUNT)


def test_batch_kernel_from_names(benchmark, kernel: BatchInteractions, batch, rates):
    benchmark.group = "batch kernel, prescriptions of 5-20 lines"
    flat, offsets = _csr(batch[0])
    kernel.run(offsets, kernel.encode_lines(flat))
    benchmark.pedantic(lambda: kernel.run(offsets, kernel.encode_lines(flat)), rounds=5, iterations=1)
    _record(benchmark, rates, "names", COUNT)


@pytest.fixture(scope="module")
def by_cis(engine: Engine, batch) -> list[list[str]]:
    """The same prescriptions written as CIS codes: each DCI line becomes one marketed product that
    contains it (a combination product now and then), chosen with a seeded generator."""
    kb = engine.kb
    products: dict[str, list[str]] = {}
    for product in kb.products:
        if product.marketed and product.components:
            for component in product.components:
                products.setdefault(kb.substances[component.substance_id].name, []).append(product.cis)
    rng = random.Random(20261125)
    out = []
    for lines in batch[0]:
        out.append([rng.choice(products[name]) if name in products else "00000000" for name in lines])
    return out


def test_batch_kernel_from_cis_codes(benchmark, kernel: BatchInteractions, by_cis, rates):
    benchmark.group = "batch kernel, prescriptions of 5-20 lines"
    flat, offsets = _csr(by_cis)
    kernel.run(offsets, kernel.encode_lines(flat, kind="cis"))
    benchmark.pedantic(
        lambda: kernel.run(offsets, kernel.encode_lines(flat, kind="cis")), rounds=5, iterations=1
    )
    _record(benchmark, rates, "CIS codes", COUNT)


def test_batch_kernel_with_patients(benchmark, kernel: BatchInteractions, batch, rates):
    benchmark.group = "batch kernel, prescriptions of 5-20 lines"
    flat, offsets = _csr(batch[0])
    ids = kernel.encode_lines(flat)
    patients = batch[1]
    kernel.run(offsets, ids, patients)
    benchmark.pedantic(kernel.run, args=(offsets, ids, patients), rounds=5, iterations=1)
    _record(benchmark, rates, "ids + patients", COUNT)


def test_batch_kernel_build(benchmark, engine: Engine, rates):
    """Building the kernel from a loaded engine (signatures and pair table), once per KB."""
    benchmark.group = "batch kernel build"
    benchmark.pedantic(
        lambda: BatchInteractions(engine.interactions, engine.resolver), rounds=3, iterations=1
    )
    base = rates.get("baseline")
    print("\nbatch interactions, prescriptions/s on one core (median):")
    for name, rate in rates.items():
        ratio = f" ({rate / base:,.0f} x baseline)" if base and name != "baseline" else ""
        print(f"  {name:<16} {rate:>12,.0f}{ratio}")
