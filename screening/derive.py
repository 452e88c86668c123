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
distinct CIM-10 text, and per patient whose rows carry several different CIM-10 texts. Text columns
are read as integer codes (a Parquet column as the dictionary indices the reader gives, with no row
decoded), each (patient, line, day) is packed into one int64, and one sort of these groups the
dispensations of each line of each patient.
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

from iatro.errors import FieldError, InputError
from iatro.model.prescription import LineInput, Patient
from screening.lines import CodeKind, LineCatalog
from screening.options import ScreeningOptions
from screening.segments import distinct_sorted, sort_keys

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]

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


def _first_of_runs(values: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """True where a row differs from the previous one (and on the first row)."""
    first = np.empty(len(values), dtype=bool)
    first[:1] = True
    np.not_equal(values[1:], values[:-1], out=first[1:])
    return first


@dataclass(frozen=True, slots=True)
class _Text:
    """A text column as integer codes, read without decoding a row.

    ``values`` holds each distinct dictionary of the column once, end to end (the Parquet reader gives
    every batch of a row group the same dictionary); ``slots[r]`` is row r's position in ``values``, -1
    for a null. A value may sit at several slots (in two dictionaries, or twice in one) and a slot may
    be used by no row: :func:`_distinct` gives each value one code.
    """

    values: pa.Array  # string
    slots: I32


def _text(column: pa.ChunkedArray, name: str) -> _Text:
    """A text column as :class:`_Text`: a Parquet dictionary column as it is, any other one encoded."""
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
    return _Text(values, slots)


def _distinct(text: _Text, slots: I32) -> tuple[pa.Array, I32]:
    """The distinct non-null values at ``slots`` and each slot's code among them (-1: null).

    Values come in the order they first appear in the column's dictionaries (the order Arrow's
    dictionary unification gives). The codes are a table of ``len(text.values) + 1`` entries, the last
    one answering slot -1, so that ``table[slots]`` codes rows.
    """
    n = len(text.values)
    used_slot = np.bincount(slots + 1, minlength=n + 1)[1:] > 0
    encoded = pc.dictionary_encode(text.values)
    value_of = np.append(_numpy(pc.fill_null(encoded.indices, -1)).astype(np.int64), -1)
    used = np.zeros(len(encoded.dictionary) + 1, dtype=bool)  # the last entry collects null values
    used[value_of[:-1][used_slot]] = True
    used = used[:-1]
    code = np.full(len(used) + 1, -1, dtype=np.int32)
    code[np.flatnonzero(used)] = np.arange(np.count_nonzero(used), dtype=np.int32)
    return encoded.dictionary.filter(pa.array(used)), code[value_of]


def _patients(column: pa.ChunkedArray) -> tuple[list[str], I64]:
    """The patient ids of the rows, sorted, and each row's patient (an index into them).

    Rows come grouped by patient: only the first row of each run of equal codes is decoded, and the
    distinct ids are sorted as text by Arrow.
    """
    text = _text(column, "patient_id")
    slots = text.slots
    if not len(slots):
        return [], np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(_first_of_runs(slots))
    run_slot = slots[starts]
    run_rows = np.diff(np.append(starts, len(slots)))
    used = np.flatnonzero(np.bincount(run_slot + 1, minlength=len(text.values) + 1)) - 1
    known = used[used >= 0]
    ids = text.values.take(pa.array(known))
    null_slot = np.zeros(len(text.values) + 1, dtype=bool)  # the last entry answers slot -1
    null_slot[-1] = True
    null_slot[known] = _numpy(ids.is_null())
    missing = int(run_rows[null_slot[run_slot]].sum())
    if missing:
        raise FieldError("patient_id", f"{missing} row(s) without a patient_id")
    order = pc.array_sort_indices(ids)
    ordered = ids.take(order)
    first = np.ones(len(ordered), dtype=bool)
    if len(ordered) > 1:
        first[1:] = _numpy(pc.not_equal(ordered[1:], ordered[:-1]))
    rank_of = np.zeros(len(text.values), dtype=np.int64)
    rank_of[known[_numpy(order)]] = np.cumsum(first) - 1
    return ordered.filter(pa.array(first)).to_pylist(), np.repeat(rank_of[run_slot], run_rows)


def last_date(table: pa.Table) -> dt.date | None:
    found = pc.max(_dates(table["date"])).as_py()
    return found if isinstance(found, dt.date) else None


def _days(column: pa.ChunkedArray) -> I32:
    """Each row's date as days since 1970-01-01 (far in the past for a null)."""
    days = pc.cast(_dates(column), pa.int32())
    if days.null_count:
        days = pc.fill_null(days, -(2**31))
    return np.asarray(days.to_numpy(), dtype=np.int32)


def _positive(column: pa.ChunkedArray) -> npt.NDArray[np.bool_]:
    """Rows with a quantity > 0 (a null quantity counts as one box)."""
    if (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)) and not column.null_count:
        return np.asarray(column.to_numpy() > 0)
    return _numpy(pc.fill_null(pc.cast(column, pa.float64()), 1.0)) > 0


