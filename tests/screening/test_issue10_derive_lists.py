"""Issue 10 (faster derive): the current lists equal a plain per-row reading of the rules, in any row order.

:mod:`screening.current_lists` sorts dispensations block by block, ordered by key with Arrow's
counting sort first and by numpy only when the rows were not in patient and date order. Each of these
shortcuts is checked against a reference written the obvious way (a Python loop over rows and sets of
days), on random rows of real BDPM codes: rows in any order, blocks of a few rows, unknown and
missing codes, cancellations, dates out of the lookback or missing, any window.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import screening.current_lists as current_lists
from iatro.analysis import Engine
from iatro.kb.store import KnowledgeBase
from screening.derive import CODE_COLUMNS, derive
from screening.lines import LineCatalog
from screening.options import ScreeningOptions
from screening.patient_rows import patient_rows
from screening.segments import stable_order

AS_OF = dt.date(2026, 6, 30)
LAROXYL_TABLET, LAROXYL_DROPS, SEROPLEX, LASILIX = "65892928", "68969066", "67219535", "63736250"


@dataclass(frozen=True)
class Row:
    patient_id: str
    date: dt.date | None
    cip13: str | None
    cis: str | None
    atc: str | None
    quantity: int | None


def _table(rows: list[Row]) -> pa.Table:
    return pa.table(
        {
            "patient_id": pa.array([r.patient_id for r in rows], pa.string()),
            "date": pa.array([r.date for r in rows], pa.date32()),
            "cip13": pa.array([r.cip13 for r in rows], pa.string()),
            "cis": pa.array([r.cis for r in rows], pa.string()),
            "atc": pa.array([r.atc for r in rows], pa.string()),
            "quantity": pa.array([r.quantity for r in rows], pa.int16()),
        }
    )


def _expected(
    rows: list[Row], options: ScreeningOptions, catalog: LineCatalog
) -> dict[str, set[tuple[str, bool]]]:
    """Each patient's current (line key, chronic) pairs, read row by row."""
    assert options.as_of is not None
    days: dict[tuple[str, str], set[int]] = defaultdict(set)
    lists: dict[str, set[tuple[str, bool]]] = {r.patient_id: set() for r in rows}
    for r in rows:
        codes = [(kind, getattr(r, kind)) for kind in CODE_COLUMNS if getattr(r, kind) is not None]
        if codes:
            if r.quantity is not None and r.quantity <= 0:
                continue  # a cancellation, not a dispensation
            key = catalog.base(codes[0][0], codes[0][1].strip())[0]
        else:
            key = "missing-code"  # a row without a code counts whatever its quantity says
        if r.date is None:
            continue
        ago = (options.as_of - r.date).days
        if 0 <= ago < options.lookback_days:
            days[(r.patient_id, key)].add(ago)
    for (pid, key), agos in days.items():
        if min(agos) < options.window_days:
            in_window = sum(1 for ago in agos if ago < options.chronic_days)
            lists[pid].add((key, in_window >= options.chronic_min_dispensations))
    return lists


@pytest.fixture(scope="module")
def codes(kb: KnowledgeBase) -> dict[str, list[str]]:
    """Real codes: CIS, CIP13 boxes of those products (two boxes of one product are one line), ATC
    codes of their substances, and codes the KB does not know."""
    cis = [LAROXYL_TABLET, LAROXYL_DROPS, SEROPLEX, LASILIX]
    boxes = sorted(c for c, p in kb.by_cip13.items() if kb.products[p.product_id].cis in cis)[:8]
    atc = sorted({atc for c in cis if (atc := kb.by_cis[c].atc)})
    return {
        "cip13": [*boxes, "3400999999990", " " + boxes[0]],
        "cis": [*cis, "60000000", "not-a-cis"],
        "atc": [*atc, "N06AA09", "Z99ZZ99"],
    }


@pytest.fixture(scope="module")
def catalogs() -> dict[int, LineCatalog]:
    """One catalog per chronic_days, shared by the examples (its ids grow over them, as over chunks)."""
    return {}


def _rows(codes: dict[str, list[str]]) -> st.SearchStrategy[list[Row]]:
    def code(kind: str) -> st.SearchStrategy[str | None]:
        return st.one_of(st.none(), st.sampled_from(codes[kind]))

    day = st.one_of(st.integers(-3, 200).map(lambda ago: AS_OF - dt.timedelta(days=ago)), st.none())
    row = st.builds(
        Row,
        patient_id=st.sampled_from(["P1", "P2", "P10", "Pé", "Q"]),
        date=day,
        cip13=code("cip13"),
        cis=code("cis"),
        atc=code("atc"),
        quantity=st.sampled_from([1, 1, 1, 2, 0, -1, None]),
    )
    return st.lists(row, min_size=1, max_size=60)


OPTIONS = st.builds(
    ScreeningOptions,
    window_days=st.integers(1, 200),
    chronic_days=st.sampled_from([30, 90, 180, 200]),
    chronic_min_dispensations=st.integers(1, 4),
    as_of=st.just(AS_OF),
)


