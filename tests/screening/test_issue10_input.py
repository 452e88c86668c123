"""Issue 10: reading claims — bad input is named, unknown codes are counted, row order does not matter."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from benchmarks.claims_generator import UNKNOWN_CIP13
from iatro.analysis import Engine
from iatro.errors import FieldError
from screening.batch import Screener
from screening.local import screen_local
from screening.options import ScreeningOptions

ROOT = Path(__file__).resolve().parents[2]


def _rows(**columns: list[object]) -> pa.Table:
    return pa.table(columns)


@pytest.mark.slow
@pytest.mark.parametrize("dropped", ["patient_id", "date"])
def test_a_missing_required_column_is_named(tmp_path: Path, engine: Engine, cip13_claims, dropped) -> None:
    path = tmp_path / "claims.parquet"
    pq.write_table(cip13_claims.drop_columns([dropped]), path)
    with pytest.raises(FieldError) as caught:
        screen_local(path, tmp_path / "out", engine, ScreeningOptions())
    assert caught.value.field == dropped


@pytest.mark.slow
def test_no_code_column_is_refused(tmp_path: Path, engine: Engine, cip13_claims) -> None:
    path = tmp_path / "claims.parquet"
    pq.write_table(cip13_claims.drop_columns(["cip13"]), path)
    with pytest.raises(FieldError, match="cip13, cis or atc"):
        screen_local(path, tmp_path / "out", engine, ScreeningOptions())


@pytest.mark.slow
def test_the_command_exits_2_naming_the_column(tmp_path: Path, cip13_claims) -> None:
    path = tmp_path / "claims.parquet"
    pq.write_table(cip13_claims.drop_columns(["date"]), path)
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "screen", str(path), "--out", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "date: missing column" in done.stderr


@pytest.mark.slow
def test_unknown_codes_are_counted_per_patient_never_dropped(screener: Screener) -> None:
    day = dt.date(2026, 6, 1)
    rows = _rows(
        patient_id=["A", "A", "A", "B"],
        date=[day, day, day, day],
        cip13=["3400936110694", UNKNOWN_CIP13, "12345", UNKNOWN_CIP13],  # known, unknown, malformed
        age=[80, 80, 80, 70],
    )
    out = {r["patient_id"]: r for r in screener.screen(rows).to_pylist()}
    assert (out["A"]["n_lines"], out["A"]["unresolved_codes"]) == (3, 2)
    assert (out["B"]["n_lines"], out["B"]["unresolved_codes"]) == (1, 1)


@pytest.mark.slow
def test_every_patient_gets_a_row_even_without_a_current_drug(screener: Screener) -> None:
    old = dt.date(2025, 1, 1)  # before the 6-month lookback of the fixture's reference date
    rows = _rows(patient_id=["Z"], date=[old], cip13=["3400936110694"], age=[90])
    [row] = screener.screen(rows).to_pylist()
    assert (row["patient_id"], row["n_lines"], row["risk_score"]) == ("Z", 0, 0)


@pytest.mark.slow
def test_chronic_needs_three_dispensation_days(screener: Screener) -> None:
    """Three boxes on one day are one dispensation; three days make the drug chronic."""
    as_of = screener.options.as_of
    assert as_of is not None
    days = [as_of - dt.timedelta(days=d) for d in (10, 40, 70)]
    rows = _rows(
        patient_id=["C", "C", "C", "D", "D", "D"],
        date=[days[0], days[0], days[0], *days],
        cip13=["3400936110694"] * 6,
    )
    out = {r["patient_id"]: r for r in screener.screen(rows).to_pylist()}
    assert (out["C"]["n_chronic"], out["D"]["n_chronic"]) == (0, 1)


@pytest.mark.slow
def test_sex_codes_conditions_and_invalid_codes(screener: Screener) -> None:
    day = dt.date(2026, 6, 1)
    rows = _rows(
        patient_id=["E", "F"],
        date=[day, day],
        cip13=["3400936110694", "3400936110694"],
        sex=["2", "1"],
        cim10=["I10;I48", "I10;bad"],
    )
    out = {r["patient_id"]: r for r in screener.screen(rows).to_pylist()}
    assert (out["E"]["sex"], out["F"]["sex"]) == ("F", "M")
    assert (out["E"]["invalid_conditions"], out["F"]["invalid_conditions"]) == (0, 1)
    with pytest.raises(FieldError) as caught:
        screener.screen(_rows(patient_id=["G"], date=[day], cip13=["3400936110694"], sex=["X"]))
    assert caught.value.field == "sex"


@pytest.mark.slow
def test_unsorted_csv_gives_the_rows_of_sorted_parquet(tmp_path: Path, engine: Engine, cip13_claims) -> None:
    """An unsorted CSV goes through the hash buckets; the result is the sorted Parquet's."""
    sorted_path = tmp_path / "sorted.parquet"
    pq.write_table(cip13_claims, sorted_path)
    shuffled = cip13_claims.take(pa.array(list(reversed(range(cip13_claims.num_rows)))))
    csv_path = tmp_path / "shuffled.csv"
    pacsv.write_csv(shuffled, csv_path)
    options = ScreeningOptions()
    a = screen_local(sorted_path, tmp_path / "a", engine, options, chunk_patients=70)
    b = screen_local(csv_path, tmp_path / "b", engine, options, chunk_patients=70)
    rows_a = pq.read_table(tmp_path / "a" / "patients").sort_by("patient_id")
    rows_b = pq.read_table(tmp_path / "b" / "patients").sort_by("patient_id")
    assert rows_a.num_rows == 300
    assert rows_a.to_pylist() == rows_b.to_pylist()
    assert a == b


@pytest.mark.slow
def test_rank_orders_by_risk_score_and_metadata_names_the_kb(
    tmp_path: Path, engine: Engine, cip13_claims
) -> None:
    path = tmp_path / "claims.parquet"
    pq.write_table(cip13_claims, path)
    summary = screen_local(path, tmp_path / "out", engine, ScreeningOptions(), chunk_patients=100)
    table = pq.read_table(tmp_path / "out" / "patients").sort_by("rank")
    assert table["rank"].to_pylist() == list(range(1, table.num_rows + 1))
    scores = table["risk_score"].to_pylist()
    assert scores == sorted(scores, reverse=True)
    assert pc.max(table["risk_score"]).as_py() == scores[0]
    meta = summary["metadata"]
    assert meta["kb_version"] == engine.kb.version  # type: ignore[index]
    assert meta["editions"]["ansm_thesaurus"]  # type: ignore[index]
    assert "not a validated clinical score" in meta["risk_score"]["note"]  # type: ignore[index]
    assert sum(summary["risk_levels"].values()) == 300  # type: ignore[attr-defined]
    assert b"iatro.screening" in pq.read_schema(tmp_path / "out" / "patients" / "part-00000.parquet").metadata
    assert (tmp_path / "out" / "summary.txt").read_text().startswith("Iatro population screening")


def test_the_spark_engine_names_its_extra_when_pyspark_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from screening import spark

    monkeypatch.setitem(sys.modules, "pyspark", None)
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(spark.SparkMissing, match=r"iatro\[spark\]"):
        spark._pyspark()
