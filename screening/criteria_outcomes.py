"""Whether each (patient, alternative) pair's alternative holds: each distinct key evaluated once by the
engine (``ByAlternative.hit``) on the lines of one pair that has it, memoised across chunks.

A key is the alternative, the facts it reads and the pair's distinct item views (see
:mod:`screening.criteria_keys`). Most pairs have one distinct item: their keys are numbered densely
(item, facts) and found by indexing. The others are found by hash in a :class:`KeyStore`. An evaluation
that holds gets a *found number* with the target drugs of the hit, each as its position among the key's
distinct items and its substance: a pair maps them to its own lines.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from iatro.checks.context import CheckContext
from iatro.checks.explicit_criteria import AlternativeInputs, ByAlternative
from iatro.model.prescription import Patient
from screening.criteria_findings import Targets
from screening.criteria_keys import KeyStore, differ
from screening.lines import LineCatalog
from screening.segments import ranges

Ints = npt.NDArray[np.int64]


class Outcomes:
    """Found numbers (0: the alternative does not hold) of the keys met, and the target drugs of each.

    ``single_codes`` lists the (alternative, view) pairs of the items that are not lines (condition
    groups, the item every patient has): with the views of lines after them, they number the keys of
    one item. ``facts_span`` bounds the facts.
    """

    def __init__(
        self,
        alternatives: Sequence[tuple[ByAlternative, AlternativeInputs]],
        catalog: LineCatalog,
        first_line_view: int,
        single_codes: Sequence[tuple[int, int]],
        facts_span: int,
    ) -> None:
        self._alternatives = alternatives
        self.catalog = catalog
        # An alternative that names no condition group and reads neither age nor sex (nor a lab: those
        # are left out) holds or not whoever the patient: evaluated without reading one.
        self._reads_patient = [bool(i.groups) or i.age or i.sex or bool(i.labs) for _, i in alternatives]
        self._nobody = Patient()
        self._first_line_view = first_line_view
        self._code = np.full((len(alternatives), first_line_view), -1, dtype=np.int64)
        for code, (a, view) in enumerate(single_codes):
            self._code[a, view] = code
        self._line_code = len(single_codes)  # the code of the first line view
        self._facts_span = facts_span
        # Keys of one item: code * facts_span + facts -> found number, -1 for a key not met yet.
        self._single = np.full(0, -1, dtype=np.int64)
        self._store = KeyStore()
        self._keys = 0
        self.patients_read = 0
        self._found_offset: list[int] = [0]
        self._found_size: list[int] = [0]
        self._target_position: list[int] = []
        self._target_substance: list[int] = []

    def __len__(self) -> int:
        """The number of keys met."""
        return self._keys

    def targets(self) -> Targets:
        return Targets(
            np.asarray(self._found_offset, dtype=np.int64),
            np.asarray(self._found_size, dtype=np.int64),
            np.asarray(self._target_position, dtype=np.int64),
            np.asarray(self._target_substance, dtype=np.int64),
        )

    def found(
        self,
        pair_p: Ints,
        pair_a: Ints,
        facts: Ints,
        view: Ints,
        line: Ints,
        starts: Ints,
        unres: Ints,
        patients: Sequence[Patient],
    ) -> Ints:
        """Each pair's found number. Pair k's distinct items are ``view[starts[k]:starts[k + 1]]`` (one of
        their lines each in ``line``, -1 for an item that is not a line); ``unres[p]``: patient p has an
        unresolved line; ``patients[p]`` is read only to evaluate a key first met on p."""
        out = np.zeros(len(pair_p), dtype=np.int64)
        if not len(pair_p):
            return out
        lengths = np.diff(np.append(starts, len(view)))
        single = lengths == 1
        one = np.flatnonzero(single)
        out[one] = self._found_single(
            one, pair_p, pair_a, facts, view[starts[one]], line, starts, unres, patients
        )
        more = np.flatnonzero(~single)
        if len(more):
            out[more] = self._found_stored(
                pair_p[more],
                pair_a[more],
                facts[more],
                view,
                line,
                starts[more],
                lengths[more],
                unres,
                patients,
            )
        return out

    def _found_single(
        self,
        one: Ints,
        pair_p: Ints,
        pair_a: Ints,
        facts: Ints,
        item_view: Ints,
        line: Ints,
        starts: Ints,
        unres: Ints,
        patients: Sequence[Patient],
    ) -> Ints:
        a = pair_a[one]
        is_line = item_view >= self._first_line_view
        code = np.where(
            is_line,
            item_view - self._first_line_view + self._line_code,
            self._code[a, np.minimum(item_view, self._first_line_view - 1)],
        )
        if len(code) and code.min() < 0:
            # A group table's entries left out of single_codes: a bug, not an input error.
            raise RuntimeError("an item of a one-item key has no code")
        slot = code * self._facts_span + facts[one]
        needed = int(slot.max(initial=-1)) + 1
        if len(self._single) < needed:  # views of new lines: room for them and more
            grown = np.full(max(needed, 2 * len(self._single)), -1, dtype=np.int64)
            grown[: len(self._single)] = self._single
            self._single = grown
        got = self._single[slot]
        new = np.flatnonzero(got < 0)
        if len(new):
            # Pairs of one new key all write their index into its slot: the one that stays evaluates it.
            self._single[slot[new]] = -2 - new
            reps = new[self._single[slot[new]] == -2 - new]
            for k in reps.tolist():
                pair = int(one[k])
                p = int(pair_p[pair])
                self._single[slot[k]] = self._evaluate(
                    int(a[k]), [int(line[starts[pair]])], patients, p, bool(unres[p])
                )
            self._keys += len(reps)
            got[new] = self._single[slot[new]]
        return got

    def _found_stored(
        self,
        pair_p: Ints,
        pair_a: Ints,
        facts: Ints,
        view: Ints,
        line: Ints,
        starts: Ints,
        lengths: Ints,
        unres: Ints,
        patients: Sequence[Patient],
    ) -> Ints:
        """As :meth:`found`, pair k's distinct items being ``view[starts[k]:starts[k] + lengths[k]]``.

        Keys of earlier chunks are looked up in the store; the others are grouped by hash (each group
        checked against its first pair, a pair unlike it looked up by its whole key), evaluated and
        stored.
        """
        store = self._store
        pair_hash = store.hashes(pair_a, facts, view, starts, lengths)
        known = store.lookup(pair_hash, pair_a, facts, lengths, view, starts)
        out = np.zeros(len(pair_p), dtype=np.int64)
        stored = known >= 0
        out[stored] = store.found[known[stored]]
        new_pairs = np.flatnonzero(~stored)
        if not len(new_pairs):
            return out

        order = new_pairs[np.argsort(pair_hash[new_pairs])]
        sorted_hash = pair_hash[order]
        first_of = np.ones(len(order), dtype=bool)
        first_of[1:] = sorted_hash[1:] != sorted_hash[:-1]
        first = order[first_of]  # one representative per distinct hash
        rep = np.empty(len(pair_p), dtype=np.int64)
        rep[order] = first[np.cumsum(first_of) - 1]
        rep = rep[new_pairs]
        same = (pair_a[new_pairs] == pair_a[rep]) & (facts[new_pairs] == facts[rep])
        same &= lengths[new_pairs] == lengths[rep]
        differ(same, view, starts[new_pairs], lengths[new_pairs], view, starts[rep])
        # A pair unlike its representative (a hash collision): found by its whole key among the others.
        unlike = new_pairs[~same]
        alone: dict[tuple[int, int, tuple[int, ...]], int] = {}
        alone_of = [
            alone.setdefault((a, f, tuple(view[s : s + ln].tolist())), len(first) + len(alone))
            for a, f, s, ln in zip(
                pair_a[unlike].tolist(),
                facts[unlike].tolist(),
                starts[unlike].tolist(),
                lengths[unlike].tolist(),
                strict=True,
            )
        ]
        position = np.empty(len(pair_p), dtype=np.int64)
        position[first] = np.arange(len(first))
        key_of = position[rep]
        key_of[~same] = alone_of
        reps = np.empty(len(first) + len(alone), dtype=np.int64)
        reps[: len(first)] = first
        reps[key_of[~same]] = unlike
        r_length = lengths[reps]
        items = ranges(starts[reps], r_length)
        r_lines = line[items].tolist()
        found = [
            self._evaluate(a, r_lines[s : s + ln], patients, p, bool(unres[p]))
            for a, s, ln, p in zip(
                pair_a[reps].tolist(),
                (np.cumsum(r_length) - r_length).tolist(),
                r_length.tolist(),
                pair_p[reps].tolist(),
                strict=True,
            )
        ]
        by_key = np.asarray(found, dtype=np.int64)
        out[new_pairs] = by_key[key_of]
        store.add(pair_hash[reps], pair_a[reps], facts[reps], r_length, view[items], by_key)
        self._keys += len(reps)
        return out

    def _evaluate(
        self, number: int, items: list[int], patients: Sequence[Patient], p: int, unresolved: bool
    ) -> int:
        """The engine's outcome of one alternative on one pair's items (lines numbered by catalog id),
        for patient p."""
        reader, inputs = self._alternatives[number]
        patient = self._nobody
        if self._reads_patient[number]:
            patient = patients[p]
            self.patients_read += 1
        lines = self.catalog.lines
        exposures = tuple(e for i in items if i >= 0 for e in self.catalog.numbered(lines[i], i))
        ctx = CheckContext(
            exposures=exposures,
            patient=patient,
            # A line number no catalog line has: only whether there is one counts.
            unresolved_lines=(len(lines),) if unresolved else (),
        )
        hit = reader.hit(inputs, ctx)
        if hit is None:
            return 0
        position = {i: k for k, i in enumerate(items) if i >= 0}
        targets = sorted((position[i], s) for i, s in hit.targets)
        self._found_offset.append(len(self._target_position))
        self._found_size.append(len(targets))
        self._target_position.extend(k for k, _ in targets)
        self._target_substance.extend(sid for _, sid in targets)
        return len(self._found_size) - 1
