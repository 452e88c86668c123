"""Issue 10 (faster derive): columns read from their Arrow buffers give what reading each row gives.

:mod:`screening.columns` reads flags from their bitmaps and text columns as dictionary slots, over
chunks that start inside their buffers (a slice), hold nulls, or repeat a dictionary.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from screening.columns import distinct, flags, text

FLAGS = st.lists(st.one_of(st.none(), st.booleans()), max_size=70)


def _chunked(values: Sequence[object], kind: pa.DataType, cuts: list[int], skip: int) -> pa.ChunkedArray:
    """The values in chunks cut at ``cuts``, each a slice of a larger array (a non-zero offset)."""
    chunks = []
    bounds = [0, *sorted(c % (len(values) + 1) for c in cuts), len(values)]
    for start, end in itertools.pairwise(bounds):
        part = list(values[start:end])
        padded = pa.array([None] * skip + part + [True if kind == pa.bool_() else "x"], kind)
        chunks.append(padded.slice(skip, len(part)))
    return pa.chunked_array(chunks, kind)


@settings(max_examples=300, deadline=None)
@given(FLAGS, st.lists(st.integers(0, 70), max_size=3), st.integers(0, 9))
def test_flags_read_from_bitmaps_are_the_rows_values(
    values: list[bool | None], cuts: list[int], skip: int
) -> None:
    column = _chunked(values, pa.bool_(), cuts, skip)
    expected = [-1 if v is None else int(v) for v in values]
    assert flags(column, "ald", -1).tolist() == expected
    as_text = pa.chunked_array([pa.array(["1" if v else "0" if v is not None else None for v in values])])
    assert flags(as_text, "ald", -1).tolist() == expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", " c", "é"])), max_size=50),
    st.lists(st.integers(0, 50), max_size=3),
    st.booleans(),
)
def test_text_slots_and_distinct_values_give_each_rows_value(
    values: list[str | None], cuts: list[int], dictionaries: bool
) -> None:
    column = _chunked(values, pa.string(), cuts, 2)
    if dictionaries:  # as Parquet gives them: one dictionary per chunk
        column = pa.chunked_array(
            [c.dictionary_encode() for c in column.chunks], pa.dictionary(pa.int32(), pa.string())
        )
    read = text(column, "cim10")
    for slots in (None, read.slots):
        found, code = distinct(read, slots)
        names = found.to_pylist()
        assert len(set(names)) == len(names)
        row_codes = code[read.slots].tolist()
        assert [None if c < 0 else names[c] for c in row_codes] == values
        if slots is not None:  # only the values some row holds
            assert sorted(names) == sorted({v for v in values if v is not None})
