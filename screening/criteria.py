"""STOPP/START (and any compiled criteria list) for a chunk of patients, as the engine evaluates them.

The engine's evaluator and merge run on the patient's lines that some criterion can select (the
others cannot change any criterion), memoised on those lines and the patient facts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from iatro.analysis import Engine
from iatro.checks.context import CheckContext
from iatro.checks.explicit_criteria import evaluate_all, merge_hits
from iatro.kb.criteria import CriteriaList
from iatro.model.prescription import Patient
from screening.checks import MEMO_LIMIT
from screening.derive import Context
from screening.lines import Line, LineCatalog


@dataclass(frozen=True, slots=True)
class CriteriaColumns:
    """One entry per patient of the chunk."""

    stopp: npt.NDArray[np.int32]  # number of `pim` alerts the engine reports
    start: npt.NDArray[np.int32]  # number of `omission` alerts
    stopp_ids: list[list[str]]  # criterion ids cited by those alerts, sorted, distinct
    start_ids: list[list[str]]


@dataclass(frozen=True, slots=True)
class CriteriaOutcome:
    pim: tuple[tuple[str, ...], ...]  # criterion ids cited by each `pim` alert
    omission: tuple[tuple[str, ...], ...]  # the same for each `omission` alert


class Criteria:
    """STOPP/START (and any compiled list): the engine's evaluation on the lines a criterion can select."""

    def __init__(self, engine: Engine, catalog: LineCatalog) -> None:
        self.catalog = catalog
        self.lists: tuple[CriteriaList, ...] = engine.criteria.lists
        bounds: set[int] = set()
        for crit_list in self.lists:
            for criterion in crit_list.criteria:
                for match in criterion.any_of:
                    if match.age_min is not None:
                        bounds.add(match.age_min)
                    if match.age_max is not None:
                        bounds.add(match.age_max + 1)
        # Ages between two consecutive bounds meet exactly the same age conditions.
        self._bounds = tuple(sorted(bounds))
        self._memo: dict[tuple[object, ...], CriteriaOutcome] = {}

    def _age_band(self, age: int | None) -> int | None:
        return None if age is None else sum(1 for b in self._bounds if age >= b)

    def run(self, lines: list[Line], unresolved: bool, context: Context, patient: Patient) -> CriteriaOutcome:
        relevant = tuple(line for line in lines if line.criteria_relevant)
        key = (
            tuple(line.id for line in relevant),
            unresolved,
            self._age_band(context.age),
            context.sex,
            context.conditions,
        )
        found = self._memo.get(key)
        if found is None:
            exposures = tuple(e for k, line in enumerate(relevant) for e in self.catalog.numbered(line, k))
            ctx = CheckContext(
                exposures=exposures,
                patient=patient,
                unresolved_lines=(len(relevant),) if unresolved else (),
            )
            merged = merge_hits(evaluate_all(self.lists, ctx).hits)
            cited = [(f.kind, tuple(c.criterion_id for c in f.citations)) for f in merged]
            found = CriteriaOutcome(
                tuple(ids for kind, ids in cited if kind == "pim"),
                tuple(ids for kind, ids in cited if kind == "omission"),
            )
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
            self._memo[key] = found
        return found

    def run_batch(
        self,
        offsets: npt.NDArray[np.int64],
        line_ids: npt.NDArray[np.int32],
        unresolved: npt.NDArray[np.bool_],
        contexts: list[Context],
        patients: list[Patient],
    ) -> CriteriaColumns:
        """Patient p's lines are ``catalog.lines[line_ids[offsets[p]:offsets[p + 1]]]``;
        ``unresolved[p]``: p has an unresolved line."""
        n = len(contexts)
        stopp = np.zeros(n, dtype=np.int32)
        start = np.zeros(n, dtype=np.int32)
        stopp_ids: list[list[str]] = []
        start_ids: list[list[str]] = []
        lines_of = self.catalog.lines
        for p in range(n):
            lines = [lines_of[i] for i in line_ids[offsets[p] : offsets[p + 1]].tolist()]
            outcome = self.run(lines, bool(unresolved[p]), contexts[p], patients[p])
            stopp[p] = len(outcome.pim)
            start[p] = len(outcome.omission)
            stopp_ids.append(sorted({c for ids in outcome.pim for c in ids}))
            start_ids.append(sorted({c for ids in outcome.omission for c in ids}))
        return CriteriaColumns(stopp, start, stopp_ids, start_ids)
