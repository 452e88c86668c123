"""In-memory drug search over the KB: products and substances by name, CIS, CIP13 or CIP7.

Built once at startup (a few hundred ms). Ranking, best first:

1. a code (8 digits = CIS, 13 = CIP13, 7 = CIP7) that exists;
2. a name equal to the query (folded: case, accents and punctuation ignored);
3. a name starting with the query ("amlo" -> "amlodipine ...");
4. a word of the name starting with the query ("biogaran" -> "AMLODIPINE BIOGARAN ...");
5. fuzzy matches (rapidfuzz WRatio) for typos, over the distinct names only (product stems and
   substance names, about 12 000 strings) so that a query stays in the low milliseconds.

Within a rank, substances come before products (a search is most often for a DCI), marketed products
before withdrawn ones, then shorter names. A substance and its synonyms are one result.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal, Protocol

from rapidfuzz import fuzz, process

from iatro.kb.store import KnowledgeBase
from iatro.text import fold

Kind = Literal["product", "substance"]
MatchKind = Literal["cis", "cip13", "cip7", "exact", "prefix", "word", "fuzzy"]

_RANK: dict[MatchKind, int] = {
    "cis": 0,
    "cip13": 0,
    "cip7": 0,
    "exact": 1,
    "prefix": 2,
    "word": 3,
    "fuzzy": 4,
}
_FUZZY_CUTOFF = 75.0
_MIN_FUZZY_QUERY = 3  # one or two letters match everything fuzzily: prefixes only


@dataclass(frozen=True, slots=True)
class DrugEntry:
    kind: Kind
    name: str
    cis: str | None
    atc: str | None
    marketed: bool


@dataclass(frozen=True, slots=True)
class DrugHit:
    entry: DrugEntry
    match: MatchKind
    score: float
    matched: str  # the folded key or the code that matched
    cip13: str | None = None


class DrugIndex:
    def __init__(self, kb: KnowledgeBase) -> None:
        self.entries: list[DrugEntry] = []
        self._product_entry: dict[int, int] = {}
        for s in kb.substances:
            if s.homeopathic:
                continue  # thousands of homeopathic stocks would drown the DCI results
            self.entries.append(DrugEntry("substance", s.name, None, s.atc[0] if s.atc else None, True))
        substance_entry = {s.name: i for i, s in enumerate(self.entries)}
        for p in kb.products:
            self._product_entry[p.id] = len(self.entries)
            self.entries.append(DrugEntry("product", p.name, p.cis, p.atc, p.marketed))
        self.by_cis = {p.cis: self._product_entry[p.id] for p in kb.products}
        self.by_cip13 = {c.cip13: (self._product_entry[c.product_id], c.cip13) for c in kb.presentations}
        self.by_cip7 = {c.cip7: (self._product_entry[c.product_id], c.cip13) for c in kb.presentations}

        keys: dict[str, set[int]] = defaultdict(set)
        for name, ids in kb.substance_ids_by_name.items():
            for sid in ids:
                entry = substance_entry.get(kb.substances[sid].name)
                if entry is not None:
                    keys[name].add(entry)
        for s in kb.substances:
            if s.name_en and s.name in substance_entry:
                keys[fold(s.name_en)].add(substance_entry[s.name])
        for p in kb.products:
            keys[fold(p.name)].add(self._product_entry[p.id])
            keys[p.stem].add(self._product_entry[p.id])
        self._keys: dict[str, tuple[int, ...]] = {k: tuple(sorted(v)) for k, v in keys.items() if k}
        self._sorted_keys = sorted(self._keys)
        words: set[tuple[str, str]] = set()
        for key in self._keys:
            for word in key.split()[1:]:  # the first word is already a prefix match
                words.add((word, key))
        self._words = sorted(words)
        # Fuzzy matching runs over substance names and product stems only: full product names add
        # strengths and forms that dilute the score and triple the work.
        self._fuzzy_choices = sorted(
            k
            for k in {k for k in kb.substance_ids_by_name if k in self._keys} | {p.stem for p in kb.products}
            if len(k) >= _MIN_FUZZY_QUERY
        )

    def search(self, query: str, limit: int = 10) -> list[DrugHit]:
        q = query.strip()
        hits: dict[int, DrugHit] = {}

        def add(entry: int, match: MatchKind, score: float, matched: str, cip13: str | None = None) -> None:
            old = hits.get(entry)
            if old is None or (_RANK[match], -score) < (_RANK[old.match], -old.score):
                hits[entry] = DrugHit(self.entries[entry], match, score, matched, cip13)

        if q.isdigit():
            if len(q) == 8 and q in self.by_cis:
                add(self.by_cis[q], "cis", 100.0, q)
            elif len(q) == 13 and q in self.by_cip13:
                entry, cip13 = self.by_cip13[q]
                add(entry, "cip13", 100.0, q, cip13)
            elif len(q) == 7 and q in self.by_cip7:
                entry, cip13 = self.by_cip7[q]
                add(entry, "cip7", 100.0, q, cip13)
        key = fold(q)
        if key:
            for entry in self._keys.get(key, ()):
                add(entry, "exact", 100.0, key)
            self._prefixed(key, limit, add)
            # "paracetamol 1000", "laroxyl 25 mg": the name is the words before the first number.
            name = " ".join(_name_words(key))
            if name and name != key:
                # Below a match of the whole query ("doliprane 1000" -> DOLIPRANE 1000 mg first).
                for entry in self._keys.get(name, ()):
                    add(entry, "prefix", 80.0, name)
                self._prefixed(name, limit, add, penalty=15.0)
            if len(hits) < limit and len(name) >= _MIN_FUZZY_QUERY:
                # Plain edit ratio, not WRatio: partial matching rates "a 313" close to anything.
                for choice, score, _ in process.extract(
                    name, self._fuzzy_choices, scorer=fuzz.ratio, limit=limit, score_cutoff=_FUZZY_CUTOFF
                ):
                    for entry in self._keys[choice]:
                        add(entry, "fuzzy", round(float(score), 1), choice)
        ranked = sorted(hits.values(), key=self._order)
        return ranked[:limit]

    def _prefixed(self, key: str, limit: int, add: _Add, penalty: float = 0.0) -> None:
        # Enough candidates to rank well: the sort below puts substances and marketed products first,
        # so collect more than ``limit`` before cutting.
        budget = max(limit * 5, 50)
        lo = bisect.bisect_left(self._sorted_keys, key)
        for name in self._sorted_keys[lo : lo + budget]:
            if not name.startswith(key):
                break
            if name != key:
                for entry in self._keys[name]:
                    add(entry, "prefix", 90.0 - penalty - min(len(name) - len(key), 40) / 4, name)
        lo = bisect.bisect_left(self._words, (key, ""))
        for word, name in self._words[lo : lo + budget]:
            if not word.startswith(key):
                break
            for entry in self._keys[name]:
                add(entry, "word", 80.0 - penalty - min(len(word) - len(key), 40) / 4, name)

    @staticmethod
    def _order(hit: DrugHit) -> tuple[int, float, int, int, int, str]:
        entry = hit.entry
        return (
            _RANK[hit.match],
            -hit.score,
            0 if entry.kind == "substance" else 1,
            0 if entry.marketed else 1,
            len(entry.name),
            entry.name,
        )


def _name_words(key: str) -> list[str]:
    words: list[str] = []
    for word in key.split():
        if word[:1].isdigit():
            break
        words.append(word)
    return words


class _Add(Protocol):
    def __call__(
        self, entry: int, match: MatchKind, score: float, matched: str, cip13: str | None = None
    ) -> None: ...
