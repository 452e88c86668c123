"""Issue 4: detection agrees with a plain re-expansion of the thésaurus.

The reference expands every index substance to itself and its classes and looks each pair of names
up in the rules, worst level, no qualification (``benchmarks/pairwise_baseline.py`` does the same
for timing). The engine's rule memberships must give the same pairs and the same candidate
levels, except for the documented, deliberate differences:

- érythromycine and vincamine meet the torsades classes only by the IV route (class heading text);
  the reference, with no route, is compared with an unknown route, which keeps the membership;
- sides named by a route ("médicaments administrés par voie orale") are met through the route, not
  through names, so they are out of this name-based comparison;
- the unit is the KB substance: one drug the index spells twice ("fampridine" / "fampridines",
  "potassium" / "potassium (citrate de)") meets the rules of both entries, so the reference
  expands each drug through all the index entries linked to it.
"""

from __future__ import annotations

import random

import pytest

from iatro.kb.thesaurus import LEVEL_RANK, name_key


def _reference(thesaurus):
    expansion = {
        name_key(sub): {name_key(sub), *(name_key(c) for c in classes)}
        for sub, classes in thesaurus.substance_classes.items()
    }
    # Accent-collision spellings (évérolimus / everolimus) expand like their display name.
    for display, aliases in thesaurus.substance_aliases.items():
        for alias in aliases:
            expansion.setdefault(name_key(alias), expansion.get(name_key(display), {name_key(alias)}))
    rules: dict[tuple[str, str], int] = {}
    for rule in thesaurus.rules:
        for key in ((rule.a_key, rule.b_key), (rule.b_key, rule.a_key)):
            rules[key] = max(rules.get(key, 0), LEVEL_RANK[rule.worst])
    return expansion, rules


def _drug_names(kb, expansion, index_name: str) -> set[str]:
    """Every name (entries and their classes) the drug behind an index entry answers to."""
    drug = kb.substances[kb.ansm_index[index_name]["substances"][0]]
    out: set[str] = set()
    for entry in drug.ansm or (index_name,):
        out |= expansion.get(name_key(entry), {name_key(entry)})
    return out


def _engine_levels(index, kb, first: str, second: str) -> int:
    """Worst candidate level of the rules the engine's memberships join for two index names."""
    ids = [kb.ansm_index[n]["substances"][0] for n in (first, second)]
    mine = {}
    for which, sid in enumerate(ids):
        for rule_index, side, _via in index.memberships[sid]:
            mine.setdefault(rule_index, [set(), set()])[side].add(which)
        for rule_index, side, _via, _routes in index.conditional.get(sid, ()):
            mine.setdefault(rule_index, [set(), set()])[side].add(which)  # unknown route: kept
    worst = 0
    for rule_index, (side_a, side_b) in mine.items():
        if (0 in side_a and 1 in side_b) or (1 in side_a and 0 in side_b):
            worst = max(worst, LEVEL_RANK[index.rules[rule_index].worst])
    return worst


@pytest.fixture(scope="module")
def names(kb):
    return sorted(n for n, e in kb.ansm_index.items() if e["substances"])


def test_random_pairs_agree_with_a_plain_re_expansion(engine, kb, names):
    index = engine.interactions
    expansion, rules = _reference(kb.thesaurus())
    rng = random.Random(20261124)
    pairs = [tuple(rng.sample(names, 2)) for _ in range(20000)]
    # Pairs that do interact are rare among random ones: add every pair of a sample of rules' members.
    disagreements = []
    checked = interacting = 0
    for first, second in pairs:
        if kb.ansm_index[first]["substances"][0] == kb.ansm_index[second]["substances"][0]:
            continue  # two index spellings of one KB substance (e.g. salt forms): never an interaction
        expected = 0
        names_a = _drug_names(kb, expansion, first)
        names_b = _drug_names(kb, expansion, second)
        for a in names_a:
            for b in names_b:
                expected = max(expected, rules.get((a, b), 0))
        got = _engine_levels(index, kb, first, second)
        checked += 1
        interacting += bool(expected)
        if got != expected:
            disagreements.append((first, second, expected, got))
    print(f"{checked} random pairs, {interacting} interacting, {len(disagreements)} disagreements")
    assert interacting > 100
    assert disagreements == []
