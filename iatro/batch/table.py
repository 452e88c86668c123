"""The kernel's pair table: for two exposure signatures, the main rule they meet and whether to qualify.

A *signature* is the set of (rule, side) an exposure meets (:meth:`InteractionIndex.entries`
without the names). Two exposures interact through every rule one meets on side a and the other on
side b; the pair's static outcome is the engine's main rule among them (worst level, then smallest
rule id), unless a rule of the pair is qualified and its level depends on the patient.

Pure array code over the signatures the kernel has met (a screening batch meets a few hundred of
the ~1,900 a thesaurus edition allows): the table is built from them in a few vectorised passes,
so the kernel registers signatures as lines are encoded instead of enumerating them all at load.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import numpy as np
import numpy.typing as npt

from iatro.batch.hits import I64
from iatro.errors import KnowledgeBaseCorrupt

#: A cell's flag bit: a rule of the pair is qualified, its level depends on the patient.
QUALIFY = 1 << 13
#: A cell that holds no rule.
NO_RULE = -1

Signature = tuple[tuple[int, int], ...]


def pair_codes(rank: I64, rule_order: I64) -> I64:
    """Each rule's cell code ``(4 - rank) * n_rules + order(rule_id)``: the smallest is the main rule."""
    n_rules = len(rank)
    if 4 * n_rules >= QUALIFY:
        raise KnowledgeBaseCorrupt(f"{n_rules} rules: the pair table packs a rule order in 13 bits")
    return (4 - rank) * n_rules + rule_order


def pair_table(
    signatures: Sequence[Signature], codes: I64, qualified: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int16]:
    """The flat ``n x n`` table of ``n = len(signatures)``: cell ``x * n + y`` holds the smallest code
    (``codes[rule]``) over the rules met with ``x`` on one side and ``y`` on the other (in either
    orientation), with the :data:`QUALIFY` bit when one of them is ``qualified``; :data:`NO_RULE`
    when they meet none. int16 keeps the table small enough to stay in the processor's cache.
    """
    n = len(signatures)
    n_rules = len(codes)
    table = np.full(n * n, np.iinfo(np.int16).max, dtype=np.int16)
    sizes = np.fromiter(map(len, signatures), dtype=np.int64, count=n)
    total = int(sizes.sum())
    members = np.fromiter(
        chain.from_iterable(chain.from_iterable(signatures)), dtype=np.int64, count=2 * total
    )
    sig = np.repeat(np.arange(n, dtype=np.int64), sizes)
    rule, side = members[0::2], members[1::2]
    # Members grouped by (rule, side); a rule's side-b members are one slice of ``by_side``.
    group = rule * 2 + side
    order = np.argsort(group, kind="stable")
    by_side = sig[order]
    count = np.bincount(group, minlength=2 * n_rules)
    start = np.cumsum(count) - count
    count_b, start_b = count[1::2], start[1::2]
    # Every side-a member meets every side-b member of its rule.
    side_a = np.flatnonzero((side == 0) & (count_b[rule] > 0))
    a_rule = rule[side_a]
    repeat = count_b[a_rule]
    a = np.repeat(sig[side_a], repeat)
    within = np.arange(len(a), dtype=np.int64) - np.repeat(np.cumsum(repeat) - repeat, repeat)
    b = by_side[np.repeat(start_b[a_rule], repeat) + within]
    cells = np.concatenate((a * n + b, b * n + a))
    code = np.repeat(codes[a_rule], repeat)
    np.minimum.at(table, cells, np.concatenate((code, code)).astype(np.int16))
    table[table == np.iinfo(np.int16).max] = NO_RULE
    needs = np.repeat(qualified[a_rule], repeat)
    marked = np.concatenate((cells[: len(a)][needs], cells[len(a) :][needs]))
    table[marked] |= QUALIFY  # repeated cells all write the same value
    return table
