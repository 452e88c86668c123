"""The plain detection loop of the ANSM check: the test oracle the fast path is checked against.

``InteractionIndex.findings`` reaches the same result from candidates cached per pair of (substance,
route); this function walks the rule memberships of every exposure of the prescription, bucket by
rule, as the first implementation did. ``tests/unit/test_batch_interactions.py`` checks that both give
the same findings in the same order on thousands of generated prescriptions.
"""

from __future__ import annotations

from collections import defaultdict

from iatro.checks.context import CheckContext, Exposure
from iatro.checks.interactions import Finding, InteractionIndex
from iatro.checks.qualify import qualify
from iatro.kb.thesaurus import name_key


def reference_findings(
    index: InteractionIndex, ctx: CheckContext, line: int | None = None
) -> dict[tuple[int, int], list[Finding]]:
    """Qualified findings grouped by unordered substance-id pair (only pairs with ``line`` if given)."""
    buckets: dict[int, tuple[list[tuple[Exposure, str]], list[tuple[Exposure, str]]]] = {}
    for exposure in ctx.exposures:
        for rule_index, side, name in index.memberships[exposure.substance_id]:
            buckets.setdefault(rule_index, ([], []))[side].append((exposure, name))
        for rule_index, side, name, routes in index.conditional.get(exposure.substance_id, ()):
            # An unknown route keeps the membership: the worse reading.
            if exposure.route is None or exposure.route in routes:
                buckets.setdefault(rule_index, ([], []))[side].append((exposure, name))
        if exposure.route is not None:
            for rule_index, side, name, only in index.route_sides.get(exposure.route, ()):
                if only is None or not only.isdisjoint(map(name_key, exposure.aliases)):
                    buckets.setdefault(rule_index, ([], []))[side].append((exposure, name))
    pairs: dict[tuple[int, int], list[Finding]] = defaultdict(list)
    for rule_index in sorted(buckets):
        side_a, side_b = buckets[rule_index]
        if not side_a or not side_b:
            continue
        rule = index.rules[rule_index]
        for first, via_first in side_a:
            for second, via_second in side_b:
                if first.substance_id == second.substance_id or first.line == second.line:
                    continue
                if line is not None and line not in (first.line, second.line):
                    continue
                qualification = index.qualifications.get(rule.rule_id)
                level = (
                    qualify(rule, qualification, first, second, ctx.patient)
                    if qualification is not None
                    else index._unqualified[rule_index]
                )
                if level.level is None:
                    continue  # the thesaurus text excludes this combination from the rule
                key = (
                    min(first.substance_id, second.substance_id),
                    max(first.substance_id, second.substance_id),
                )
                pairs[key].append(Finding(rule, level, first, second, via_first, via_second))
    return pairs
