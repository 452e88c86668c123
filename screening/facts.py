"""What claims say of each patient of a chunk: age, sex, ALD and CIM-10 conditions, as arrays.

``sex`` reads ``F`` / ``M`` or the SNDS codes ``2`` (female) / ``1`` (male); ``cim10`` holds CIM-10
codes separated by ``;``, ``,`` or spaces (a code the contract refuses is counted in
``invalid_conditions``, not used). A patient's age is the highest age of their rows, the ALD flag is
true when any row says so; rows that disagree on sex leave it unknown.

Python runs once per distinct CIM-10 text and per patient whose rows carry several different ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from iatro.errors import FieldError
from iatro.model.prescription import Patient
from screening.columns import Text, ages, distinct, flags, text
from screening.patient_rows import PatientRows
from screening.segments import distinct_sorted

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


def patient_facts(table: pa.Table, rows: PatientRows) -> PatientFacts:
    names = table.column_names
    n = len(rows.ids)
    per_row: dict[str, npt.NDArray[Any]] = {}  # each fact of each row as an integer code
    texts: dict[str, Text] = {}
    if "age" in names:
        per_row["age"] = ages(table["age"])
    if "ald" in names:
        per_row["ald"] = flags(table["ald"], "ald", UNKNOWN_ALD)
    for name in ("sex", "cim10"):
        if name in names:
            texts[name] = text(table[name], name)
            per_row[name] = texts[name].slots
    # A row that repeats the previous row's patient and facts adds nothing to the patient's facts (a
    # highest age, an "any row says so", a set of values): only the first row of such a run is read.
    # (A value met in two dictionaries starts a run of its own: a row read twice changes nothing.)
    starts = np.zeros(rows.n_rows, dtype=bool)
    starts[rows.starts] = True
    for codes in per_row.values():
        starts[1:] |= codes[1:] != codes[:-1]
    start = np.flatnonzero(starts)
    patient = rows.patient[np.searchsorted(rows.starts, start, side="right") - 1]
    row = {name: codes[start].astype(np.int64) for name, codes in per_row.items() if name not in texts}
    values: dict[str, list[str]] = {}
    for name, column in texts.items():
        slots = column.slots[start]
        found, code = distinct(column, slots)
        values[name] = found.to_pylist()
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
    set_index: dict[tuple[str, ...], int] = {(): 0}  # the distinct sets, numbered as met
    found = [_text_conditions(value) for value in texts]
    text_set = np.fromiter((set_index.setdefault(v, len(set_index)) for v, _ in found), np.int64, n_texts)
    text_bad = np.fromiter((bad for _, bad in found), np.int32, n_texts)
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
            conditions[p] = set_index.setdefault(valid, len(set_index))
    return conditions, tuple(set_index), invalid


def _sex(value: str) -> Literal["F", "M"]:
    found = _SEX.get(value.strip())
    if found is None:
        raise FieldError("sex", f"unknown value {value!r}: expected F, M, 2 (female) or 1 (male)")
    return found


def _tokens(value: str) -> frozenset[str]:
    return frozenset(c for c in _SPLIT.split(value) if c)


@lru_cache(maxsize=65_536)
def _text_conditions(value: str) -> tuple[tuple[str, ...], int]:
    """The valid codes of one CIM-10 text and the count of those the contract refuses (memoised)."""
    return _conditions(_tokens(value))


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
