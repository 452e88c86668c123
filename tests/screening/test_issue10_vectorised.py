"""Issue 10: the screening's per-patient columns are array reductions over the chunk, not a Python loop.

The reductions themselves (:mod:`screening.segments`) are checked on hand-made arrays, empty segments
first. Then the edge cases where a vectorised reduction could go wrong and the loop could not (a
patient without any line, only unresolved lines, one substance on two lines, unknown or implausible
age, disagreeing sex, several CIM-10 texts) are screened together in one chunk, and every count is
compared with what ``iatro.analysis.Engine`` reports for the same patient.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from iatro.analysis import Engine
from iatro.errors import FieldError
from iatro.model.prescription import Patient
from screening.batch import Screener
from screening.checks import PatientKey, Patients
from screening.derive import Derived, derive
from screening.local import (
    _last_date_of_statistics,
    _output_columns,
    _work_writer,
    open_input,
    reference_date,
    screen_local,
)
from screening.options import ScreeningOptions
from screening.output_schema import ENCODED_SCHEMA, OUTPUT_SCHEMA
from screening.segments import distinct_sorted, expand, least_per_pair, owners, segment_reduce, segment_sum
from tests.screening.test_issue10_agreement import _engine_row

# -- reductions on hand-made arrays ------------------------------------------------------------------

# Five patients: the first, third and last own nothing.
OFFSETS = np.array([0, 0, 2, 2, 5, 5], dtype=np.int64)
VALUES = np.array([3, 4, 1, 7, 2], dtype=np.int64)


def test_a_sum_over_empty_segments_is_zero() -> None:
    assert segment_sum(VALUES, OFFSETS).tolist() == [0, 7, 0, 10, 0]
    assert segment_sum(np.zeros(0, dtype=np.int64), np.zeros(4, dtype=np.int64)).tolist() == [0, 0, 0]


def test_reduceat_never_leaks_the_next_item_into_an_empty_segment() -> None:
    assert segment_reduce(np.maximum, VALUES, OFFSETS, -1).tolist() == [-1, 4, -1, 7, -1]
    assert segment_reduce(np.bitwise_or, VALUES, OFFSETS, 0).tolist() == [0, 7, 0, 7, 0]
    assert segment_reduce(np.maximum, VALUES[:0], np.zeros(3, dtype=np.int64), 0).tolist() == [0, 0]


def test_owners_and_expand_follow_the_csr() -> None:
    assert owners(OFFSETS).tolist() == [1, 1, 3, 3, 3]
    # Per-id items: id 0 has two, id 1 none, id 2 one.
    item_offsets = np.array([0, 2, 2, 3], dtype=np.int64)
    position, item = expand(np.array([2, 1, 0, 2], dtype=np.int32), item_offsets)
    assert position.tolist() == [0, 2, 2, 3]
    assert item.tolist() == [2, 0, 1, 2]
    empty_position, empty_item = expand(np.array([1, 1], dtype=np.int32), item_offsets)
    assert (len(empty_position), len(empty_item)) == (0, 0)


def test_least_per_pair_keeps_one_entry_per_pair_with_its_least_value() -> None:
    group = np.array([1, 0, 1, 1, 0, 2], dtype=np.int64)
    key = np.array([5, 5, 5, 3, 5, 0], dtype=np.int64)
    value = np.array([2, 1, 0, 1, 1, 2], dtype=np.int64)
    g, k, v = least_per_pair(group, key, value, key_bound=6, value_bound=3)
    assert list(zip(g.tolist(), k.tolist(), v.tolist(), strict=True)) == [
        (0, 5, 1),
        (1, 3, 1),
        (1, 5, 0),
        (2, 0, 2),
    ]


def test_distinct_sorted_in_any_order() -> None:
    keys = np.array([9, 2, 2, 7, 9, 0, 2], dtype=np.int64)
    assert distinct_sorted(keys).tolist() == [0, 2, 7, 9]
    assert distinct_sorted(keys[:1]).tolist() == [9]
    assert distinct_sorted(keys[:0]).tolist() == []


# -- edge cases against the engine ---------------------------------------------------------------------

LAROXYL_TABLET, LAROXYL_DROPS = "65892928", "68969066"  # amitriptyline, two products
CORDARONE_A, CORDARONE_B = "60662396", "64408662"  # amiodarone, two products
ATARAX, SEROPLEX, LASILIX = "61519586", "67219535", "63736250"  # hydroxyzine, escitalopram, furosemide
CHRONIC = ("61939921", "60161143", "61348441", "68416845", "67143532")  # amlodipine .. atorvastatin


def _claims(as_of: dt.date) -> pa.Table:
    rows: list[dict[str, object]] = []

    def add(pid: str, cis: Sequence[str | None], ago: tuple[int, ...] = (5,), **facts: object) -> None:
        for days in ago:
            for code in cis:
                rows.append({"patient_id": pid, "date": as_of - dt.timedelta(days=days), "cis": code} | facts)

    same_substance = [LAROXYL_TABLET, LAROXYL_DROPS, CORDARONE_A, CORDARONE_B, ATARAX, SEROPLEX, LASILIX]
    add("dup", same_substance, age=82, sex="F", ald=True, cim10="I10")
    add("old-rows-only", [*CHRONIC], ago=(300,), age=80, sex="M")
    add("unresolved-only", ["60000000", "60000001"], age=85, sex="F")
    add("no-age", [*CHRONIC, ATARAX], ago=(10, 40, 70), sex="F")
    add("implausible-age", [*CHRONIC, SEROPLEX], ago=(10, 40, 70), age=140, sex="M")
    add("disagreeing-sex", [CORDARONE_A, SEROPLEX], age=78, sex="F", cim10="I48")
    add("disagreeing-sex", [LASILIX], age=78, sex="M", cim10="I48;N18")
    add("chronic-five", [*CHRONIC], ago=(10, 40, 70, 100), age=70, sex="2", ald=False)
    add("several-cim10", [SEROPLEX], age=76, sex="1", cim10="I10;XX")
    add("several-cim10", [LASILIX], age=76, sex="1", cim10="I10, E11.9")
    add("missing-code", [None, SEROPLEX], age=88, sex="F")
    names = ("patient_id", "date", "cis", "age", "sex", "ald", "cim10")
    return pa.table(
        {
            **{name: [r.get(name) for r in rows] for name in names if name not in ("age", "ald")},
            "age": pa.array([r.get("age") for r in rows], pa.int16()),
            "ald": pa.array([r.get("ald") for r in rows], pa.bool_()),
        }
    )


@pytest.fixture(scope="module")
def edge_rows(screener: Screener) -> pa.Table:
    assert screener.options.as_of is not None
    return _claims(screener.options.as_of)


@pytest.fixture(scope="module")
def edge_output(screener: Screener, edge_rows: pa.Table) -> dict[str, dict[str, object]]:
    return {r["patient_id"]: r for r in screener.screen(edge_rows).to_pylist()}


@pytest.mark.slow
def test_edge_cases_agree_with_the_engine(
    engine: Engine, screener: Screener, edge_rows: pa.Table, edge_output: dict[str, dict[str, object]]
) -> None:
    compared = 0
    for pid, prescription in screener.prescriptions(edge_rows):
        if prescription is None:  # a row without code has no contract form
            continue
        expected = _engine_row(engine, prescription)
        assert {k: edge_output[pid][k] for k in expected} == expected, pid
        compared += 1
    assert compared == len(edge_output) - 1


@pytest.mark.slow
def test_a_substance_on_two_lines_counts_once(screener: Screener, edge_rows: pa.Table, edge_output) -> None:
    derived = derive(edge_rows, screener.options, screener.catalog)
    p = derived.patient_ids.index("dup")
    lines = [screener.catalog.lines[i] for i in derived.line_ids[derived.offsets[p] : derived.offsets[p + 1]]]
    assert len(lines) == edge_output["dup"]["n_lines"] == 7
    # Amitriptyline and amiodarone are each on two lines: per-line sums count them twice, the engine once.
    assert 0 < edge_output["dup"]["acb_total"] < sum(points for line in lines for _, points in line.acb)
    assert len(set().union(*(line.qt_sure for line in lines))) < sum(len(line.qt_sure) for line in lines)


@pytest.mark.slow
def test_patients_without_lines_or_facts(edge_output) -> None:
    old = edge_output["old-rows-only"]
    assert (old["n_lines"], old["acb_total"], old["risk_score"]) == (0, 0, 0)
    assert old["interaction_pairs"] == [] and old["town_door"] is False
    unresolved = edge_output["unresolved-only"]
    assert (unresolved["n_lines"], unresolved["unresolved_codes"]) == (2, 2)
    assert unresolved["qt_max_possible"] > unresolved["qt_score"]  # unresolved lines could be QT drugs
    for pid in ("no-age", "implausible-age"):
        assert edge_output[pid]["age"] is None
        assert edge_output[pid]["bilan_partage_medication"] is None  # five chronic molecules, age unknown
    assert edge_output["disagreeing-sex"]["sex"] is None
    assert edge_output["chronic-five"]["bilan_partage_medication"] is True
    several = edge_output["several-cim10"]
    assert (several["sex"], several["invalid_conditions"]) == ("M", 1)
    missing = edge_output["missing-code"]
    assert (missing["n_lines"], missing["unresolved_codes"]) == (2, 1)


@pytest.mark.slow
def test_conditions_of_several_texts_are_united(screener: Screener, edge_rows: pa.Table) -> None:
    derived = derive(edge_rows, screener.options, screener.catalog)
    contexts = dict(zip(derived.patient_ids, derived.contexts, strict=True))
    assert contexts["several-cim10"].conditions == ("E119", "I10")
    assert contexts["disagreeing-sex"].conditions == ("I48", "N18")


@pytest.mark.slow
def test_patients_are_built_on_demand_from_the_facts(screener: Screener, edge_rows: pa.Table) -> None:
    derived = derive(edge_rows, screener.options, screener.catalog)
    memo: dict[PatientKey, Patient] = {}
    patients = Patients(derived.facts, memo)
    assert len(patients) == len(derived.patient_ids) and not memo
    assert list(patients) == [c.patient() for c in derived.contexts]
    assert patients[-1] is patients[len(patients) - 1]
    assert list(patients[1:3]) == list(patients)[1:3]
    with pytest.raises(IndexError):
        patients[len(patients)]


def _as_dictionary(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """The column as a dictionary array whose dictionary repeats a value and holds one no row uses."""
    encoded = values.combine_chunks().dictionary_encode()
    n = len(encoded.dictionary)
    dictionary = pa.concat_arrays([encoded.dictionary, encoded.dictionary, pa.array(["UNUSED"])])
    # Odd rows point into the second copy of the dictionary.
    indices = encoded.indices.to_numpy(zero_copy_only=False).astype(np.float64)
    shifted = np.where(np.arange(len(indices)) % 2 == 1, indices + n, indices)
    mask = encoded.indices.is_null().to_numpy(zero_copy_only=False)
    index_array = pa.array(np.nan_to_num(shifted).astype(np.int32), mask=mask)
    return pa.chunked_array([pa.DictionaryArray.from_arrays(index_array, dictionary)])


@pytest.mark.slow
def test_dictionary_columns_give_the_rows_of_text_columns(screener: Screener, edge_rows: pa.Table) -> None:
    """Parquet text columns are read as dictionaries; one may repeat a value or hold an unused one."""
    encoded = edge_rows
    for name in ("patient_id", "cis", "sex", "cim10"):
        encoded = encoded.set_column(encoded.column_names.index(name), name, _as_dictionary(edge_rows[name]))
    assert pa.types.is_dictionary(encoded.schema.field("patient_id").type)
    assert screener.screen(encoded).equals(screener.screen(edge_rows))


@pytest.mark.slow
def test_chunks_cut_between_patients_whatever_the_batches(
    tmp_path: Path, engine: Engine, screener: Screener, cip13_claims: pa.Table
) -> None:
    """Small row groups put a patient's rows in several batches; small chunks cut often."""
    source = tmp_path / "claims.parquet"
    pq.write_table(cip13_claims.sort_by("patient_id"), source, row_group_size=500)
    screen_local(source, tmp_path / "out", engine, ScreeningOptions(), chunk_patients=37)
    got = pq.read_table(tmp_path / "out" / "patients").drop_columns(["rank"]).sort_by("patient_id")
    assert got.num_rows == 300
    assert got.equals(screener.screen(cip13_claims).sort_by("patient_id"))


