"""Name index over the KB's products and substances, built once per loaded KB."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import OSA

from iatro.kb.store import KnowledgeBase, ProductInfo
from iatro.kb.strength import Strength, parse_strengths


def product_head(name: str) -> str:
    """The part of a BDPM name before its form: "ELIQUIS 2,5 mg, comprimé pelliculé" -> "ELIQUIS 2,5 mg".

    BDPM separates the form with a comma and a space; a decimal comma has no space after it.
    """
    return re.split(r",\s", name, maxsplit=1)[0]


@dataclass(frozen=True, slots=True)
class ProductEntry:
    product: ProductInfo
    strengths: tuple[Strength, ...]  # as written in the product name ("LAROXYL 25 mg" -> 25 mg)
    form: str  # folded BDPM form


class NameIndex:
    """Stems (folded product names before the strength) and substance names, with a word vocabulary
    for typo correction."""

    def __init__(self, kb: KnowledgeBase) -> None:
        from iatro.text import fold

        self.kb = kb
        stems: dict[str, list[ProductEntry]] = defaultdict(list)
        by_substances: dict[frozenset[int], list[ProductEntry]] = defaultdict(list)
        for product in kb.products:
            head = product_head(product.name)
            entry = ProductEntry(
                product,
                tuple(parse_strengths(head[len(head.split()[0]) :] if head else "")),
                fold(product.form),
            )
            stems[product.stem].append(entry)
            if product.components:
                by_substances[frozenset(product.substance_ids)].append(entry)
        # Marketed products first, then by name: ties are broken the same way on every run.
        self.stems: dict[str, tuple[ProductEntry, ...]] = {
            stem: tuple(sorted(entries, key=lambda e: (not e.product.marketed, e.product.name)))
            for stem, entries in stems.items()
        }
        self.sorted_stems = sorted(self.stems)
        self.by_substances: dict[frozenset[int], tuple[ProductEntry, ...]] = {
            ids: tuple(sorted(entries, key=lambda e: (not e.product.marketed, e.product.name)))
            for ids, entries in by_substances.items()
        }
        words: set[str] = set()
        for stem in self.stems:
            words.update(stem.split())
        for name in kb.substance_ids_by_name:
            words.update(name.split())
        self.vocabulary = sorted(w for w in words if len(w) >= 4 and not any(ch.isdigit() for ch in w))
        self._vocabulary_set = frozenset(self.vocabulary)

    def stems_starting_with(self, prefix: str) -> list[str]:
        import bisect

        lo = bisect.bisect_left(self.sorted_stems, prefix + " ")
        out = []
        for stem in self.sorted_stems[lo:]:
            if not stem.startswith(prefix + " "):
                break
            out.append(stem)
        return out

    def known_word(self, word: str) -> bool:
        return word in self._vocabulary_set

    def close_words(self, word: str) -> list[tuple[str, int]]:
        """Vocabulary words within a small edit distance (a transposition counts one), nearest first."""
        if len(word) < 5:
            return []
        limit = 1 if len(word) < 9 else 2
        found = process.extract(word, self.vocabulary, scorer=OSA.distance, score_cutoff=limit, limit=8)
        return sorted(((w, int(d)) for w, d, _ in found), key=lambda x: (x[1], x[0]))
