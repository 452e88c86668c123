"""The answers of a batch's patients to the questions qualified pairs ask, one column per question.

Each field a question reads is taken once as its distinct values among the people who need it (a
population has far fewer distinct values than patients: a few thousand condition sets for 20,000
patients). A value met for the first time gets an id, and a row in a table of answer codes (one
column per question, -1 while not asked); each question is answered once per new value, in one call
per batch (:meth:`iatro.checks.qualify.PatientQuestion.answers_to`). The next batches, which repeat
most values, read their answers from the table in one gather.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain, repeat
from typing import cast

import numpy as np
import numpy.typing as npt

from iatro.batch.hits import I64
from iatro.batch.patients import PatientColumns
from iatro.checks.qualify import PatientField, PatientQuestion, PatientValue
from iatro.errors import FieldError

#: A question's answer as 2 bits; 3 is never used, so a packed projection is never ambiguous.
CODE: dict[bool | None, int] = {None: 0, False: 1, True: 2}
# Bounds the values remembered (a condition set, its id and its row of codes: a few hundred bytes);
# a batch of 20,000 patients has at most as many values of a field.
_ANSWER_LIMIT = 50_000


class Answers:
    """Answer codes of ``questions`` by field value, remembered from one batch to the next."""

    def __init__(self, questions: Sequence[PatientQuestion]) -> None:
        self.questions = tuple(questions)
        self._ids: dict[PatientField, dict[PatientValue, int]] = {}
        self._codes: dict[PatientField, npt.NDArray[np.int8]] = {}
        self._size = 0

    def columns(self, patients: PatientColumns, people: I64, asked: Sequence[int]) -> dict[int, I64]:
        """Each asked question's answer code (:data:`CODE`) per person of ``people``."""
        if self._size >= _ANSWER_LIMIT:
            self._ids.clear()
            self._codes.clear()
            self._size = 0
        by_field: dict[PatientField, list[int]] = {}
        for q in asked:
            by_field.setdefault(self.questions[q].field, []).append(q)
        columns: dict[int, I64] = {}
        for field, ids in by_field.items():
            values, value_of_person = patients.distinct_values(field, people)
            value_of_person = np.asarray(value_of_person, dtype=np.int64)
            if len(value_of_person) != len(people) or (
                len(people) and not 0 <= value_of_person.min() <= value_of_person.max() < len(values)
            ):
                raise FieldError("patients", f"distinct_values({field!r}): one index into values a person")
            rows = self._rows(field, values)
            codes = self._codes[field]
            block = codes[rows[:, None], ids]  # (value, question) codes, -1 where not asked yet
            new = np.flatnonzero((block < 0).any(axis=1))
            if len(new):
                # Answers are a function of the value: recomputing one already known changes nothing.
                block[new] = self._answer(ids, [values[i] for i in new.tolist()])
                codes[rows[new][:, None], ids] = block[new]
            wide = block.astype(np.int64)
            for j, q in enumerate(ids):
                columns[q] = wide[:, j][value_of_person]
        return columns

    def _answer(self, ids: Sequence[int], values: list[PatientValue]) -> npt.NDArray[np.int8]:
        """The (value, question) answer codes of questions ``ids`` on one field's ``values``."""
        out = np.zeros((len(values), len(ids)), dtype=np.int8)
        if not all(isinstance(value, tuple) for value in values):
            for j, q in enumerate(ids):
                out[:, j] = [CODE[answer] for answer in self.questions[q].answers_to(values)]
            return out
        # Coded histories: a history answers True when one of its codes does, None when it is empty.
        # Each distinct code is asked once, as a history of that code alone.
        flat = list(chain.from_iterable(cast(list[tuple[str, ...]], values)))
        distinct = {code: k for k, code in enumerate(dict.fromkeys(flat))}
        code_of = np.fromiter(map(distinct.__getitem__, flat), dtype=np.int64, count=len(flat))
        lengths = np.fromiter(
            map(len, cast(list[tuple[str, ...]], values)), dtype=np.int64, count=len(values)
        )
        given = lengths > 0
        starts = (np.cumsum(lengths) - lengths)[given]  # the given histories' codes are consecutive
        alone = [(code,) for code in distinct]
        for j, q in enumerate(ids):
            matched = np.array(self.questions[q].answers_to(alone), dtype=np.bool_)
            if len(starts):
                out[given, j] = np.where(
                    np.logical_or.reduceat(matched[code_of], starts), CODE[True], CODE[False]
                )
        return out

    def _rows(self, field: PatientField, values: Sequence[PatientValue]) -> I64:
        """Each value's row in the field's table of codes; a new value gets a new row of -1."""
        ids = self._ids.setdefault(field, {})
        rows = np.fromiter(map(ids.get, values, repeat(-1)), dtype=np.int64, count=len(values))
        new = np.flatnonzero(rows < 0)
        if len(new):
            start = len(ids)
            for k, i in enumerate(new.tolist()):
                ids[values[i]] = start + k
            rows[new] = np.arange(start, start + len(new))
            self._size += len(new)
        codes = self._codes.get(field)
        if codes is None or len(codes) < len(ids):
            grown = np.full((max(2 * len(ids), 1024), len(self.questions)), -1, dtype=np.int8)
            if codes is not None:
                grown[: len(codes)] = codes
            codes = self._codes[field] = grown
        return rows
