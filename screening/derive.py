"""Dispensation rows of whole patients -> each patient's facts and current medication list (CSR arrays).

Input columns (``INPUT_COLUMNS``): ``patient_id`` and ``date`` are required, with at least one of
``cip13`` / ``cis`` / ``atc`` (a row uses the first code it has, in that order); ``quantity``, ``age``,
``sex``, ``ald`` and ``cim10`` are optional (:mod:`screening.facts`). Rows with a quantity <= 0
(cancellations, regularisations) are not dispensations.

Every patient of the rows gets an output row, even with nothing dispensed in the window.

Everything is computed column-wise (numpy, Arrow); Python only runs once per distinct code, per
distinct CIM-10 text, and per patient whose rows carry several different CIM-10 texts. Text columns
are read as integer codes (:mod:`screening.columns`), rows as runs of one patient
(:mod:`screening.patient_rows`), and the current lists come from one sort of the dispensations
(:mod:`screening.current_lists`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from iatro.errors import FieldError
from iatro.model.prescription import LineInput
from screening.columns import dates, days, distinct, positive, text
from screening.current_lists import current_drugs
from screening.facts import SEXES, UNKNOWN_AGE, UNKNOWN_ALD, Context, PatientFacts, patient_facts
from screening.lines import CodeKind, LineCatalog
from screening.options import ScreeningOptions
from screening.patient_rows import patient_rows
from screening.segments import stable_order

__all__ = [
    "CODE_COLUMNS",
    "INPUT_COLUMNS",
    "SEXES",
    "UNKNOWN_AGE",
    "UNKNOWN_ALD",
    "Context",
    "Derived",
    "PatientFacts",
    "check_columns",
    "derive",
    "last_date",
]

I32 = npt.NDArray[np.int32]

CODE_COLUMNS: tuple[CodeKind, ...] = ("cip13", "cis", "atc")
OPTIONAL_COLUMNS = ("quantity", "age", "sex", "ald", "cim10")
INPUT_COLUMNS = ("patient_id", "date", *CODE_COLUMNS, *OPTIONAL_COLUMNS)
_MISSING_CODE = "missing-code"  # the line key of rows without any code


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


def last_date(table: pa.Table) -> dt.date | None:
    found = pc.max(dates(table["date"])).as_py()
    return found if isinstance(found, dt.date) else None


class _Keys:
    """The chunk's line keys, numbered in the order they are met (the catalog numbers its new lines
    in this order)."""

    def __init__(self) -> None:
        self.keys: list[tuple[str, LineInput | None]] = []
        self.index: dict[str, int] = {}

    def add(self, key: str, line_input: LineInput | None) -> int:
        found = self.index.get(key)
        if found is None:
            found = self.index[key] = len(self.keys)
            self.keys.append((key, line_input))
        return found


def _row_keys(table: pa.Table, catalog: LineCatalog, keys: _Keys) -> I32:
    """Each row's key: the first of cip13, cis, atc it carries (-1: none)."""
    row_key: I32 | None = None
    for kind in CODE_COLUMNS:
        if kind not in table.column_names:
            continue
        column = text(table[kind], kind)
        # Every value of the dictionaries, used by a row or not (a dictionary covers a row group,
        # more than the chunk): looking a code up costs less than finding whether a row uses it,
        # and a key no row has never reaches the catalog.
        values, code = distinct(column)
        mapped = np.full(len(values) + 1, -1, dtype=np.int32)  # the last entry maps -1 (null) to itself
        for i, value in enumerate(pc.utf8_trim_whitespace(values).to_pylist()):
            mapped[i] = keys.add(*catalog.base(kind, value))
        row_code = np.take(mapped[code], column.slots)  # (np.take: twice as fast as [] on int32 indices)
        row_key = row_code if row_key is None else np.where(row_key < 0, row_code, row_key)
    if row_key is None:  # check_columns makes sure there is a code column
        raise FieldError("cip13", "missing column: the input needs at least one of cip13, cis or atc")
    return row_key


def derive(table: pa.Table, options: ScreeningOptions, catalog: LineCatalog) -> Derived:
    check_columns(table.column_names)
    if options.as_of is None:
        raise FieldError("as_of", "the reference date must be known before deriving lists")
    rows = patient_rows(table["patient_id"])
    n_patients = len(rows.ids)
    facts = patient_facts(table, rows)

    keys = _Keys()
    row_key = _row_keys(table, catalog, keys)
    dispensed = positive(table["quantity"]) if "quantity" in table.column_names else None
    # A row without any code is a dispensation of nothing we can read: an unresolved line of its own.
    if len(row_key) and row_key.min() < 0:
        no_code = row_key < 0
        row_key[no_code] = keys.add(_MISSING_CODE, None)
        if dispensed is not None:
            dispensed |= no_code
    drugs = current_drugs(rows, row_key, days(table["date"]), dispensed, max(len(keys.keys), 1), options)
    if not len(drugs.key):
        return Derived(rows.ids, facts, np.zeros(n_patients + 1, np.int64), np.zeros(0, np.int32))

    # Catalog ids of the (key, chronic) lines met, new lines numbered in the order of their key.
    combo = drugs.key * 2 + drugs.chronic
    present = np.zeros(len(keys.keys) * 2, dtype=bool)
    present[combo] = True
    combos = np.flatnonzero(present)
    catalog_id = np.zeros(len(present), dtype=np.int32)
    catalog_id[combos] = catalog.line_ids([(*keys.keys[c // 2], bool(c % 2)) for c in combos.tolist()])
    line_ids = catalog_id[combo]
    # Each patient's lines in catalog order: by line, then (stable) by patient.
    order = stable_order(line_ids, len(catalog.lines))
    order = order[stable_order(drugs.patient[order], n_patients)]
    offsets = np.zeros(n_patients + 1, dtype=np.int64)
    np.cumsum(np.bincount(drugs.patient, minlength=n_patients), out=offsets[1:])
    return Derived(rows.ids, facts, offsets, line_ids[order])
