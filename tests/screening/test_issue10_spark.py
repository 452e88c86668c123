"""Issue 10: the Spark engine (local mode, 1 and 2 workers) writes the local engine's rows and summary."""

from __future__ import annotations

from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from iatro.analysis import Engine
from screening.local import screen_local
from screening.options import ScreeningOptions
from screening.spark import screen_spark


@pytest.fixture(scope="module")
def local_result(tmp_path_factory: pytest.TempPathFactory, engine: Engine, mixed_claims):
    root = tmp_path_factory.mktemp("spark")
    source = root / "claims.parquet"
    pq.write_table(mixed_claims, source)
    summary = screen_local(source, root / "local", engine, ScreeningOptions(), chunk_patients=40)
    return source, pq.read_table(root / "local" / "patients").sort_by("patient_id"), summary


@pytest.mark.slow
@pytest.mark.parametrize("master", ["local[1]", "local[2]"])
def test_spark_rows_equal_local_rows(tmp_path: Path, engine: Engine, local_result, master: str) -> None:
    source, expected, summary = local_result
    assert engine.kb.directory is not None
    options = ScreeningOptions()
    got_summary = screen_spark(
        source, tmp_path / "out", engine.kb.directory, options, master=master, buckets=3
    )
    got = pq.read_table(tmp_path / "out" / "patients").sort_by("patient_id").select(expected.column_names)
    assert got.num_rows == expected.num_rows == 150
    assert got.to_pylist() == expected.to_pylist()
    assert got_summary == summary


@pytest.mark.slow
def test_spark_reads_a_csv_extract_as_the_local_engine_does(
    tmp_path: Path, engine: Engine, mixed_claims, local_result
) -> None:
    """A CSV extract (codes as text, dates as YYYY-MM-DD, the ALD flag as true/false) gives the rows
    the local engine gives for the same rows in Parquet."""
    _, expected, summary = local_result
    source = tmp_path / "claims.csv"
    pacsv.write_csv(mixed_claims, source)
    assert engine.kb.directory is not None
    got_summary = screen_spark(
        source, tmp_path / "out", engine.kb.directory, ScreeningOptions(), master="local[1]", buckets=2
    )
    got = pq.read_table(tmp_path / "out" / "patients").sort_by("patient_id").select(expected.column_names)
    assert got.num_rows == expected.num_rows == 150
    assert got.to_pylist() == expected.to_pylist()
    assert got_summary == summary