def derive(table: pa.Table, options: ScreeningOptions, catalog: LineCatalog) -> Derived:
    check_columns(table.column_names)
    if options.as_of is None:
        raise FieldError("as_of", "the reference date must be known before deriving lists")
    patient_ids, patient_of = _patients(table["patient_id"])
    n_patients = len(patient_ids)

    facts = _facts(table, patient_of, n_patients)

    # Code of each row: the first of cip13, cis, atc it carries, as an index into chunk-local keys.
    keys: list[tuple[str, LineInput | None]] = []
    key_index: dict[str, int] = {}
    row_key: I32 | None = None
    for kind in CODE_COLUMNS:
        if kind not in table.column_names:
            continue
        text = _text(table[kind], kind)
        distinct, code = _distinct(text, text.slots)
        trimmed = pc.utf8_trim_whitespace(distinct).to_pylist()
        mapped = np.full(len(trimmed) + 1, -1, dtype=np.int32)  # the last entry maps -1 (null) to itself
        for i, value in enumerate(trimmed):
            key, line_input = catalog.base(kind, value)
            found = key_index.get(key)
            if found is None:
                found = key_index[key] = len(keys)
                keys.append((key, line_input))
            mapped[i] = found
        row_code = mapped[code][text.slots]
        row_key = row_code if row_key is None else np.where(row_key < 0, row_code, row_key)
    if row_key is None:  # check_columns makes sure there is a code column
        raise FieldError("cip13", "missing column: the input needs at least one of cip13, cis or atc")

    as_of = (options.as_of - dt.date(1970, 1, 1)).days
    span = options.lookback_days
    # Days before as_of; a row after as_of wraps to a huge unsigned value, out of the lookback too.
    offset = np.subtract(as_of, _days(table["date"]), dtype=np.int64)
    keep = offset.view(np.uint64) < span
    positive = _positive(table["quantity"]) if "quantity" in table.column_names else None
    # A row without any code is a dispensation of nothing we can read: an unresolved line of its own.
    no_code = row_key < 0
    if no_code.any():
        key_index.setdefault("missing-code", len(keys))
        if len(keys) == key_index["missing-code"]:
            keys.append(("missing-code", None))
        row_key[no_code] = key_index["missing-code"]
        if positive is not None:
            positive |= no_code
    if positive is not None:
        keep &= positive

    n_keys = max(len(keys), 1)
    if not keep.any():
        return Derived(patient_ids, facts, np.zeros(n_patients + 1, np.int64), np.zeros(0, np.int32))
    # Each (patient, line, day) as one int64, bit fields in that order, so that one sort groups rows
    # by patient, then line, most recent day first; the day is its offset in the lookback.
    day_bits = (span - 1).bit_length()
    key_bits = (n_keys - 1).bit_length()
    if (n_patients - 1).bit_length() + key_bits + day_bits > 63:
        raise InputError(f"a chunk of {n_patients} patients and {n_keys} codes is too large to screen")
    packed = np.left_shift(patient_of, key_bits + day_bits)
    packed |= np.left_shift(row_key, day_bits, dtype=np.int64)
    packed |= offset  # meaningless in the rows out of the lookback, dropped before the sort
    if not keep.all():
        packed = packed[keep]
    packed.sort(kind="stable")  # grouped by patient already: see screening.segments
    pair_of = packed >> day_bits
    first = np.flatnonzero(_first_of_runs(pair_of))
    day_of = packed & ((1 << day_bits) - 1)
    # A distinct dispensation day in the chronic window (a day is counted once per line).
    counted = day_of < options.chronic_days
    counted[1:] &= packed[1:] != packed[:-1]
    counted_before = np.cumsum(counted, dtype=np.int32)
    last = np.append(first[1:], len(packed)) - 1
    chronic_days = counted_before[last] - counted_before[first] + counted[first]
    # Offsets ascend within a pair: its first is its most recent dispensation.
    current = day_of[first] < options.window_days
    pairs, chronic_days = pair_of[first][current], chronic_days[current]
    chronic = chronic_days >= options.chronic_min_dispensations
    patient = pairs >> key_bits
    key_of = pairs & ((1 << key_bits) - 1)
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