# -- derive reads codes, not strings (issue 10, faster derive) ------------------------------------------


def _derived_view(derived: Derived) -> dict[str, object]:
    """What a derivation says of each patient, whatever the order its codes and texts were met in."""
    return {
        "patient_ids": derived.patient_ids,
        "offsets": derived.offsets.tolist(),
        "line_ids": derived.line_ids.tolist(),
        "contexts": derived.contexts,
        "invalid": derived.invalid_conditions.tolist(),
    }


@pytest.mark.slow
def test_derive_gives_the_same_lists_from_dictionaries_chunks_and_any_row_order(
    tmp_path: Path, screener: Screener, mixed_claims: pa.Table
) -> None:
    """Mixed codes (two of cip13 / cis / atc null on each row), unknown codes, real BDPM products.

    Parquet with small row groups gives several dictionaries per column, and patients whose rows sit
    in two of them; shuffled rows are not grouped by patient at all.
    """
    plain = derive(mixed_claims, screener.options, screener.catalog)
    source = tmp_path / "claims.parquet"
    pq.write_table(mixed_claims, source, row_group_size=700)
    text_columns = ["patient_id", "cip13", "cis", "atc", "sex", "cim10"]
    encoded = pq.read_table(source, read_dictionary=text_columns)
    assert pa.types.is_dictionary(encoded.schema.field("cip13").type)
    assert len({c.dictionary.buffers()[1].address for c in encoded["patient_id"].chunks}) > 1
    shuffled = mixed_claims.take(np.random.default_rng(3).permutation(mixed_claims.num_rows))
    expected = _derived_view(plain)
    assert len(plain.patient_ids) == 150 and len(plain.line_ids) > 1000
    for table in (encoded, shuffled, encoded.take(np.arange(encoded.num_rows)[::-1])):
        assert _derived_view(derive(table, screener.options, screener.catalog)) == expected


