"""Issue 10 timings: population screening, patients per second per core, memory, Spark 1 -> 2 workers.

Baseline of the group: ``Engine.analyze`` patient by patient (the checks the screening counts) on a
sample of the same patients, measured in the same run; the screening's figure is reported as a
ratio to it and in patients/s. ``extra_info`` holds patients/s, the share of each phase and the peak
resident memory.

    .venv/bin/pytest benchmarks/test_bench_screening.py --benchmark-only            # 100k patients
    IATRO_BENCH_PATIENTS=20000 .venv/bin/pytest benchmarks/test_bench_screening.py --benchmark-only

One million patients (too slow for CI; ~60 M rows, a few GB of Parquet)::

    .venv/bin/python -m benchmarks.claims_generator /tmp/claims-1m.parquet --patients 1000000
    /usr/bin/time -v .venv/bin/iatro screen /tmp/claims-1m.parquet --out /tmp/screen-1m
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from benchmarks.claims_generator import write_claims
from iatro.analysis import Engine
from iatro.kb.store import KnowledgeBase
from screening.batch import Screener
from screening.derive import derive, last_date
from screening.local import screen_local
from screening.options import ScreeningOptions

PATIENTS = int(os.environ.get("IATRO_BENCH_PATIENTS", "100000"))
SPARK_PATIENTS = int(os.environ.get("IATRO_BENCH_SPARK_PATIENTS", "20000"))
BASELINE_SAMPLE = 300
CHECKS = frozenset({"interactions", "pim", "omission", "anticholinergic", "qt", "eligibility"})


@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory, kb: KnowledgeBase) -> Path:
    path = tmp_path_factory.mktemp("screening") / "claims.parquet"
    write_claims(kb, path, PATIENTS, seed=20261124)
    return path


@pytest.fixture(scope="module")
def options(extract: Path) -> ScreeningOptions:
    as_of = last_date(pq.read_table(extract, columns=["date"]))
    assert as_of is not None
    return ScreeningOptions(as_of=as_of)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_baseline_engine_per_patient(benchmark, engine: Engine, extract: Path, options: ScreeningOptions):
    benchmark.group = "screening"
    rows = pq.read_table(extract)
    sample = rows.filter(pc.less(rows["patient_id"], f"P{BASELINE_SAMPLE:09d}"))
    prescriptions = [p for _, p in Screener(engine, options).prescriptions(sample) if p is not None]

    def run() -> None:
        for prescription in prescriptions:
            engine.analyze(prescription, CHECKS)

    start = time.perf_counter()
    benchmark.pedantic(run, rounds=1, iterations=1)
    elapsed = time.perf_counter() - start
    benchmark.extra_info["patients_per_s"] = round(len(prescriptions) / elapsed, 1)


def test_screen_local_one_core(benchmark, engine: Engine, extract: Path, options: ScreeningOptions, tmp_path):
    """The whole local engine (read, derive, every check, rank, summary) on one core."""
    benchmark.group = "screening"
    screen_local(extract, tmp_path / "warm", engine, options)  # memos and line catalog warm, as in a long run
    start = time.perf_counter()
    benchmark.pedantic(
        screen_local, args=(extract, tmp_path / "out", engine, options), rounds=1, iterations=1
    )
    elapsed = time.perf_counter() - start
    benchmark.extra_info["patients"] = PATIENTS
    benchmark.extra_info["patients_per_s_per_core"] = round(PATIENTS / elapsed, 1)
    benchmark.extra_info["peak_rss_mb"] = round(_peak_rss_mb(), 1)


def test_screen_phases(benchmark, engine: Engine, extract: Path, options: ScreeningOptions):
    """Where the time goes: phases timed on half of the patients, after a warm-up on the other half.

    The warm-up fills the line catalog and the kernel's tables as a long run would; the memos keyed
    on patients (criteria, qualified pairs) cannot hit, since the measured patients are new.
    """
    benchmark.group = "screening phases"
    rows = pq.read_table(extract)
    half = f"P{PATIENTS // 2:09d}"
    screener = Screener(engine, options)
    screener.screen(rows.filter(pc.less(rows["patient_id"], half)))
    chunk = rows.filter(pc.greater_equal(rows["patient_id"], half))
    phases: dict[str, float] = {}

    def run() -> None:
        t0 = time.perf_counter()
        derived = derive(chunk, options, screener.catalog)
        t1 = time.perf_counter()
        patients = [screener.patients.get(c) for c in derived.contexts]
        screener.kernel.run(derived.offsets, screener._kernel_lines(derived.line_ids), patients)
        t2 = time.perf_counter()
        lines_of = screener.catalog.lines
        per_patient = []
        for p, context in enumerate(derived.contexts):
            lines = [lines_of[i] for i in derived.line_ids[derived.offsets[p] : derived.offsets[p + 1]]]
            per_patient.append((lines, sum(1 for x in lines if not x.resolved), context, patients[p]))
        for lines, unresolved, context, patient in per_patient:
            screener.criteria.run(lines, unresolved > 0, context, patient)
        t3 = time.perf_counter()
        for lines, unresolved, context, patient in per_patient:
            screener.qt.run(lines, unresolved, context, patient)
            screener.eligibility.run(lines, unresolved, context)
        t4 = time.perf_counter()
        phases["derive"] = t1 - t0
        phases["interactions (batch kernel)"] = t2 - t1
        phases["stopp/start"] = t3 - t2
        phases["qt and eligibility"] = t4 - t3

    benchmark.pedantic(run, rounds=1, iterations=1)
    total = sum(phases.values())
    benchmark.extra_info["patients"] = chunk.num_rows and len(pc.unique(chunk["patient_id"]))
    benchmark.extra_info.update({k: f"{v:.2f} s ({100 * v / total:.0f}%)" for k, v in phases.items()})


@pytest.mark.parametrize("master", ["local[1]", "local[2]"])
def test_spark_local_scaling(benchmark, kb: KnowledgeBase, tmp_path, master: str):
    pytest.importorskip("pyspark")
    from screening.spark import screen_spark

    benchmark.group = "screening spark"
    source = tmp_path / "claims.parquet"
    write_claims(kb, source, SPARK_PATIENTS, seed=5)
    assert kb.directory is not None
    start = time.perf_counter()
    benchmark.pedantic(
        screen_spark,
        args=(source, tmp_path / "out", kb.directory, ScreeningOptions()),
        kwargs={"master": master, "buckets": 8},
        rounds=1,
        iterations=1,
    )
    elapsed = time.perf_counter() - start
    benchmark.extra_info["patients_per_s"] = round(SPARK_PATIENTS / elapsed, 1)
