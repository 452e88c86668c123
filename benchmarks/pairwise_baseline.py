"""The baseline the interaction benchmarks are measured against, in the same run.

It checks a prescription the way the best open-source French checker does: every pair of drugs,
each drug expanded to itself and its ANSM classes, every combination looked up in a dictionary
keyed by the two names; the worst level of each rule, no qualification.
"""

from __future__ import annotations

from itertools import combinations

from iatro.kb.thesaurus import ThesaurusEdition, name_key


class PairwiseChecker:
    def __init__(self, thesaurus: ThesaurusEdition) -> None:
        self.expansion = {
            name_key(sub): [name_key(sub), *(name_key(c) for c in classes)]
            for sub, classes in thesaurus.substance_classes.items()
        }
        self.rules: dict[tuple[str, str], int] = {}
        for rule in thesaurus.rules:
            for key in ((rule.a_key, rule.b_key), (rule.b_key, rule.a_key)):
                self.rules[key] = max(self.rules.get(key, 0), rule.rank)

    def check(self, names: list[str]) -> list[tuple[str, str, int]]:
        found = []
        for first, second in combinations(names, 2):
            worst = 0
            for a in self.expansion.get(name_key(first), ()):
                for b in self.expansion.get(name_key(second), ()):
                    worst = max(worst, self.rules.get((a, b), 0))
            if worst:
                found.append((first, second, worst))
        return found
