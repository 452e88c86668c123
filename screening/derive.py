"""Dispensation rows of whole patients -> each patient's facts and current medication list (CSR arrays).

Input columns (``INPUT_COLUMNS``): ``patient_id`` and ``date`` are required, with at least one of
``cip13`` / ``cis`` / ``atc`` (a row uses the first code it has, in that order); ``quantity``, ``age``,
``sex``, ``ald`` and ``cim10`` are optional. Rows with a quantity <= 0 (cancellations, regularisations)
are not dispensations. ``sex`` reads ``F`` / ``M`` or the SNDS codes ``2`` (female) / ``1`` (male);
``cim10`` holds CIM-10 codes separated by ``;``, ``,`` or spaces (a code the contract refuses is
counted in ``invalid_conditions``, not used). A patient's age is the highest age of their rows, the ALD
flag is true when any row says so.

Every patient of the rows gets an output row, even with nothing dispensed in the window.

Everything is computed column-wise (numpy, Arrow); Python only runs once per distinct code, per
distinct CIM-10 text, and per patient whose rows carry several different CIM-10 texts.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from iatro.errors import FieldError
from iatro.model.prescription import LineInput, Patient
from screening.lines import CodeKind, LineCatalog
from screening.options import ScreeningOptions
from screening.segments import distinct_sorted, sort_keys

CODE_COLUMNS: tuple[CodeKind, ...] = ("cip13", "cis", "atc")
OPTIONAL_COLUMNS = ("quantity", "age", "sex", "ald", "cim10")
INPUT_COLUMNS = ("patient_id", "date", *CODE_COLUMNS, *OPTIONAL_COLUMNS)
_SEX: dict[str, Literal["F", "M"]] = {"F": "F", "M": "M", "2": "F", "1": "M", "f": "F", "m": "M"}
_SPLIT = re.compile(r"[;,\s]+")
# Codes of the patient-fact arrays.
UNKNOWN_AGE = -1
SEXES: tuple[Literal["F", "M"] | None, ...] = (None, "F", "M")  # sex code -> value
UNKNOWN_ALD = -1


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
class PatientFacts:
    """The claims facts of each patient of a chunk, one array entry per patient."""

    age: npt.NDArray[np.int64]  # years, UNKNOWN_AGE when no row gives a plausible one
    sex: npt.NDArray[np.int8]  # index into SEXES (0: unknown)
    ald: npt.NDArray[np.int8]  # 1 / 0, UNKNOWN_ALD
    conditions: npt.NDArray[np.int64]  # index into condition_sets
    condition_sets: tuple[tuple[str, ...], ...]  # distinct valid CIM-10 code sets, sorted codes
    invalid_conditions: npt.NDArray[np.int32]  # codes the contract refuses

    def condition_set(self, p: int) -> tuple[str, ...]:
        return self.condition_sets[self.conditions[p]]

    def context(self, p: int) -> Context:
        age, sex, ald = int(self.age[p]), int(self.sex[p]), int(self.ald[p])
        conditions = self.condition_sets[self.conditions[p]]
        return Context(None if age < 0 else age, SEXES[sex], conditions, None if ald < 0 else ald == 1)

    def contexts(self) -> list[Context]:
        sets = self.condition_sets
        return [
            Context(None if age < 0 else age, SEXES[sex], sets[c], None if ald < 0 else ald == 1)
            for age, sex, c, ald in zip(
                self.age.tolist(), self.sex.tolist(), self.conditions.tolist(), self.ald.tolist(), strict=True
            )
        ]


@dataclass(frozen=True)
class Derived:
    patient_ids: list[str]
    facts: PatientFacts
    offsets: npt.NDArray[np.int64]  # patient p's lines are line_ids[offsets[p]:offsets[p + 1]]
    line_ids: npt.NDArray[np.int32]  # ids into the catalog, ascending within a patient

    @property
    def invalid_conditions(self) -> npt.NDArray[np.int32]:
        return self.facts.invalid_conditions

    @cached_property
    def contexts(self) -> list[Context]:
        """One :class:`Context` per patient, built on first use (the array checks do not need them)."""
        return self.facts.contexts()


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


def _text_type(column: str, kind: pa.DataType) -> None:
    """Refuse a column that cannot hold text codes (integers are read as their decimal text)."""
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind)):
        raise FieldError(column, f"expected text codes, found {kind}")


def _numpy(values: pa.Array | pa.ChunkedArray) -> npt.NDArray[Any]:
    return np.asarray(values.to_numpy(zero_copy_only=False))


def _encoded(table: pa.Table, column: str) -> tuple[list[str], npt.NDArray[np.int64]]:
    """A text column's distinct values and each row's index among them (-1 for null).

    A dictionary-typed column (Parquet read with ``read_dictionary``, Spark's Arrow batches do not
    have them) is used as it is: only its dictionary is read, once per distinct value. A dictionary
    may hold a value twice or values no row uses; both are dropped here, so that an index means one
    value present in the rows.
    """
    values = table[column]
    if not pa.types.is_dictionary(values.type):
        _text_type(column, values.type)
        if not pa.types.is_string(values.type):
            values = pc.cast(values, pa.string())
        codes = pc.dictionary_encode(values.combine_chunks())
        return codes.dictionary.to_pylist(), _numpy(pc.fill_null(codes.indices, -1)).astype(np.int64)
    _text_type(column, values.type.value_type)
    unified = values.unify_dictionaries()
    if not unified.num_chunks:
        return [], np.zeros(0, dtype=np.int64)
    dictionary = unified.chunk(0).dictionary
    if not pa.types.is_string(dictionary.type):
        dictionary = pc.cast(dictionary, pa.string())
    indices = pa.chunked_array([c.indices for c in unified.chunks], values.type.index_type)
    index = _numpy(pc.fill_null(indices, -1)).astype(np.int64)
    used = np.flatnonzero(np.bincount(index + 1, minlength=len(dictionary) + 1)[1:])
    # The used entries, re-encoded: equal values get one index, a null value none.
    encoded = pc.dictionary_encode(dictionary.take(pa.array(used)))
    remap = np.full(len(dictionary) + 1, -1, dtype=np.int64)  # the last entry maps -1 (null) to itself
    remap[used] = _numpy(pc.fill_null(encoded.indices, -1)).astype(np.int64)
    return encoded.dictionary.to_pylist(), remap[index]


def last_date(table: pa.Table) -> dt.date | None:
    found = pc.max(_dates(table["date"])).as_py()
    return found if isinstance(found, dt.date) else None


def derive(table: pa.Table, options: ScreeningOptions, catalog: LineCatalog) -> Derived:
    check_columns(table.column_names)
    if options.as_of is None:
        raise FieldError("as_of", "the reference date must be known before deriving lists")
    patient_ids, patient_index = _encoded(table, "patient_id")
    missing = int(np.count_nonzero(patient_index < 0))
    if missing:
        raise FieldError("patient_id", f"{missing} row(s) without a patient_id")
    order = np.argsort(np.asarray(patient_ids, dtype=object), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    patient_of = rank[patient_index]
    patient_ids = [patient_ids[i] for i in order.tolist()]
    n_patients = len(patient_ids)

    facts = _facts(table, patient_of, n_patients)

    # Code of each row: the first of cip13, cis, atc it carries, as an index into chunk-local keys.
    keys: list[tuple[str, LineInput | None]] = []
    key_index: dict[str, int] = {}
    row_key = np.full(table.num_rows, -1, dtype=np.int64)
    for kind in CODE_COLUMNS:
        if kind not in table.column_names:
            continue
        distinct, idx = _encoded(table, kind)
        trimmed = pc.utf8_trim_whitespace(pa.array(distinct, pa.string())).to_pylist()
        mapped = np.full(len(distinct) + 1, -1, dtype=np.int64)  # the last entry maps -1 (null) to itself
        for i, code in enumerate(trimmed):
            key, line_input = catalog.base(kind, code)
            found = key_index.get(key)
            if found is None:
                found = key_index[key] = len(keys)
                keys.append((key, line_input))
            mapped[i] = found
        row_key = np.where(row_key < 0, mapped[idx], row_key)

    days = _dates(table["date"]).combine_chunks()
    day = _numpy(pc.fill_null(pc.cast(days, pa.int32()), -(2**31)))
    as_of = (options.as_of - dt.date(1970, 1, 1)).days
    in_lookback = (day <= as_of) & (day > as_of - options.lookback_days)
    keep = (row_key >= 0) & in_lookback
    if "quantity" in table.column_names:
        quantity = _numpy(pc.fill_null(pc.cast(table["quantity"], pa.float64()), 1.0))
        keep &= quantity > 0
    # A row without any code is a dispensation of nothing we can read: an unresolved line of its own.
    no_code = row_key < 0
    if no_code.any():
        key_index.setdefault("missing-code", len(keys))
        if len(keys) == key_index["missing-code"]:
            keys.append(("missing-code", None))
        row_key[no_code] = key_index["missing-code"]
        keep |= no_code & in_lookback

    n_keys = max(len(keys), 1)
    if not keep.any():
        return Derived(patient_ids, facts, np.zeros(n_patients + 1, np.int64), np.zeros(0, np.int32))
    rows = np.flatnonzero(keep)
    # Distinct (patient, line, day) triples as one int64 each: the day is an offset in the lookback.
    pair = patient_of[rows] * n_keys + row_key[rows]
    offset = as_of - day[rows].astype(np.int64)  # 0 .. lookback_days - 1
    span = options.lookback_days
    triples = distinct_sorted(pair * span + offset)
    pair_of, offset_of = np.divmod(triples, span)
    first_of_pair = np.ones(len(pair_of), dtype=bool)
    np.not_equal(pair_of[1:], pair_of[:-1], out=first_of_pair[1:])
    first = np.flatnonzero(first_of_pair)
    pairs = pair_of[first]
    chronic_days = np.add.reduceat((offset_of < options.chronic_days).astype(np.int64), first)
    # Offsets ascend within a pair: its first is its most recent dispensation.
    current = offset_of[first] < options.window_days
    pairs, chronic_days = pairs[current], chronic_days[current]
    chronic = chronic_days >= options.chronic_min_dispensations
    patient, key_of = np.divmod(pairs, n_keys)
    combo = key_of * 2 + chronic
    present = np.zeros(n_keys * 2, dtype=bool)
    present[combo] = True
    combos = np.flatnonzero(present)
    catalog_id = np.zeros(n_keys * 2, dtype=np.int64)
    catalog_id[combos] = [
        catalog.line_id(keys[c // 2][0], keys[c // 2][1], bool(c % 2)) for c in combos.tolist()
    ]
    line_ids = catalog_id[combo]
    # Pairs are sorted by patient already: sort each patient's lines by catalog id.
    bound = int(line_ids.max()) + 1
    sorted_lines = sort_keys(patient * bound + line_ids)
    offsets = np.zeros(n_patients + 1, dtype=np.int64)
    np.cumsum(np.bincount(patient, minlength=n_patients), out=offsets[1:])
    return Derived(patient_ids, facts, offsets, (sorted_lines % bound).astype(np.int32))


def _facts(table: pa.Table, patient_of: npt.NDArray[np.int64], n: int) -> PatientFacts:
    names = table.column_names
    per_row: dict[str, npt.NDArray[np.int64]] = {}  # each fact of each row as an integer code
    if "age" in names:
        try:
            years = pc.cast(table["age"], pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise FieldError("age", f"expected whole years, found {table['age'].type}") from None
        per_row["age"] = _numpy(pc.fill_null(years, np.iinfo(np.int64).min)).astype(np.int64)
    if "ald" in names:
        flags = _booleans(table["ald"])
        said = _numpy(flags.is_valid())
        per_row["ald"] = np.where(said, _numpy(pc.fill_null(flags, False)), UNKNOWN_ALD).astype(np.int64)
    if "sex" in names:
        sexes, per_row["sex"] = _encoded(table, "sex")
    if "cim10" in names:
        texts, per_row["cim10"] = _encoded(table, "cim10")
    # A row that repeats the previous row's patient and facts adds nothing to the patient's facts (a
    # highest age, an "any row says so", a set of values): only the first row of such a run is read.
    starts = np.ones(len(patient_of), dtype=bool)
    np.not_equal(patient_of[1:], patient_of[:-1], out=starts[1:])
    for codes in per_row.values():
        starts[1:] |= codes[1:] != codes[:-1]
    start = np.flatnonzero(starts)
    patient = patient_of[start]
    row = {name: codes[start] for name, codes in per_row.items()}

    age = np.full(n, UNKNOWN_AGE, dtype=np.int64)
    if "age" in row:
        highest = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(highest, patient, row["age"])
        plausible = (highest >= 0) & (highest <= 130)
        age[plausible] = highest[plausible]
    ald = np.full(n, UNKNOWN_ALD, dtype=np.int8)
    if "ald" in row:
        ald[np.bincount(patient[row["ald"] == 0], minlength=n) > 0] = 0
        ald[np.bincount(patient[row["ald"] == 1], minlength=n) > 0] = 1
    sex = np.zeros(n, dtype=np.int8)
    if "sex" in row:
        # Blank values say nothing; any other value must be one of the known codes.
        code = np.array([0] + [SEXES.index(_sex(v)) if v.strip() else 0 for v in sexes], dtype=np.int8)
        said_sex = code[row["sex"] + 1]
        female = np.bincount(patient[said_sex == 1], minlength=n) > 0
        male = np.bincount(patient[said_sex == 2], minlength=n) > 0
        # Rows that disagree on sex leave it unknown rather than pick one.
        sex[female & ~male] = 1
        sex[male & ~female] = 2
    if "cim10" in row:
        conditions, sets, invalid = _conditions_of(texts, patient, row["cim10"], n)
    else:
        conditions, sets, invalid = np.zeros(n, dtype=np.int64), ((),), np.zeros(n, dtype=np.int32)
    return PatientFacts(age, sex, ald, conditions, sets, invalid)


def _conditions_of(
    texts: list[str], patient_of: npt.NDArray[np.int64], idx: npt.NDArray[np.int64], n: int
) -> tuple[npt.NDArray[np.int64], tuple[tuple[str, ...], ...], npt.NDArray[np.int32]]:
    """Each patient's set of valid codes (an index into the distinct sets) and count of refused ones.

    ``idx``: each row's CIM-10 text (an index into ``texts``, -1 for none), ``patient_of`` its patient.
    """
    said = idx >= 0
    n_texts = len(texts)
    # Distinct (patient, text) pairs; most patients repeat one text on every row.
    pairs = distinct_sorted(patient_of[said] * n_texts + idx[said])
    pair_patient, pair_text = np.divmod(pairs, n_texts)
    per_patient = np.bincount(pair_patient, minlength=n)
    set_index: dict[tuple[str, ...], int] = {(): 0}
    sets: list[tuple[str, ...]] = [()]

    def intern(valid: tuple[str, ...]) -> int:
        found = set_index.setdefault(valid, len(sets))
        if found == len(sets):
            sets.append(valid)
        return found

    text_set = np.zeros(n_texts, dtype=np.int64)
    text_bad = np.zeros(n_texts, dtype=np.int32)
    for t, text in enumerate(texts):
        valid, text_bad[t] = _text_conditions(text)
        text_set[t] = intern(valid)
    conditions = np.zeros(n, dtype=np.int64)
    invalid = np.zeros(n, dtype=np.int32)
    single = per_patient[pair_patient] == 1
    conditions[pair_patient[single]] = text_set[pair_text[single]]
    invalid[pair_patient[single]] = text_bad[pair_text[single]]
    several = ~single
    if several.any():
        starts = np.flatnonzero(several & np.r_[True, pair_patient[1:] != pair_patient[:-1]])
        for start in starts.tolist():
            p = int(pair_patient[start])
            tokens = frozenset().union(
                *(_tokens(texts[t]) for t in pair_text[start : start + per_patient[p]])
            )
            valid, invalid[p] = _conditions(tokens)
            conditions[p] = intern(valid)
    return conditions, tuple(sets), invalid


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


def _tokens(text: str) -> frozenset[str]:
    return frozenset(c for c in _SPLIT.split(text) if c)


@lru_cache(maxsize=65_536)
def _text_conditions(text: str) -> tuple[tuple[str, ...], int]:
    """The valid codes of one CIM-10 text and the count of those the contract refuses (memoised)."""
    return _conditions(_tokens(text))


@lru_cache(maxsize=65_536)
def _condition(code: str) -> str | None:
    """A CIM-10 code normalised as the contract normalises it, or None when the contract refuses it."""
    try:
        return Patient(conditions=(code,)).conditions[0]
    except ValueError:
        return None


def _conditions(codes: frozenset[str]) -> tuple[tuple[str, ...], int]:
    """Codes the contract accepts and the count of those it refuses."""
    normalised = [_condition(code) for code in codes]
    valid = {c for c in normalised if c is not None}
    return tuple(sorted(valid)), sum(1 for c in normalised if c is None)