@pytest.mark.slow
def test_a_null_patient_id_is_named_with_its_row_count(screener: Screener) -> None:
    # A null index and an index to a null dictionary value: both are rows without a patient_id.
    ids = pa.DictionaryArray.from_arrays(pa.array([0, None, 1, 1, 0], pa.int32()), pa.array(["P1", None]))
    day = screener.options.as_of
    rows = pa.table({"patient_id": ids, "date": [day] * 5, "cis": ["60000000"] * 5})
    with pytest.raises(FieldError) as caught:
        derive(rows, screener.options, screener.catalog)
    assert caught.value.field == "patient_id" and "3 row(s)" in str(caught.value)


def test_the_reference_date_comes_from_parquet_statistics_or_from_the_rows(tmp_path: Path) -> None:
    days = [dt.date(2026, 3, 1), dt.date(2026, 7, 14), None, dt.date(2026, 7, 2)]
    rows = pa.table({"patient_id": ["A", "A", "B", "C"], "date": days, "cis": ["60000000"] * 4})
    for statistics in (True, False):
        path = tmp_path / f"claims-{statistics}.parquet"
        pq.write_table(rows, path, row_group_size=2, write_statistics=statistics)
        dataset = open_input(path)
        assert _last_date_of_statistics(dataset) == (dt.date(2026, 7, 14) if statistics else None)
        assert reference_date(dataset, ScreeningOptions()).as_of == dt.date(2026, 7, 14)