def _ages(column: pa.ChunkedArray) -> npt.NDArray[np.integer[Any]]:
    """Each row's age in whole years, the lowest int64 for a null (it never wins a maximum)."""
    kind = column.type
    if pa.types.is_integer(kind) and not pa.types.is_uint64(kind) and not column.null_count:
        return np.asarray(column.to_numpy())
    try:
        years = pc.cast(column, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise FieldError("age", f"expected whole years, found {kind}") from None
    return np.asarray(_numpy(pc.fill_null(years, np.iinfo(np.int64).min)), dtype=np.int64)


def _ald(column: pa.ChunkedArray) -> npt.NDArray[np.int8]:
    """Each row's ALD flag: 1 / 0, UNKNOWN_ALD for a null."""
    flags = _booleans(column)
    if not flags.null_count:
        return np.asarray(_numpy(flags), dtype=np.int8)
    said = _numpy(flags.is_valid())
    return np.where(said, _numpy(pc.fill_null(flags, False)), UNKNOWN_ALD).astype(np.int8)


def _facts(table: pa.Table, patient_of: I64, n: int) -> PatientFacts:
    names = table.column_names
    per_row: dict[str, npt.NDArray[Any]] = {}  # each fact of each row as an integer code
    texts: dict[str, _Text] = {}
    if "age" in names:
        per_row["age"] = _ages(table["age"])
    if "ald" in names:
        per_row["ald"] = _ald(table["ald"])
    for name in ("sex", "cim10"):
        if name in names:
            texts[name] = _text(table[name], name)
            per_row[name] = texts[name].slots
    # A row that repeats the previous row's patient and facts adds nothing to the patient's facts (a
    # highest age, an "any row says so", a set of values): only the first row of such a run is read.
    # (A value met in two dictionaries starts a run of its own: a row read twice changes nothing.)
    starts = _first_of_runs(patient_of)
    for codes in per_row.values():
        starts[1:] |= codes[1:] != codes[:-1]
    start = np.flatnonzero(starts)
    patient = patient_of[start]
    row = {name: codes[start].astype(np.int64) for name, codes in per_row.items() if name not in texts}
    values: dict[str, list[str]] = {}
    for name, text in texts.items():
        slots = text.slots[start]
        distinct, code = _distinct(text, slots)
        values[name] = distinct.to_pylist()
        row[name] = code[slots].astype(np.int64)

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
        code = np.array(
            [0] + [SEXES.index(_sex(v)) if v.strip() else 0 for v in values["sex"]], dtype=np.int8
        )
        said_sex = code[row["sex"] + 1]
        female = np.bincount(patient[said_sex == 1], minlength=n) > 0
        male = np.bincount(patient[said_sex == 2], minlength=n) > 0
        # Rows that disagree on sex leave it unknown rather than pick one.
        sex[female & ~male] = 1
        sex[male & ~female] = 2
    if "cim10" in row:
        conditions, sets, invalid = _conditions_of(values["cim10"], patient, row["cim10"], n)
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
