"""The Spark engine: the same per-chunk function as the local engine, in Arrow-batched groups of patients.

Rows are grouped into buckets of whole patients (``pmod(hash(patient_id), n)``), and each bucket goes
through :meth:`screening.batch.Screener.screen` with ``groupBy(bucket).applyInArrow``. The compiled KB
files are broadcast once; each Python worker writes them to a private directory, loads the KB and
builds its screener once, and reuses it for every bucket it receives (Spark reuses Python workers).
Ranking and the summary's aggregates are Spark jobs; :func:`screening.summary.summarise` formats them,
so the report is the local engine's.

Needs the ``spark`` extra (``pip install 'iatro[spark]'``) and a Java runtime.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa

from iatro.analysis import Engine
from iatro.errors import IatroError
from iatro.kb.store import load_kb
from screening.batch import Screener
from screening.derive import INPUT_COLUMNS, check_columns
from screening.local import ROWS_PER_PATIENT
from screening.options import ScreeningOptions
from screening.output_schema import OUTPUT_SCHEMA
from screening.summary import FLAGS, LISTS, TOTALS, Aggregates, metadata, summarise, write

# One screener per Python worker process and KB version: Spark calls the group function many times
# in a reused worker, and building the engine costs seconds.
_WORKER_SCREENERS: dict[tuple[str, ScreeningOptions], Screener] = {}


class SparkMissing(IatroError):
    """pyspark is not installed."""


def _pyspark() -> Any:
    try:
        import pyspark.sql
    except ImportError:
        raise SparkMissing(
            "the Spark engine needs pyspark: install the 'spark' extra (pip install 'iatro[spark]')"
        ) from None
    return pyspark.sql


def _kb_files(kb_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(kb_dir.iterdir()) if p.is_file()}


def _worker_screener(version: str, files: Any, options: ScreeningOptions) -> Screener:
    key = (version, options)
    found = _WORKER_SCREENERS.get(key)
    if found is None:
        directory = Path(tempfile.mkdtemp(prefix="iatro-kb-"))
        for name, data in files.value.items():
            (directory / name).write_bytes(data)
        found = _WORKER_SCREENERS[key] = Screener(Engine(load_kb(directory)), options)
    return found


def screen_spark(
    source: Path | str,
    out: Path,
    kb_dir: Path,
    options: ScreeningOptions,
    master: str | None = None,
    chunk_patients: int = 20_000,
    buckets: int | None = None,
    stop: bool = True,
) -> dict[str, object]:
    """Screen an extract with Spark into ``out`` (``patients/`` Parquet, ``summary.json`` and ``.txt``)."""
    sql = _pyspark()
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
    from pyspark.sql.pandas.types import from_arrow_schema
    from pyspark.sql.window import Window

    if master is None or master.startswith("local"):
        # Local mode: the Python workers must be this interpreter (its packages, its iatro).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = sql.SparkSession.builder.appName("iatro-screen").config("spark.sql.session.timeZone", "UTC")
    if master:
        builder = builder.master(master)
    spark = builder.getOrCreate()
    path = str(source)
    if path.lower().endswith(".csv"):
        text = T.StringType()
        header = spark.read.option("header", True).csv(path).columns
        check_columns(header)
        fields = [
            T.StructField(
                c,
                T.DateType() if c == "date" else text if c != "quantity" and c != "age" else T.IntegerType(),
            )
            for c in header
        ]
        frame = spark.read.option("header", True).schema(T.StructType(fields)).csv(path)
        if "ald" in header:
            frame = frame.withColumn("ald", F.col("ald").cast("boolean"))
    else:
        frame = spark.read.parquet(path)
        check_columns(frame.columns)
    frame = frame.select(*[c for c in INPUT_COLUMNS if c in frame.columns])
    if options.as_of is None:
        last = frame.agg(F.max(F.to_date("date")).alias("d")).collect()[0]["d"]
        if not isinstance(last, dt.date):
            raise IatroError("no row has a date: the reference date cannot be set")
        options = options.with_as_of(last)
    engine_kb = load_kb(kb_dir)
    version = engine_kb.version
    files = spark.sparkContext.broadcast(_kb_files(kb_dir))
    n = buckets or max(1, math.ceil(frame.count() / (chunk_patients * ROWS_PER_PATIENT)))
    run_options = options

    def screen_bucket(table: pa.Table) -> pa.Table:
        screener = _worker_screener(version, files, run_options)
        return screener.screen(table.drop_columns(["_bucket"]))

    schema = from_arrow_schema(OUTPUT_SCHEMA)
    scored = (
        frame.withColumn("_bucket", F.pmod(F.hash("patient_id"), F.lit(n)))
        .groupBy("_bucket")
        .applyInArrow(screen_bucket, schema)
    )
    ranking = Window.orderBy(F.col("risk_score").desc(), F.col("patient_id").asc())
    ranked = scored.withColumn("rank", F.row_number().over(ranking).cast("long"))
    out.mkdir(parents=True, exist_ok=True)
    ranked.write.mode("overwrite").parquet(str(out / "patients"))
    written = spark.read.parquet(str(out / "patients")).cache()
    summary = summarise(_aggregates(written, F), metadata(engine_kb, options))
    written.unpersist()
    write(out, summary)
    if stop:
        spark.stop()
    return summary


def _aggregates(frame: Any, F: Any) -> Aggregates:
    agg = Aggregates(patients=frame.count())

    def counts(column: Any) -> Counter[str]:
        out: Counter[str] = Counter()
        for row in frame.select(column.alias("v")).groupBy("v").count().collect():
            value = row["v"]
            key = (
                "unknown" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
            )
            out[key] += row["count"]
        return out

    agg.risk_levels = counts(F.col("risk_level"))
    agg.qt_levels = counts(F.col("qt_level"))
    for flag in FLAGS:
        agg.flags[flag] = counts(F.col(flag))
    sums = frame.agg(*[F.sum(c).alias(c) for c in TOTALS]).collect()[0]
    for column in TOTALS:
        agg.totals[column] = int(sums[column] or 0)
    for key, column in LISTS.items():
        exploded = frame.select(F.explode(column).alias("v")).groupBy("v").count().collect()
        agg.lists[key] = Counter({row["v"]: row["count"] for row in exploded})
    return agg