def _lists(
    table: pa.Table, options: ScreeningOptions, catalog: LineCatalog
) -> dict[str, set[tuple[str, bool]]]:
    derived = derive(table, options, catalog)
    out: dict[str, set[tuple[str, bool]]] = {}
    for p, pid in enumerate(derived.patient_ids):
        ids = derived.line_ids[derived.offsets[p] : derived.offsets[p + 1]].tolist()
        assert ids == sorted(set(ids)), "a patient's lines come once each, in catalog order"
        out[pid] = {(catalog.lines[i].key, catalog.lines[i].chronic) for i in ids}
    assert derived.patient_ids == sorted(out)
    return out


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), options=OPTIONS, block=st.sampled_from([1, 5, 64, 1 << 16]))
def test_current_lists_equal_a_row_by_row_reading(
    engine: Engine,
    codes: dict[str, list[str]],
    catalogs: dict[int, LineCatalog],
    monkeypatch: pytest.MonkeyPatch,
    data: st.DataObject,
    options: ScreeningOptions,
    block: int,
) -> None:
    rows = data.draw(_rows(codes))
    catalog = catalogs.setdefault(options.chronic_days, LineCatalog(engine, options.chronic_days))
    expected = _expected(rows, options, catalog)
    monkeypatch.setattr(current_lists, "_BLOCK_ROWS", block)
    # As drawn (any order), then as extracts come: grouped by patient, by date within a patient.
    ordered = sorted(rows, key=lambda r: (r.patient_id.encode(), r.date or dt.date.min))
    for table in (_table(rows), _table(ordered)):
        assert _lists(table, options, catalog) == expected


@pytest.mark.slow
def test_a_sorted_extract_needs_no_sort_of_its_own(
    engine: Engine, codes: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows grouped by patient and date come out of the counting sort in order; shuffled ones do not,
    and numpy's sort puts them in order: the lists are the same."""
    options = ScreeningOptions(as_of=AS_OF)
    catalog = LineCatalog(engine, options.chronic_days)
    rng = np.random.default_rng(5)
    rows = [
        Row(f"P{p:03d}", AS_OF - dt.timedelta(days=int(ago)), None, str(rng.choice(codes["cis"])), None, 1)
        for p in range(40)
        for ago in sorted(rng.integers(0, 200, 12).tolist(), reverse=True)
    ]
    shuffled = [rows[i] for i in rng.permutation(len(rows)).tolist()]
    sorts: list[int] = []
    numpy_sort = current_lists._sort

    def counted(packed: np.ndarray) -> np.ndarray:
        sorts.append(len(packed))
        return numpy_sort(packed)

    monkeypatch.setattr(current_lists, "_sort", counted)
    monkeypatch.setattr(current_lists, "_BLOCK_ROWS", 100)
    in_order = _lists(_table(rows), options, catalog)
    assert sorts == []
    assert _lists(_table(shuffled), options, catalog) == in_order == _expected(rows, options, catalog)
    assert sorts


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 10), max_size=300),
    st.sampled_from([11, 4096, 4097, 1 << 16, (1 << 16) + 1]),
)
def test_stable_order_is_numpys_stable_argsort(values: list[int], bound: int) -> None:
    array = np.array(values, dtype=np.int64) * (bound // 11)
    assert stable_order(array, bound).tolist() == np.argsort(array, kind="stable").tolist()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["A", "B", "C", "Bé", "D0"]), min_size=1, max_size=40), st.booleans())
def test_patient_rows_number_patients_in_id_order(ids: list[str], two_dictionaries: bool) -> None:
    column = pa.chunked_array([pa.array(ids, pa.string())])
    if two_dictionaries:  # as Parquet row groups: each part of the column has its own dictionary
        half = len(ids) // 2
        column = pa.chunked_array(
            [pa.array(part, pa.string()).dictionary_encode() for part in (ids[:half], ids[half:]) if part]
        )
    rows = patient_rows(column)
    assert rows.ids == sorted(set(ids), key=str.encode)
    assert [rows.ids[p] for p in rows.of_rows().tolist()] == ids
    assert rows.grouped == (ids == sorted(ids, key=str.encode))


def test_blocks_cut_between_patients(monkeypatch: pytest.MonkeyPatch) -> None:
    """A patient whose rows sit in two runs (two row groups) is never cut in two."""
    ids = ["A"] * 3 + ["B"] * 2 + ["C"] * 4 + ["D"]
    column = pa.chunked_array([pa.array(ids[:4]).dictionary_encode(), pa.array(ids[4:]).dictionary_encode()])
    rows = patient_rows(column)
    assert rows.patient.tolist() == [0, 1, 1, 2, 3]  # B's rows are two runs
    monkeypatch.setattr(current_lists, "_BLOCK_ROWS", 4)
    bounds = current_lists._blocks(rows).tolist()
    assert bounds[0] == 0 and bounds[-1] == len(rows.starts)
    assert 2 not in bounds  # between B's two runs
    assert all(b2 > b1 for b1, b2 in itertools.pairwise(bounds))