def test_the_work_file_gives_back_the_output_rows(tmp_path: Path) -> None:
    """List columns go through the work file dictionary-encoded: empty and null lists, repeated texts."""
    names = [f.name for f in OUTPUT_SCHEMA]
    n = 4
    columns: dict[str, pa.Array] = {}
    for field in OUTPUT_SCHEMA:
        if pa.types.is_list(field.type):
            lists = [
                ["a + b: contre-indication", "a + c: precaution-emploi"],
                [],
                None,
                ["a + b: contre-indication"],
            ]
            columns[field.name] = pa.array(lists, field.type)
        elif pa.types.is_string(field.type):
            columns[field.name] = pa.array([f"{field.name}-{i % 2}" for i in range(n)], field.type)
        elif pa.types.is_boolean(field.type):
            columns[field.name] = pa.array([True, None, False, True], field.type)
        else:
            columns[field.name] = pa.array(range(n), field.type)
    table = pa.Table.from_arrays([columns[name] for name in names], schema=OUTPUT_SCHEMA)
    encoded = table.cast(ENCODED_SCHEMA)
    path = tmp_path / "work.arrows"
    with _work_writer(path) as writer:  # each batch with its own dictionaries
        writer.write_table(encoded.slice(0, 3).combine_chunks())
        writer.write_table(encoded.slice(3).combine_chunks())
    with pa.memory_map(str(path)) as source:
        batches = [
            pa.RecordBatch.from_arrays(_output_columns(b), schema=OUTPUT_SCHEMA)
            for b in ipc.open_stream(source)
        ]
    assert pa.Table.from_batches(batches).equals(table)


def test_encoded_lists_are_the_output_rows_with_their_texts_encoded(
    screener: Screener, mixed_claims: pa.Table
) -> None:
    """What the local engine writes to its work file decodes to what ``screen`` returns."""
    plain = screener.screen(mixed_claims)
    encoded = screener.screen(mixed_claims, encoded_lists=True)
    assert encoded.schema.equals(ENCODED_SCHEMA) and plain.schema.equals(OUTPUT_SCHEMA)
    assert any(len(v) for v in plain["interaction_pairs"].to_pylist())
    assert any(len(v) for v in plain["stopp_criteria"].to_pylist())
    decoded = pa.Table.from_batches(
        [pa.RecordBatch.from_arrays(_output_columns(b), schema=OUTPUT_SCHEMA) for b in encoded.to_batches()]
    )
    assert decoded.equals(plain)
