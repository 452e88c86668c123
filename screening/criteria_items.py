"""A chunk's items as the STOPP/START alternatives see them: (pair, view, line) for every line and
condition group of every patient whose (patient, alternative) pair fires, sorted.

A pair fires when the patient meets every requirement of its alternative (:mod:`screening.
criteria_tables`); the others are false, whatever else the patient has. An entry that meets all of
its alternative's requirements is an item of a pair that fires (a *direct* entry). For the other
entries, the patient's requirement slots are gathered first (the union of their items' ``provides``
masks): an item is looked at only when the patient has one of the slots its entries still need, and
its entry kept when the pair fires.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from screening.criteria_tables import EntryTable, ItemTables
from screening.segments import ranges

Ints = npt.NDArray[np.int64]
PACK_LIMIT = 1 << 62  # an item is packed into one sort key below this


class _Items:
    """Items collected table by table: as one number (pair, view, line + 1) each, which sorts them in
    the order wanted; or, too wide for that, as three arrays."""

    def __init__(self, patients: int, alternatives: int, views: int, lines: int) -> None:
        self._alternatives = alternatives
        self.per_view, self.per_pair = lines + 1, views * (lines + 1)
        self._per_patient = alternatives * self.per_pair
        self.packable = patients * self._per_patient < PACK_LIMIT
        self._packed: list[Ints] = []
        self._triples: list[tuple[Ints, Ints, Ints]] = []

    def add(
        self,
        table: EntryTable,
        owner: Ints,
        rows: Ints,
        is_line: bool,
        at: Ints,
        count: Ints,
        kept: Ints | None,
    ) -> None:
        """The entries ``at`` of the items (owner, row), ``count`` each; only ``kept`` ones if given."""
        if self.packable:
            base = np.repeat(owner * self._per_patient + (rows + 1 if is_line else 0), count)
            code = table.alternative * self.per_pair + table.view * self.per_view
            self._packed.append(base + code[at] if kept is None else base[kept] + code[at[kept]])
            return
        who = np.repeat(owner, count)
        line = np.repeat(rows, count) if is_line else np.full(len(who), -1, dtype=np.int64)
        entry = (who * self._alternatives + table.alternative[at], table.view[at], line)
        self._triples.append(entry if kept is None else (entry[0][kept], entry[1][kept], entry[2][kept]))

    def add_pairs(self, pair_key: Ints, view: int) -> None:
        """Items that are no line, of one view."""
        if self.packable:
            self._packed.append(pair_key * self.per_pair + view * self.per_view)
        else:
            none = np.full(len(pair_key), -1, dtype=np.int64)
            self._triples.append((pair_key, np.full(len(pair_key), view, dtype=np.int64), none))

    def sorted(self) -> tuple[Ints, Ints, Ints]:
        """(pair, view, line) of every item, by pair, then view, then line. The items come in a few
        runs already ordered by patient, which a merge sort ("stable") exploits."""
        if self.packable:
            pair_key, rest = np.divmod(np.sort(np.concatenate(self._packed), kind="stable"), self.per_pair)
            view, line = np.divmod(rest, self.per_view)
            return pair_key, view, line - 1
        pair_key, view, line = (np.concatenate(column) for column in zip(*self._triples, strict=True))
        order = np.lexsort((line, view, pair_key))
        return pair_key[order], view[order], line[order]


def sorted_items(
    tables: ItemTables,
    offsets: Ints,
    line_ids: npt.NDArray[np.integer],
    set_count: Ints,
    set_flat: Ints,
    conditions: Ints,
    n_alt: int,
    always: Ints,
    catalog_lines: int,
) -> tuple[Ints, Ints, Ints]:
    """(pair, view, line) of every item of every pair that fires, sorted (a pair is patient * n_alt +
    alternative; line -1 for an item that is no line). Patient p's lines are ``line_ids[offsets[p]:
    offsets[p + 1]]``; its condition groups are those of set ``conditions[p]`` (CSR ``set_count``,
    ``set_flat``); ``always``: the alternatives that require nothing."""
    n = len(offsets) - 1
    everyone = np.arange(n, dtype=np.int64)
    lids = np.asarray(line_ids, dtype=np.int64)
    group_count = set_count[conditions]
    group_ids = set_flat[ranges((np.cumsum(set_count) - set_count)[conditions], group_count)]
    by_item = (
        (np.repeat(everyone, np.diff(offsets)), lids, True, tables.lines_direct, tables.lines_other),
        (np.repeat(everyone, group_count), group_ids, False, tables.groups_direct, tables.groups_other),
    )
    items = _Items(n, n_alt, tables.view_count, catalog_lines)
    for owner, rows, is_line, direct, _ in by_item:
        count = direct.count[rows]
        items.add(direct, owner, rows, is_line, ranges(direct.start[rows], count), count, None)
    if len(always):  # an alternative that requires nothing: one item for every patient
        items.add_pairs(np.repeat(everyone * n_alt, len(always)) + np.tile(always, n), tables.always)

    # The requirement slots of each patient (np.take gathers rows of a 2-d array faster than indexing).
    words = tables.slot_words
    slots = np.zeros((n, words), dtype=np.uint64)
    filled = offsets[1:] > offsets[:-1]
    if filled.any():  # between two non-empty segments, only empty ones: each stops at the next
        slots[filled] = np.bitwise_or.reduceat(
            np.take(tables.lines_other.provides, lids, axis=0), offsets[:-1][filled]
        )
    set_slots = np.zeros((len(set_count), words), dtype=np.uint64)
    filled = set_count > 0
    if filled.any():
        set_slots[filled] = np.bitwise_or.reduceat(
            np.take(tables.groups_other.provides, set_flat, axis=0),
            (np.cumsum(set_count) - set_count)[filled],
        )
    slots |= np.take(set_slots, conditions, axis=0)
    slots_flat = slots.reshape(-1)
    for owner, rows, is_line, _, other in by_item:
        some = np.flatnonzero(other.count[rows] > 0)
        wants = np.take(other.wants, rows[some], axis=0)
        has = np.take(slots, owner[some], axis=0)
        shared = wants[:, 0] & has[:, 0]
        for w in range(1, words):
            shared |= wants[:, w] & has[:, w]
        some = some[np.flatnonzero(shared)]  # items the patient may need
        owner, rows = owner[some], rows[some]
        count = other.count[rows]
        at = ranges(other.start[rows], count)
        alternative = other.alternative[at]
        mask = tables.slot_mask[alternative]
        word = np.repeat(owner * words, count) + tables.slot_word[alternative]
        items.add(other, owner, rows, is_line, at, count, np.flatnonzero(slots_flat[word] & mask == mask))
    return items.sorted()
