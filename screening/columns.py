"""Columns of dispensation rows read as numpy arrays of integer codes, without decoding a row.

A text column (patient ids, codes, sex, CIM-10 texts) becomes one integer per row, a *slot*: a
Parquet column as the dictionary indices the reader gives, any other one dictionary-encoded once.
Python then only ever sees each distinct value, never each row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from iatro.errors import FieldError

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
NULL_DAY = np.iinfo(np.int32).min  # the day of a row without a date: before any lookback


def to_numpy(values: pa.Array | pa.ChunkedArray) -> npt.NDArray[Any]:
    return np.asarray(values.to_numpy(zero_copy_only=False))


def first_of_runs(values: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """True where a row differs from the previous one (and on the first row)."""
    first = np.empty(len(values), dtype=bool)
    first[:1] = True
    np.not_equal(values[1:], values[:-1], out=first[1:])
    return first


def _text_type(column: str, kind: pa.DataType) -> None:
    """Refuse a column that cannot hold text codes (integers are read as their decimal text)."""
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind)):
        raise FieldError(column, f"expected text codes, found {kind}")


@dataclass(frozen=True, slots=True)
class Text:
    """A text column as integer codes, read without decoding a row.

    ``values`` holds each distinct dictionary of the column once, end to end (the Parquet reader gives
    every batch of a row group the same dictionary); ``slots[r]`` is row r's position in ``values``, -1
    for a null. A value may sit at several slots (in two dictionaries, or twice in one) and a slot may
    be used by no row: :func:`distinct` gives each value one code.
    """

    values: pa.Array  # string
    slots: I32


def text(column: pa.ChunkedArray, name: str) -> Text:
    """A text column as :class:`Text`: a Parquet dictionary column as it is, any other one encoded."""
    if pa.types.is_dictionary(column.type):
        _text_type(name, column.type.value_type)
        chunks = [c for c in column.chunks if len(c)]
    else:
        # Spark's Arrow batches and CSV have no dictionaries: one encoding of the whole column.
        _text_type(name, column.type)
        if not pa.types.is_string(column.type):
            column = pc.cast(column, pa.string())
        chunks = [pc.dictionary_encode(column.combine_chunks())] if len(column) else []
    slots = np.empty(len(column), dtype=np.int32)
    dictionaries: list[pa.Array] = []
    base_of: dict[tuple[object, ...], int] = {}
    size = start = 0
    for chunk in chunks:
        dictionary = chunk.dictionary
        # Same buffers, same values: the batches of one row group share their dictionary.
        identity = (
            dictionary.type,
            dictionary.offset,
            len(dictionary),
            *(0 if b is None else b.address for b in dictionary.buffers()),
        )
        base = base_of.get(identity)
        if base is None:
            base = base_of[identity] = size
            dictionaries.append(
                dictionary if pa.types.is_string(dictionary.type) else pc.cast(dictionary, pa.string())
            )
            size += len(dictionary)
        out = slots[start : start + len(chunk)]
        indices = chunk.indices
        if indices.null_count:
            # Null rows become -1: (index + base + 1) * valid - 1, read from the buffers as they are.
            n, at = len(indices), indices.offset
            raw = np.frombuffer(
                indices.buffers()[1], indices.type.to_pandas_dtype(), n, at * indices.type.byte_width
            )
            valid = np.unpackbits(
                np.frombuffer(indices.buffers()[0], np.uint8), count=at + n, bitorder="little"
            )
            np.add(raw, base + 1, out=out, casting="unsafe")
            out *= valid[at:]
            out -= 1
        else:
            np.add(indices.to_numpy(), base, out=out, casting="unsafe")
        start += len(chunk)
    values = pa.concat_arrays(dictionaries) if dictionaries else pa.array([], pa.string())
    return Text(values, slots)


def distinct(column: Text, slots: I32 | None = None) -> tuple[pa.Array, I32]:
    """The distinct non-null values at ``slots`` (None: in the dictionaries, used by a row or not) and
    each slot's code among them (-1: null).

    Values come in the order they first appear in the column's dictionaries (the order Arrow's
    dictionary unification gives). The codes are a table of ``len(column.values) + 1`` entries, the
    last one answering slot -1, so that ``table[slots]`` codes rows.
    """
    encoded = pc.dictionary_encode(column.values)
    value_of = np.append(to_numpy(pc.fill_null(encoded.indices, -1)).astype(np.int32), -1)
    if slots is None:
        # A null value in a dictionary has code -1 already; every distinct one is kept.
        return encoded.dictionary, value_of
    used_slot = np.bincount(slots + 1, minlength=len(column.values) + 1)[1:] > 0
    used = np.zeros(len(encoded.dictionary) + 1, dtype=bool)  # the last entry collects null values
    used[value_of[:-1][used_slot]] = True
    used = used[:-1]
    code = np.full(len(used) + 1, -1, dtype=np.int32)
    code[np.flatnonzero(used)] = np.arange(np.count_nonzero(used), dtype=np.int32)
    return encoded.dictionary.filter(pa.array(used)), code[value_of]


def dates(column: pa.ChunkedArray) -> pa.ChunkedArray:
    try:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            return pc.cast(pc.strptime(column, format="%Y-%m-%d", unit="s"), pa.date32())
        return pc.cast(column, pa.date32())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise FieldError("date", f"not a date (YYYY-MM-DD expected): {exc}") from None


def days(column: pa.ChunkedArray) -> I32:
    """Each row's date as days since 1970-01-01 (NULL_DAY for a null)."""
    found = pc.cast(dates(column), pa.int32())
    if found.null_count:
        found = pc.fill_null(found, NULL_DAY)
    return np.asarray(found.to_numpy(), dtype=np.int32)


def positive(column: pa.ChunkedArray) -> npt.NDArray[np.bool_]:
    """Rows with a quantity > 0 (a null quantity counts as one box)."""
    if (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)) and not column.null_count:
        return np.asarray(column.to_numpy() > 0)
    return to_numpy(pc.fill_null(pc.cast(column, pa.float64()), 1.0)) > 0


def ages(column: pa.ChunkedArray) -> npt.NDArray[np.integer[Any]]:
    """Each row's age in whole years, the lowest int64 for a null (it never wins a maximum)."""
    kind = column.type
    if pa.types.is_integer(kind) and not pa.types.is_uint64(kind) and not column.null_count:
        return np.asarray(column.to_numpy())
    try:
        years = pc.cast(column, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise FieldError("age", f"expected whole years, found {kind}") from None
    return np.asarray(to_numpy(pc.fill_null(years, np.iinfo(np.int64).min)), dtype=np.int64)


def flags(column: pa.ChunkedArray, name: str, unknown: int) -> npt.NDArray[np.int8]:
    """Each row's true/false flag (``ald``) as 1 / 0, ``unknown`` for a null."""
    if pa.types.is_boolean(column.type):
        found = column
    else:
        try:
            found = pc.cast(column, pa.bool_())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise FieldError(name, f"expected true/false or 1/0, found {column.type}") from None
    said = np.zeros(len(found), dtype=np.int8)
    start = 0
    for chunk in found.chunks:
        # The values' bitmap read as it is (twice as fast as Arrow's cast to integers).
        n, at = len(chunk), chunk.offset
        values = chunk.buffers()[1]
        if n and values is not None:
            bits = np.unpackbits(np.frombuffer(values, np.uint8), count=at + n, bitorder="little")
            said[start : start + n] = bits[at:]
        start += n
    if not found.null_count:
        return said
    return np.where(to_numpy(found.is_valid()), said, unknown).astype(np.int8)
