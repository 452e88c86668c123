"""STOPP/START (and any compiled criteria list) for a chunk of patients: what the engine would report.

Per patient the engine evaluates every criterion and merges the hits into ``pim`` / ``omission``
findings (``evaluate_all`` then ``merge_hits``); a criterion is hit when one of its alternatives holds.
An alternative's outcome depends only on what it reads (:class:`~iatro.checks.explicit_criteria.
ByAlternative`): the exposures its selectors select (their substance, and their dose, duration, route
and PRN when one of its drug conditions reads them), the condition groups it names, and a few facts
(age band, sex, an unresolved line). It is false unless every drug and condition it requires is
present, which few patients have; and what it reads recurs from patient to patient (the generics of
one substance look alike to it). So a chunk is worked by (patient, alternative) pair, in arrays:

1. items: each patient's lines and condition groups, as the alternatives see them (a view per
   alternative, and the requirements met: :mod:`screening.criteria_tables`), where the pair fires
   (:mod:`screening.criteria_items`); a pair that misses a requirement is false. Items with equal
   views are interchangeable to the alternative: the pair's key holds each view once, and its lines
   are mapped back from the view's run of items.
2. key: the alternative, its facts and its distinct views (:mod:`screening.criteria_keys`), looked
   up in the keys of earlier chunks by hash and checked view by view.
3. each new key is evaluated once by the engine (``ByAlternative.hit``) on the representative's lines
   (:mod:`screening.criteria_outcomes`). The target drugs are kept by position among the key's
   distinct items.
4. the merge, counted (:mod:`screening.criteria_findings`).

Patient facts are read from the claims (age, sex, conditions), never from labs: claims carry none, so
the contract patient built from them has none either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from iatro.analysis import Engine
from iatro.checks.explicit_criteria import AlternativeInputs, ByAlternative
from iatro.kb.criteria import CriteriaList
from iatro.model.prescription import Patient
from screening.checks import MEMO_LIMIT
from screening.criteria_findings import Items, OmissionGroups, cited_ids, pim_findings
from screening.criteria_items import sorted_items
from screening.criteria_outcomes import Outcomes
from screening.criteria_tables import ItemTables
from screening.derive import Context
from screening.lines import LineCatalog

Ints = npt.NDArray[np.int64]
SEX_CODES = (None, "F", "M")  # sex code (an index) -> the contract's value


@dataclass(frozen=True, slots=True)
class CriteriaColumns:
    """One entry per patient of the chunk."""

    stopp: npt.NDArray[np.int32]  # number of `pim` alerts the engine reports
    start: npt.NDArray[np.int32]  # number of `omission` alerts
    stopp_ids: pa.ListArray  # list<dictionary<int32, string>>: the criterion ids cited, sorted, distinct
    start_ids: pa.ListArray


class Criteria:
    """STOPP/START (and any compiled list), as the engine evaluates them, for chunks of patients."""

    def __init__(self, engine: Engine, catalog: LineCatalog) -> None:
        self.catalog = catalog
        self.lists: tuple[CriteriaList, ...] = engine.criteria.lists
        readers = tuple(ByAlternative(crit_list) for crit_list in self.lists)
        # The alternatives of every list, numbered together in the order of their criterion ids (then
        # as listed): a criterion's are consecutive, and a patient's ids come sorted with them.
        listed: list[tuple[int, AlternativeInputs, int]] = []  # reader, inputs, criterion (every list)
        criteria = 0
        for r, reader in enumerate(readers):
            # An alternative that reads a lab is unknown, never a hit, for a patient without that lab:
            # claims carry no lab, so it holds for none of the patients screened.
            listed.extend(
                (r, inputs, criteria + inputs.criterion) for inputs in reader.alternatives if not inputs.labs
            )
            criteria += 1 + max((i.criterion for i in reader.alternatives), default=-1)
        self._id_names = sorted({inputs.criterion_id for _, inputs, _ in listed})
        rank = {name: k for k, name in enumerate(self._id_names)}
        listed.sort(key=lambda x: rank[x[1].criterion_id])  # stable: as listed within one id
        self._alternatives = [(readers[r], inputs) for r, inputs, _ in listed]
        inputs_of = [inputs for _, inputs in self._alternatives]
        self.tables = ItemTables(readers, [(r, inputs) for r, inputs, _ in listed])
        requirements = self.tables.requirements
        self._criterion_of = np.asarray([c for _, _, c in listed], dtype=np.int64)
        self._rank = np.asarray([rank[i.criterion_id] for i in inputs_of], dtype=np.int64)
        self._id_array = pa.array(self._id_names, pa.string())
        self._always = np.flatnonzero(np.asarray(requirements, dtype=np.int64) == 0)
        self._is_pim = np.asarray([i.kind == "pim" for i in inputs_of], dtype=bool)

        bounds: set[int] = set()
        for crit_list in self.lists:
            for criterion in crit_list.criteria:
                for match in criterion.any_of:
                    if match.age_min is not None:
                        bounds.add(match.age_min)
                    if match.age_max is not None:
                        bounds.add(match.age_max + 1)
        # Ages between two consecutive bounds meet exactly the same age conditions.
        self._bounds = np.asarray(sorted(bounds), dtype=np.int64)
        # The facts of a pair: the patient's age band, sex and unresolved line, as bits, masked by
        # what its alternative reads.
        self._band_bits = (len(bounds) + 1).bit_length()
        age, sex, unresolved = (1 << self._band_bits) - 1, 3 << self._band_bits, 4 << self._band_bits
        self._reads = np.asarray(
            [
                (age if i.age else 0) | (sex if i.sex else 0) | (unresolved if i.unresolved else 0)
                for i in inputs_of
            ],
            dtype=np.int64,
        )
        self._substances = max(1, len(engine.kb.substances))
        self._omissions = OmissionGroups(
            self._criterion_of.tolist(), [i.kind for i in inputs_of], [i.absent_drugs for i in inputs_of]
        )
        # The keys a single item makes that is not a line: (alternative, condition group or the item
        # every patient has).
        tables = self.tables
        self._single_codes = sorted(
            {(a, v) for t in (tables.groups_direct, tables.groups_other) for r in t.rows for a, v in r}
            | {(a, tables.always) for a in self._always.tolist()}
        )
        self._reset()

    def _reset(self) -> None:
        self._outcomes = Outcomes(
            self._alternatives,
            self.catalog,
            self.tables.always + 1,
            self._single_codes,
            1 << self._band_bits + 3,
        )

    @property
    def evaluated_keys(self) -> int:
        """Keys evaluated by the engine since the memo was last emptied."""
        return len(self._outcomes)

    @property
    def patients_read(self) -> int:
        """Patients read since the memo was last emptied: one for each key evaluated whose alternative
        reads the patient (a condition group, age or sex)."""
        return self._outcomes.patients_read

    # -- the chunk --------------------------------------------------------------------------------

    def run_batch(
        self,
        offsets: npt.NDArray[np.int64],
        line_ids: npt.NDArray[np.int32],
        unresolved: npt.NDArray[np.bool_],
        contexts: Sequence[Context],
        patients: Sequence[Patient],
    ) -> CriteriaColumns:
        """Patient p's lines are ``catalog.lines[line_ids[offsets[p]:offsets[p + 1]]]``;
        ``unresolved[p]``: p has an unresolved line; ``patients[p]`` is ``contexts[p].patient()``."""
        n = len(contexts)
        sets: dict[tuple[str, ...], int] = {}
        age = np.fromiter((-1 if c.age is None else c.age for c in contexts), dtype=np.int64, count=n)
        sex = np.fromiter((SEX_CODES.index(c.sex) for c in contexts), dtype=np.int64, count=n)
        conditions = np.fromiter(
            (sets.setdefault(c.conditions, len(sets)) for c in contexts), dtype=np.int64, count=n
        )
        return self.run_facts(offsets, line_ids, unresolved, age, sex, conditions, tuple(sets), patients)

    def run_facts(
        self,
        offsets: npt.NDArray[np.int64],
        line_ids: npt.NDArray[np.int32],
        unresolved: npt.NDArray[np.bool_],
        age: npt.NDArray[np.integer],
        sex: npt.NDArray[np.integer],
        conditions: npt.NDArray[np.integer],
        condition_sets: Sequence[tuple[str, ...]],
        patients: Sequence[Patient],
    ) -> CriteriaColumns:
        """:meth:`run_batch` with the patient facts as arrays: ``age`` in years (negative: unknown),
        ``sex`` an index into :data:`SEX_CODES`, ``conditions`` an index into ``condition_sets``
        (CIM-10 codes). ``patients[p]`` is the contract patient of these facts; it is read only when
        an alternative is first evaluated on one of p's keys."""
        n = len(offsets) - 1
        if len(self._outcomes) >= MEMO_LIMIT:
            self._reset()
        tables = self.tables
        tables.grow(self.catalog)
        n_alt = len(self._alternatives)
        none = np.zeros(0, dtype=np.int64)
        if n == 0 or n_alt == 0:
            zeros = np.zeros(n, dtype=np.int32)
            return CriteriaColumns(zeros, zeros.copy(), *(cited_ids(none, none, self._id_array, n),) * 2)
        years = np.asarray(age, dtype=np.int64)
        band = np.where(years < 0, 0, np.searchsorted(self._bounds, years, side="right") + 1)
        unres = np.asarray(unresolved, dtype=np.int64)
        set_count, set_flat = tables.set_groups(condition_sets)
        which = np.asarray(conditions, dtype=np.int64)

        # 1. Every item of every patient, where the alternative can hold, sorted by pair, view and line.
        pair_key, view, line = sorted_items(
            tables,
            offsets,
            line_ids,
            set_count,
            set_flat,
            which,
            n_alt,
            self._always,
            len(self.catalog.lines),
        )
        new_pair = np.ones(len(pair_key), dtype=bool)
        np.not_equal(pair_key[1:], pair_key[:-1], out=new_pair[1:])
        new_run = new_pair.copy()  # a run: a pair's items of one view
        new_run[1:] |= view[1:] != view[:-1]
        run_first = np.flatnonzero(new_run)
        items = Items(line, run_first, np.diff(np.append(run_first, len(line))))
        first_run = np.flatnonzero(new_pair[run_first])  # each pair's first distinct item
        pair_key = pair_key[new_pair]
        pair_p, pair_a = np.divmod(pair_key, n_alt)

        # 2, 3. Whether each pair's alternative holds, through its key: alternative, facts read, views.
        facts = (band | np.asarray(sex, dtype=np.int64) << self._band_bits | unres << self._band_bits + 2)[
            pair_p
        ] & self._reads[pair_a]
        found = self._outcomes.found(
            pair_p, pair_a, facts, view[run_first], line[run_first], first_run, unres, patients
        )

        # 4. The merge, counted.
        holds = np.flatnonzero(found)
        owners, alternatives, found, first_run = pair_p[holds], pair_a[holds], found[holds], first_run[holds]
        is_pim = np.flatnonzero(self._is_pim[alternatives])
        is_omission = np.flatnonzero(~self._is_pim[alternatives])
        targets = self._outcomes.targets()
        stopp = pim_findings(
            owners[is_pim],
            self._criterion_of[alternatives[is_pim]],
            found[is_pim],
            first_run[is_pim],
            targets,
            items,
            self._substances,
            n,
        )
        start = self._omissions.count(
            owners[is_omission], alternatives[is_omission], self._criterion_of[alternatives[is_omission]], n
        )
        stopp_ids = cited_ids(owners[is_pim], self._rank[alternatives[is_pim]], self._id_array, n)
        start_ids = cited_ids(owners[is_omission], self._rank[alternatives[is_omission]], self._id_array, n)
        return CriteriaColumns(stopp, start, stopp_ids, start_ids)
