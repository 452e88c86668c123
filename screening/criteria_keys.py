"""Keys of (patient, alternative) pairs, and the store of the keys already evaluated.

A pair's key is what its alternative's outcome depends on: the alternative, the facts it reads and the
distinct views of the pair's items, ascending. Equal keys are found by a 64-bit hash (a sum over the
views, so computed per pair from one cumulative sum), then compared field by field and view by view: a
collision costs a further probe or a slow path, never a count.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from screening.segments import ranges

Ints = npt.NDArray[np.int64]
Hashes = npt.NDArray[np.uint64]
Bools = npt.NDArray[np.bool_]
_FIRST_SLOTS = 1 << 12


def mix(x: Hashes) -> Hashes:
    """SplitMix64 finaliser: spreads ids over 64 bits so that sums of them rarely collide."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def differ(same: Bools, view: Ints, starts: Ints, lengths: Ints, other: Ints, other_starts: Ints) -> None:
    """Clear ``same[k]`` where pair k's views differ from ``other[other_starts[k]:...]``, item by item.

    Only pairs still marked the same are compared: their lengths agree, so indices stay in range.
    """
    same &= view[starts] == other[np.where(same, other_starts, 0)]  # the first items
    longer = np.flatnonzero(same & (lengths > 1))  # the others, of the (fewer) longer pairs
    if not len(longer):
        return
    rest = lengths[longer] - 1
    pair = np.repeat(longer, rest)
    offset = ranges(np.ones(len(longer), dtype=np.int64), rest)  # 1 .. length - 1 for each pair
    differs = view[starts[pair] + offset] != other[other_starts[pair] + offset]
    same[pair[differs]] = False


class KeyStore:
    """Keys already evaluated, each with its found number, in an open-addressing hash table.

    Slots (linear probing, at most a quarter full, so that most lookups take one probe) hold key
    numbers; a lookup walks from the slot of the hash to the first empty one, comparing the keys met.
    Every array here is indexed by key number; the views of key k are
    ``views[start[k]:start[k] + length[k]]``.
    """

    def __init__(self) -> None:
        none = np.zeros(0, dtype=np.int64)
        self.hash: Hashes = np.zeros(0, dtype=np.uint64)
        self.alternative, self.facts, self.length, self.start, self.found = none, none, none, none, none
        self.views: Ints = none
        self._slots = np.full(_FIRST_SLOTS, -1, dtype=np.int64)
        self._view_hash: Hashes = np.zeros(0, dtype=np.uint64)

    def __len__(self) -> int:
        return len(self.hash)

    def hashes(self, alternative: Ints, facts: Ints, views: Ints, starts: Ints, lengths: Ints) -> Hashes:
        """Each pair's hash, pair k's views being ``views[starts[k]:starts[k] + lengths[k]]``."""
        needed = int(views.max(initial=0)) + 1
        if len(self._view_hash) < needed:  # the views met so far, and room for more
            self._view_hash = mix(np.arange(2 * needed, dtype=np.uint64))
        with np.errstate(over="ignore"):
            total = np.zeros(len(views) + 1, dtype=np.uint64)
            np.cumsum(self._view_hash[views], out=total[1:])  # modulo 2**64, as the sums it gives
            hashes: Hashes = total[starts + lengths] - total[starts]
            hashes += mix((alternative.astype(np.uint64) << np.uint64(40)) | facts.astype(np.uint64))
        return hashes

    def lookup(
        self, hashes: Hashes, alternative: Ints, facts: Ints, lengths: Ints, views: Ints, starts: Ints
    ) -> Ints:
        """The number of each pair's key, -1 for a key not stored."""
        out = np.full(len(hashes), -1, dtype=np.int64)
        if not len(self.hash):
            return out
        mask = len(self._slots) - 1
        pending = np.arange(len(hashes), dtype=np.int64)
        position = (hashes & np.uint64(mask)).astype(np.int64)
        while len(pending):
            key = self._slots[position]
            filled = key >= 0
            at = np.where(filled, key, 0)
            same = filled & (self.hash[at] == hashes[pending]) & (self.length[at] == lengths[pending])
            same &= (self.alternative[at] == alternative[pending]) & (self.facts[at] == facts[pending])
            differ(same, views, starts[pending], lengths[pending], self.views, self.start[at])
            out[pending[same]] = key[same]
            further = filled & ~same  # another key in this slot: probe the next one
            pending, position = pending[further], (position[further] + 1) & mask
        return out

    def add(
        self, hashes: Hashes, alternative: Ints, facts: Ints, lengths: Ints, views: Ints, found: Ints
    ) -> None:
        """New keys (none of them stored, each once), their views flat in order, their found numbers."""
        first = len(self.hash)
        self.hash = np.concatenate((self.hash, hashes))
        self.alternative = np.concatenate((self.alternative, alternative))
        self.facts = np.concatenate((self.facts, facts))
        self.length = np.concatenate((self.length, lengths))
        self.start = np.concatenate((self.start, len(self.views) + np.cumsum(lengths) - lengths))
        self.views = np.concatenate((self.views, views))
        self.found = np.concatenate((self.found, found))
        if 4 * len(self.hash) > len(self._slots):
            size = len(self._slots)
            while 4 * len(self.hash) > size:
                size *= 2
            self._slots = np.full(size, -1, dtype=np.int64)
            first = 0
        self._insert(np.arange(first, len(self.hash), dtype=np.int64))

    def _insert(self, keys: Ints) -> None:
        mask = len(self._slots) - 1
        position = (self.hash[keys] & np.uint64(mask)).astype(np.int64)
        while len(keys):
            free = self._slots[position] < 0
            self._slots[position[free]] = keys[free]  # keys wanting one slot: one of them takes it
            placed = free.copy()
            placed[free] = self._slots[position[free]] == keys[free]
            keys, position = keys[~placed], (position[~placed] + 1) & mask
