"""What the STOPP/START alternatives read of a patient's items, as tables built once per item.

An item is a catalog line or a condition group of a patient. For every alternative an item concerns,
a table entry gives the item's *view* (what that alternative reads of it). An alternative requires
some selectors to select an exposure and some condition groups to be present (its requirements); it
may read more (an absent drug, an excluded condition). Which requirements an item meets is kept as
bits, one *slot* per requirement of every alternative (:class:`ItemTables`).

Views are numbers that sort as codes of one range: a condition group ``g`` (numbered over every list)
is ``g``, the item every patient has (for an alternative that requires nothing) is ``group_count``,
and a line's view for an alternative comes after them, one number per distinct view. The view of a
line holds, for each of its exposures an alternative's selectors select, its substance and those
selectors, and its dose, duration, route and PRN when one of the alternative's drug conditions reads
them: two lines with equal views are interchangeable to that alternative.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from iatro.checks.context import Exposure
from iatro.checks.explicit_criteria import AlternativeInputs, ByAlternative
from iatro.kb.criteria import normalise_cim10
from screening.checks import MEMO_LIMIT
from screening.lines import LineCatalog
from screening.segments import distinct_sorted, ranges

Ints = npt.NDArray[np.int64]
BITS = 62  # requirements of an alternative checked before evaluating it (any further: by the evaluation)


def _details(e: Exposure) -> tuple[object, ...]:
    return (e.route, e.mg_per_intake, e.mg_per_day, e.intakes_per_day, e.as_needed, e.duration_days)


def _words(masks: Sequence[int], words: int) -> npt.NDArray[np.uint64]:
    """Python int bit masks as rows of 64-bit words, lowest bits first."""
    low = (1 << 64) - 1
    out = np.zeros((len(masks), words), dtype=np.uint64)
    for w in range(words):
        out[:, w] = [(m >> (64 * w)) & low for m in masks]
    return out


class EntryTable:
    """Item -> its entries (alternative, view), as CSR arrays; with, per item, the requirement slots
    it meets (``provides``) and those its entries still need (``wants``), as 64-bit words
    (see :class:`ItemTables`)."""

    def __init__(self, words: int) -> None:
        self.rows: list[list[tuple[int, int]]] = []
        self._masks: list[tuple[int, int]] = []
        self._words = words
        self.start: Ints = np.zeros(0, dtype=np.int64)
        self.count: Ints = np.zeros(0, dtype=np.int64)
        self.alternative: Ints = np.zeros(0, dtype=np.int64)
        self.view: Ints = np.zeros(0, dtype=np.int64)
        self.provides = _words([], words)
        self.wants = _words([], words)

    def append(self, entries: list[tuple[int, int]], provides: int, wants: int) -> None:
        self.rows.append(entries)
        self._masks.append((provides, wants))

    def freeze(self) -> None:
        if len(self.start) == len(self.rows):
            return
        self.count = np.fromiter((len(r) for r in self.rows), dtype=np.int64, count=len(self.rows))
        self.start = np.cumsum(self.count) - self.count
        total = int(self.count.sum())
        self.alternative = np.fromiter((a for r in self.rows for a, _ in r), dtype=np.int64, count=total)
        self.view = np.fromiter((v for r in self.rows for _, v in r), dtype=np.int64, count=total)
        self.provides = _words([p for p, _ in self._masks], self._words)
        self.wants = _words([w for _, w in self._masks], self._words)


class ItemTables:
    """The entry tables of the catalog's lines and of the condition groups, for alternatives numbered
    by the caller (``alternatives[k]`` is alternative k: the index of its reader, its inputs).

    Each requirement of an alternative has a slot: requirement k of alternative a is bit
    ``slot_bit[a] + k`` of word ``slot_word[a]``, so that a patient's pair fires when every bit of
    ``slot_mask[a]`` is set in that word of the union of their items' ``provides`` masks. An entry that
    meets every requirement of its alternative (or whose alternative requires nothing) makes its pair
    fire by itself: it is in a *direct* table. The others (an item that meets some requirements, or
    is read without being required) are in an *other* table, with the slots they still need in their
    item's ``wants`` mask: such an entry is an item of its pair only if the patient has one of them.
    """

    def __init__(
        self, readers: Sequence[ByAlternative], alternatives: Sequence[tuple[int, AlternativeInputs]]
    ) -> None:
        self._readers = tuple(readers)
        self._inputs = [inputs for _, inputs in alternatives]
        counts = [reader.group_count for reader in readers]
        self.group_base = [sum(counts[:k]) for k in range(len(counts))]
        self.group_count = sum(counts)
        self.always = self.group_count  # the view of the item every patient has
        # Per reader: selector -> (alternative, bit).
        self._by_selector: list[dict[int, list[tuple[int, int]]]] = [{} for _ in readers]
        requirements: list[int] = []
        group_entries: list[list[tuple[int, int, int]]] = [[] for _ in range(self.group_count)]
        for number, (r, inputs) in enumerate(alternatives):
            base = self.group_base[r]
            required = [
                *sorted(inputs.required_selectors),
                *(-1 - g for g in sorted(inputs.required_groups)),
            ]
            bit = {key: 1 << k for k, key in enumerate(required[:BITS])}
            for sid in sorted(inputs.selectors):
                self._by_selector[r].setdefault(sid, []).append((number, bit.get(sid, 0)))
            for gid in sorted(inputs.groups):
                # A group's view is the group itself.
                group_entries[base + gid].append((number, bit.get(-1 - gid, 0), base + gid))
            requirements.append(len(bit))
        self.requirements = requirements
        slot_word: list[int] = []
        slot_bit: list[int] = []
        word, used = 0, 0
        for r in requirements:  # an alternative's slots in one word
            if used + r > 64:
                word, used = word + 1, 0
            slot_word.append(word)
            slot_bit.append(used)
            used += r
        self.slot_words = word + 1
        self.slot_word = np.asarray(slot_word, dtype=np.int64)
        self.slot_mask = np.asarray(
            [(1 << r) - 1 << b for r, b in zip(requirements, slot_bit, strict=True)], dtype=np.uint64
        )
        self._slot_of = [64 * w + b for w, b in zip(slot_word, slot_bit, strict=True)]
        self.groups_direct, self.groups_other = EntryTable(self.slot_words), EntryTable(self.slot_words)
        for entries in group_entries:
            self._append(entries, self.groups_direct, self.groups_other)
        self.groups_direct.freeze()
        self.groups_other.freeze()
        self.lines_direct, self.lines_other = EntryTable(self.slot_words), EntryTable(self.slot_words)
        self._views: dict[tuple[object, ...], int] = {}
        # Condition groups (numbered over every list) of each CIM-10 code met, as CSR lists.
        self._code_number: dict[str, int] = {}
        self._code_start: list[int] = []
        self._code_count: list[int] = []
        self._code_groups: list[int] = []

    def _append(self, entries: list[tuple[int, int, int]], direct: EntryTable, other: EntryTable) -> None:
        """An item's entries (alternative, requirement bits met, view) into its row of both tables."""
        mine: list[tuple[int, int]] = []
        theirs: list[tuple[int, int]] = []
        provides = wants = 0
        for a, bits, view in entries:
            full = (1 << self.requirements[a]) - 1
            provides |= bits << self._slot_of[a]
            if bits == full:
                mine.append((a, view))
            else:
                theirs.append((a, view))
                wants |= (full & ~bits) << self._slot_of[a]
        direct.append(mine, 0, 0)
        other.append(theirs, provides, wants)  # the item's masks, read with its other entries

    @property
    def view_count(self) -> int:
        """Views are below this number."""
        return self.always + 1 + len(self._views)

    def grow(self, catalog: LineCatalog) -> None:
        """Table rows for the catalog lines met since the last call."""
        for line in catalog.lines[len(self.lines_direct.rows) :]:
            found: dict[int, tuple[int, dict[int, list[int]]]] = {}  # alternative -> bits, selected
            if line.criteria_relevant:  # the engine's input is cut to these lines
                for reader, by_selector in zip(self._readers, self._by_selector, strict=True):
                    for k, exposure in enumerate(line.exposures):
                        for sid in reader.selectors_of(exposure):
                            for number, bit in by_selector.get(sid, ()):
                                bits, selected = found.get(number, (0, {}))
                                selected.setdefault(k, []).append(sid)
                                found[number] = (bits | bit, selected)
            entries: list[tuple[int, int, int]] = []
            exposures = line.exposures
            for number in sorted(found):
                bits, selected = found[number]
                details = self._inputs[number].details
                view_key = (
                    number,
                    *(
                        (exposures[k].substance_id, tuple(sids), _details(exposures[k]) if details else None)
                        for k, sids in sorted(selected.items())
                    ),
                )
                view = self.always + 1 + self._views.setdefault(view_key, len(self._views))
                entries.append((number, bits, view))
            self._append(entries, self.lines_direct, self.lines_other)
        self.lines_direct.freeze()
        self.lines_other.freeze()

    def set_groups(self, condition_sets: Sequence[tuple[str, ...]]) -> tuple[Ints, Ints]:
        """The condition groups present for each set of codes, as CSR arrays (count, flat groups):
        each set's groups ascending and distinct, numbered over every list."""
        if len(self._code_number) >= MEMO_LIMIT:
            self._code_number.clear()
            self._code_start.clear()
            self._code_count.clear()
            self._code_groups.clear()
        number = self._code_number
        codes = np.fromiter(
            (
                number[code] if code in number else self._add_code(code)
                for codes in condition_sets
                for code in codes
            ),
            dtype=np.int64,
        )
        code_count = np.asarray(self._code_count, dtype=np.int64)[codes]
        groups = np.asarray(self._code_groups, dtype=np.int64)[
            ranges(np.asarray(self._code_start, dtype=np.int64)[codes], code_count)
        ]
        per_set = np.fromiter((len(c) for c in condition_sets), dtype=np.int64, count=len(condition_sets))
        owner = np.repeat(np.repeat(np.arange(len(condition_sets), dtype=np.int64), per_set), code_count)
        # A set's groups are the union of its codes' groups (as the engine finds them, code by code).
        width = max(self.group_count, 1)
        pairs = distinct_sorted(owner * width + groups)
        owner, groups = np.divmod(pairs, width)
        return np.bincount(owner, minlength=len(condition_sets)).astype(np.int64), groups

    def _add_code(self, code: str) -> int:
        norm = [normalise_cim10(code)]  # as the contract Patient holds it
        found = sorted(
            {
                base + g
                for reader, base in zip(self._readers, self.group_base, strict=True)
                for g in reader.groups_of(norm)
            }
        )
        self._code_start.append(len(self._code_groups))
        self._code_count.append(len(found))
        self._code_groups.extend(found)
        self._code_number[code] = len(self._code_number)
        return self._code_number[code]
