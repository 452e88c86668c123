"""Dispensation rows of whole patients -> each patient's context and current medication list (CSR arrays).

Input columns (``INPUT_COLUMNS``): ``patient_id`` and ``date`` are required, with at least one of
``cip13`` / ``cis`` / ``atc`` (a row uses the first code it has, in that order); ``quantity``, ``age``,
``sex``, ``ald`` and ``cim10`` are optional. Rows with a quantity <= 0 (cancellations, regularisations)
are not dispensations. ``sex`` reads ``F`` / ``M`` or the SNDS codes ``2`` (female) / ``1`` (male);
``cim10`` holds CIM-10 codes separated by ``;``, ``,`` or spaces (a code the contract refuses is
counted in ``invalid_conditions``, not used). A patient's age is the highest age of their rows, the ALD
flag is true when any row says so.

Every patient of the rows gets an output row, even with nothing dispensed in the window.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from iatro.errors import FieldError
from iatro.model.prescription import LineInput, Patient
from screening.lines import CodeKind, LineCatalog
from screening.options import ScreeningOptions

CODE_COLUMNS: tuple[CodeKind, ...] = ("cip13", "cis", "atc")
OPTIONAL_COLUMNS = ("quantity", "age", "sex", "ald", "cim10")
INPUT_COLUMNS = ("patient_id", "date", *CODE_COLUMNS, *OPTIONAL_COLUMNS)
_SEX: dict[str, Literal["F", "M"]] = {"F": "F", "M": "M", "2": "F", "1": "M", "f": "F", "m": "M"}
_SPLIT = re.compile(r"[;,\s]+")


@dataclass(frozen=True, slots=True)
class Context:
    """What the checks know of a patient from claims: age, sex, conditions, ALD."""

    age: int | None
    sex: Literal["F", "M"] | None
    conditions: tuple[str, ...]
    ald: bool | None

    def patient(self) -> Patient:
        return Patient(
            age=self.age,
            sex=self.sex,
            conditions=self.conditions,
            long_term_condition=self.ald,
        )


@dataclass(frozen=True, slots=True)
class Derived:
    patient_ids: list[str]
    contexts: list[Context]
    invalid_conditions: npt.NDArray[np.int32]
    offsets: npt.NDArray[np.int64]  # patient p's lines are line_ids[offsets[p]:offsets[p + 1]]
    line_ids: npt.NDArray[np.int32]  # ids into the catalog, ascending within a patient


def check_columns(names: list[str]) -> None:
    """Refuse an input that lacks a required column, naming it."""
    for column in ("patient_id", "date"):
        if column not in names:
            raise FieldError(column, f"missing column (columns found: {', '.join(names) or 'none'})")
    if not any(c in names for c in CODE_COLUMNS):
        raise FieldError("cip13", "missing column: the input needs at least one of cip13, cis or atc")


def _dates(column: pa.ChunkedArray) -> pa.ChunkedArray:
    try:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            return pc.cast(pc.strptime(column, format="%Y-%m-%d", unit="s"), pa.date32())
        return pc.cast(column, pa.date32())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise FieldError("date", f"not a date (YYYY-MM-DD expected): {exc}") from None


def _strings(table: pa.Table, column: str) -> pa.ChunkedArray:
    values = table[column]
    if pa.types.is_string(values.type):
        return values
    if (
        pa.types.is_integer(values.type)
        or pa.types.is_large_string(values.type)
        or pa.types.is_dictionary(values.type)
    ):
        return pc.cast(values, pa.string())
    raise FieldError(column, f"expected text codes, found {values.type}")


def last_date(table: pa.Table) -> dt.date | None:
    found = pc.max(_dates(table["date"])).as_py()
    return found if isinstance(found, dt.date) else None


def derive(table: pa.Table, options: ScreeningOptions, catalog: LineCatalog) -> Derived:
    check_columns(table.column_names)
    if options.as_of is None:
        raise FieldError("as_of", "the reference date must be known before deriving lists")
    pid = _strings(table, "patient_id").combine_chunks()
    if pid.null_count:
        raise FieldError("patient_id", f"{pid.null_count} row(s) without a patient_id")
    encoded = pc.dictionary_encode(pid)
    patient_ids: list[str] = encoded.dictionary.to_pylist()
    order = np.argsort(np.asarray(patient_ids, dtype=object), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    patient_of = rank[encoded.indices.to_numpy(zero_copy_only=False)]
    patient_ids = [patient_ids[i] for i in order]
    n_patients = len(patient_ids)

    contexts, invalid = _contexts(table, patient_of, n_patients)

    # Code of each row: the first of cip13, cis, atc it carries, as an index into chunk-local keys.
    keys: list[tuple[str, LineInput | None]] = []
    key_index: dict[str, int] = {}
    row_key = np.full(table.num_rows, -1, dtype=np.int64)
    for kind in CODE_COLUMNS:
        if kind not in table.column_names:
            continue
        codes = pc.dictionary_encode(pc.utf8_trim_whitespace(_strings(table, kind).combine_chunks()))
        mapped = np.empty(len(codes.dictionary), dtype=np.int64)
        for i, code in enumerate(codes.dictionary.to_pylist()):
            key, line_input = catalog.base(kind, code)
            found = key_index.get(key)
            if found is None:
                found = key_index[key] = len(keys)
                keys.append((key, line_input))
            mapped[i] = found
        idx = codes.indices.to_numpy(zero_copy_only=False)
        valid = ~np.asarray(codes.indices.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        take = (row_key < 0) & valid
        row_key[take] = mapped[np.where(valid, idx, 0)[take].astype(np.int64)]

    days = _dates(table["date"]).combine_chunks()
    day = np.asarray(pc.fill_null(pc.cast(days, pa.int32()), -(2**31)).to_numpy(zero_copy_only=False))
    as_of = (options.as_of - dt.date(1970, 1, 1)).days
    keep = (row_key >= 0) & (day <= as_of) & (day > as_of - options.lookback_days)
    if "quantity" in table.column_names:
        quantity = pc.fill_null(pc.cast(table["quantity"], pa.float64()), 1.0).to_numpy()
        keep &= quantity > 0
    # A row without any code is a dispensation of nothing we can read: an unresolved line of its own.
    no_code = row_key < 0
    if no_code.any():
        key_index.setdefault("missing-code", len(keys))
        if len(keys) == key_index["missing-code"]:
            keys.append(("missing-code", None))
        row_key[no_code] = key_index["missing-code"]
        keep |= no_code & (day <= as_of) & (day > as_of - options.lookback_days)

    n_keys = max(len(keys), 1)
    if not keep.any():
        return Derived(
            patient_ids, contexts, invalid, np.zeros(n_patients + 1, np.int64), np.zeros(0, np.int32)
        )
    # Distinct (patient, line, day) triples as one int64 each: the day is an offset in the lookback.
    pair = patient_of[keep] * n_keys + row_key[keep]
    offset = as_of - day[keep].astype(np.int64)  # 0 .. lookback_days - 1
    span = options.lookback_days
    triples = np.unique(pair * span + offset)
    pair_of, offset_of = np.divmod(triples, span)
    pairs, first = np.unique(pair_of, return_index=True)
    chronic_days = np.add.reduceat((offset_of < options.chronic_days).astype(np.int64), first)
    last = as_of - np.minimum.reduceat(offset_of, first)
    current = last > as_of - options.window_days
    pairs, chronic_days = pairs[current], chronic_days[current]
    chronic = chronic_days >= options.chronic_min_dispensations
    key_of = pairs % n_keys
    patient = pairs // n_keys
    combos, inverse = np.unique(key_of * 2 + chronic, return_inverse=True)
    catalog_ids = np.array(
        [catalog.line_id(keys[c // 2][0], keys[c // 2][1], bool(c % 2)) for c in combos.tolist()],
        dtype=np.int32,
    )
    line_ids = catalog_ids[inverse]
    order_lines = np.lexsort((line_ids, patient))
    line_ids, patient = line_ids[order_lines], patient[order_lines]
    offsets = np.zeros(n_patients + 1, dtype=np.int64)
    np.add.at(offsets, patient + 1, 1)
    return Derived(patient_ids, contexts, invalid, np.cumsum(offsets), line_ids)


def _contexts(
    table: pa.Table, patient_of: npt.NDArray[np.int64], n: int
) -> tuple[list[Context], npt.NDArray[np.int32]]:
    ages: list[int | None] = [None] * n
    sexes: list[Literal["F", "M"] | None] = [None] * n
    alds: list[bool | None] = [None] * n
    codes: list[set[str]] = [set() for _ in range(n)]
    names = table.column_names
    index = pa.array(patient_of)
    small = pa.table({"p": index})
    aggregations: list[tuple[str, str]] = []
    if "age" in names:
        try:
            small = small.append_column("age", pc.cast(table["age"], pa.int64()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise FieldError("age", f"expected whole years, found {table['age'].type}") from None
        aggregations.append(("age", "max"))
    if "ald" in names:
        small = small.append_column("ald", _booleans(table["ald"]))
        aggregations.append(("ald", "max"))
    if "sex" in names:
        small = small.append_column("sex", _strings(table, "sex"))
        aggregations.append(("sex", "distinct"))
    if "cim10" in names:
        small = small.append_column("cim10", _strings(table, "cim10"))
        aggregations.append(("cim10", "distinct"))
    if aggregations:
        grouped = small.group_by("p").aggregate(aggregations).to_pydict()
        for k, p in enumerate(grouped["p"]):
            if "age_max" in grouped:
                age = grouped["age_max"][k]
                ages[p] = age if age is not None and 0 <= age <= 130 else None
            if "ald_max" in grouped:
                alds[p] = grouped["ald_max"][k]
            if "sex_distinct" in grouped:
                seen = {_sex(v) for v in grouped["sex_distinct"][k] if v is not None and v.strip()}
                # Rows that disagree on sex leave it unknown rather than pick one.
                sexes[p] = next(iter(seen)) if len(seen) == 1 else None
            if "cim10_distinct" in grouped:
                for text in grouped["cim10_distinct"][k]:
                    if text:
                        codes[p].update(c for c in _SPLIT.split(text) if c)
    invalid = np.zeros(n, dtype=np.int32)
    contexts = []
    for p in range(n):
        valid, bad = _conditions(codes[p])
        invalid[p] = bad
        contexts.append(Context(ages[p], sexes[p], valid, alds[p]))
    return contexts, invalid


def _booleans(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_boolean(column.type):
        return column
    try:
        return pc.cast(column, pa.bool_())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise FieldError("ald", f"expected true/false or 1/0, found {column.type}") from None


def _sex(value: str) -> Literal["F", "M"]:
    found = _SEX.get(value.strip())
    if found is None:
        raise FieldError("sex", f"unknown value {value!r}: expected F, M, 2 (female) or 1 (male)")
    return found


@lru_cache(maxsize=65_536)
def _condition(code: str) -> str | None:
    """A CIM-10 code normalised as the contract normalises it, or None when the contract refuses it."""
    try:
        return Patient(conditions=(code,)).conditions[0]
    except ValueError:
        return None


def _conditions(codes: set[str]) -> tuple[tuple[str, ...], int]:
    """Codes the contract accepts and the count of those it refuses."""
    normalised = [_condition(code) for code in codes]
    valid = {c for c in normalised if c is not None}
    return tuple(sorted(valid)), sum(1 for c in normalised if c is None)
