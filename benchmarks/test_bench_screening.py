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
from screening.derive import last_date
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
    # The first run in the process is the CLI's (the engine loaded, every memo and the line catalog
    # cold); the timed one follows it, as a second extract screened by the same process would.
    cold_cpu = time.process_time()
    screen_local(extract, tmp_path / "first", engine, options)
    cold_cpu = time.process_time() - cold_cpu
    start, cpu = time.perf_counter(), time.process_time()
    benchmark.pedantic(
        screen_local, args=(extract, tmp_path / "out", engine, options), rounds=1, iterations=1
    )
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    benchmark.extra_info["patients"] = PATIENTS
    benchmark.extra_info["patients_per_s"] = round(PATIENTS / elapsed, 1)
    # CPU seconds of every thread of the process (Arrow reads Parquet with threads): per core.
    benchmark.extra_info["patients_per_cpu_s"] = round(PATIENTS / cpu, 1)
    benchmark.extra_info["first_run_patients_per_cpu_s"] = round(PATIENTS / cold_cpu, 1)
    benchmark.extra_info["peak_rss_mb"] = round(_peak_rss_mb(), 1)


def test_screen_phases(benchmark, engine: Engine, extract: Path, options: ScreeningOptions):
    """Where the time goes: phases timed on half of the patients, after a warm-up on the other half.

    The warm-up fills the line catalog and the kernel's tables as a long run would; the memos keyed
    on what a rule reads of a patient (criteria alternatives, qualified pairs) carry over, the
    patients themselves are new.
    """
    benchmark.group = "screening phases"
    rows = pq.read_table(extract)
    half = f"P{PATIENTS // 2:09d}"
    screener = Screener(engine, options)
    screener.screen(rows.filter(pc.less(rows["patient_id"], half)))
    chunk = rows.filter(pc.greater_equal(rows["patient_id"], half))
    phases: dict[str, float] = {}

    def run() -> None:
        screener.screen(chunk, phases=phases)

    benchmark.pedantic(run, rounds=1, iterations=1)
    total = sum(phases.values())
    benchmark.extra_info["patients"] = len(pc.unique(chunk["patient_id"]))
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
