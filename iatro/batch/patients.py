"""The patients of a batch as the interaction kernel reads them: columns of facts, Patients on demand.

A qualified pair's level reads a few fields of the patient (:data:`iatro.checks.qualify.PatientField`).
The kernel answers each question once per distinct value of its field among the batch's patients,
and evaluates a (pair, answers) key with the engine on the first patient met with it. A caller that
holds its patients as columns (population screening keeps age, sex and condition-set ids in numpy
arrays) gives them as a :class:`PatientColumns`: the distinct values come from the columns, and a
contract :class:`~iatro.model.prescription.Patient` is built only for those few evaluations.
:class:`BuiltPatients` is the same interface over ``Patient`` objects already built (the reference).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from operator import attrgetter
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np

from iatro.batch.hits import I64
from iatro.checks.qualify import PatientField, PatientValue
from iatro.model.prescription import Patient

_T = TypeVar("_T", bound=Hashable)


@runtime_checkable
class PatientColumns(Protocol):
    """The patients of a batch, one per prescription, as the kernel reads them.

    ``distinct_values(field, people)`` gives the distinct values of ``field`` (an attribute path of
    ``Patient``) among the patients ``people`` (indices into the batch), each exactly as the built
    ``self[p]`` would hold it (after the contract's validation and normalisation), and each person's
    index among them: ``values[value_of_person[k]] == attrgetter(field)(self[people[k]])``. The order
    of ``values`` is free; a value is listed once.

    ``self[p]`` is the contract patient of prescription ``p``: the kernel reads it only to evaluate
    a (pair, answers) key it has not met before.
    """

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Patient: ...

    def distinct_values(self, field: PatientField, people: I64) -> tuple[list[PatientValue], I64]: ...


class BuiltPatients:
    """:class:`PatientColumns` over built ``Patient`` objects: every value read from the object."""

    __slots__ = ("_patients",)

    def __init__(self, patients: Sequence[Patient]) -> None:
        self._patients = patients

    def __len__(self) -> int:
        return len(self._patients)

    def __getitem__(self, index: int) -> Patient:
        return self._patients[index]

    def distinct_values(self, field: PatientField, people: I64) -> tuple[list[PatientValue], I64]:
        read = attrgetter(field)  # a field is an attribute path, as PatientQuestion.value reads it
        patients = self._patients
        return distinct([read(patients[p]) for p in people.tolist()])


def distinct(items: list[_T]) -> tuple[list[_T], I64]:
    """The distinct items (first-seen order) and each item's index among them: C-level passes over
    the items, Python only over the distinct ones."""
    index: dict[_T, int] = dict.fromkeys(items, 0)
    for i, item in enumerate(index):
        index[item] = i
    return list(index), np.fromiter(map(index.__getitem__, items), dtype=np.int64, count=len(items))
