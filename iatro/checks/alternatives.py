"""Substitutes for the drugs of an alert, each proven by re-running the checks.

For a serious alert (an interaction at contre-indication or association déconseillée, a high CYP
alert, a PIM), every substance it implicates is a candidate for replacement. Candidates share its
WHO ATC level 4 first, then level 3, and exist in marketed BDPM products. A candidate qualifies
only if, swapped into the prescription in place of the drug, the alert is gone and no alert of
equal or higher severity appears that involves it (the interaction and CYP checks are re-run on the
modified prescription). A candidate must be marketed by the route of the line it replaces.
For each ATC prefix only the MAX_CANDIDATES most common marketed substances are tried.
Qualified candidates are ranked by the risk that remains (the sum of the levels they still
raise), then by how many marketed products carry them (common generics before niche drugs),
then by name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace

from iatro.checks.context import CheckContext, Exposure
from iatro.kb.store import KnowledgeBase
from iatro.model.report import Alert, Alternative, replaced
from iatro.units import normalise_route

_RANK = {
    "contre-indication": 4, "association-deconseillee": 3, "precaution-emploi": 2, "a-prendre-en-compte": 1,
    "high": 4, "moderate": 2, "low": 1,
}  # fmt: skip
MAX_ALTERNATIVES = 3
MAX_CANDIDATES = 8  # per ATC prefix and level, the most common marketed substances
_SHARED_LISTS = 20_000  # distinct lists of alternatives kept as one object each (see ``_shared``)
SERIOUS = {"contre-indication", "association-deconseillee", "high"}

# Re-runs the checks a substitution can change; only alerts involving the given line, and of at
# least the given rank, are needed (a check that cannot reach that rank may be skipped).
Recheck = Callable[[CheckContext, int, int], Sequence[Alert]]


def rank(alert: Alert) -> int:
    return _RANK.get(alert.severity, 0)


class AlternativeFinder:
    def __init__(self, kb: KnowledgeBase, recheck: Recheck) -> None:
        self.kb = kb
        self.recheck = recheck
        self._lists: dict[tuple[Alternative, ...], tuple[Alternative, ...]] = {}  # see ``_shared``
        marketed: set[int] = set()
        # Substance -> routes of its marketed single-substance products, and how many there are
        # (a proxy for common use: many generics of pravastatine, one product of pitavastatine).
        self.routes: dict[int, set[str]] = defaultdict(set)
        self.products: dict[int, int] = defaultdict(int)
        for product in kb.products:
            if product.marketed and len(product.components) == 1 and not product.homeopathic:
                sid = product.components[0].substance_id
                marketed.add(sid)
                self.products[sid] += 1
                self.routes[sid].update(filter(None, (normalise_route(r) for r in product.routes)))
        self.by_prefix: dict[str, list[int]] = defaultdict(list)
        for sid in sorted(marketed):
            for code in kb.substances[sid].atc:
                for level in (5, 4):  # ATC level 4 = 5 characters, level 3 = 4 characters
                    if len(code) == 7 and sid not in self.by_prefix[code[:level]]:
                        self.by_prefix[code[:level]].append(sid)

    def wants(self, alert: Alert) -> bool:
        return alert.type in ("interaction", "cyp", "pim") and (
            alert.severity in SERIOUS or alert.type == "pim"
        )

    def attach(self, alerts: Sequence[Alert], ctx: CheckContext) -> list[Alert]:
        """The alerts, each serious one with its proven substitutes."""
        # One analysis' re-checks, shared by its alerts: (line, candidate) -> alerts involving the line.
        cache: dict[tuple[int, int], list[Alert]] = {}
        return [
            replaced(a, alternatives=self._shared(self.for_alert(a, ctx, cache))) if self.wants(a) else a
            for a in alerts
        ]

    def _shared(self, found: tuple[Alternative, ...]) -> tuple[Alternative, ...]:
        """One object for equal lists of alternatives: an alert that gets the same substitutes as
        before then differs from its memoised original in its lines only, and the API reuses its
        JSON (``api/report_json.py``) instead of remembering one more copy per request."""
        shared = self._lists.get(found)
        if shared is None:
            if len(self._lists) >= _SHARED_LISTS:
                self._lists.clear()
            shared = self._lists[found] = found
        return shared

    def for_alert(
        self, alert: Alert, ctx: CheckContext, cache: dict[tuple[int, int], list[Alert]] | None = None
    ) -> tuple[Alternative, ...]:
        cache = {} if cache is None else cache
        found: list[tuple[int, int, str, Alternative]] = []
        present = {e.substance_id for e in ctx.exposures}
        for line in alert.lines:
            for target in [e for e in ctx.exposures if e.line == line]:
                if target.name not in {s.name for s in alert.substances}:
                    continue
                found.extend(self._for_exposure(alert, ctx, target, present, cache))
        found.sort(key=lambda item: (item[0], item[1], item[2]))
        unique: dict[str, Alternative] = {}
        for _risk, _popularity, _name, alternative in found:
            unique.setdefault(alternative.name, alternative)
        return tuple(list(unique.values())[:MAX_ALTERNATIVES])

    def _for_exposure(
        self,
        alert: Alert,
        ctx: CheckContext,
        target: Exposure,
        present: set[int],
        cache: dict[tuple[int, int], list[Alert]],
    ) -> list[tuple[int, int, str, Alternative]]:
        out: list[tuple[int, int, str, Alternative]] = []
        codes = target.atc or self.kb.substances[target.substance_id].atc
        for level, label in ((5, "même classe ATC (niveau 4)"), (4, "même groupe ATC (niveau 3)")):
            seen: set[int] = set()
            for code in codes:
                eligible = [
                    sid
                    for sid in self.by_prefix.get(code[:level], ())
                    if sid not in present
                    and sid not in seen
                    # an oral line is not replaced by an injectable
                    and (target.route is None or target.route in self.routes[sid])
                ]
                # Each candidate costs a re-run of the checks: the most common marketed substances of
                # the class are tried, the others never proposed (a prescriber substitutes with a
                # drug in current use; this bounds the cost for classes of dozens of members).
                eligible.sort(key=lambda sid: (-self.products[sid], self.kb.substances[sid].name))
                for sid in eligible[:MAX_CANDIDATES]:
                    seen.add(sid)
                    risk = self._risk_with(alert, ctx, target, sid, cache)
                    if risk is None:
                        continue
                    sub = self.kb.substances[sid]
                    reason = f"remplace {target.name} ({label} {code[:level]}); risque restant {risk}"
                    out.append(
                        (
                            risk,
                            -self.products[sid],
                            sub.name,
                            Alternative(name=sub.name, atc=sub.atc[0] if sub.atc else None, reason=reason),
                        )
                    )
            if out:
                break  # level 4 substitutes exist: level 3 is not needed
        return out

    def _risk_with(
        self,
        alert: Alert,
        ctx: CheckContext,
        target: Exposure,
        candidate: int,
        cache: dict[tuple[int, int], list[Alert]],
    ) -> int | None:
        sub = self.kb.substances[candidate]
        # The swapped line keeps its route but not its dose: the substitute's dose is not known.
        swapped = replace(
            target,
            substance_id=candidate,
            name=sub.name,
            atc=sub.atc[:1],
            aliases=sub.ansm,
            mg_per_intake=None,
            mg_per_day=None,
        )
        key = (target.line, candidate)
        cached = cache.get(key)
        if cached is not None:
            return self._judge(alert, cached, sub.name)
        exposures = tuple(swapped if e is target else e for e in ctx.exposures)
        alerts = [
            a
            for a in self.recheck(replace(ctx, exposures=exposures), target.line, rank(alert))
            if target.line in a.lines
        ]
        cache[key] = alerts
        return self._judge(alert, alerts, sub.name)

    @staticmethod
    def _judge(alert: Alert, alerts: list[Alert], name: str) -> int | None:
        involving = [a for a in alerts if name in {s.name for s in a.substances}]
        if any(rank(a) >= rank(alert) for a in involving):
            return None
        if any(a.rule_id == alert.rule_id and a.type == alert.type for a in alerts):
            return None
        return sum(rank(a) for a in involving)
