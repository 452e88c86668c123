"""Anticholinergic burden on the ACB scale (Boustani 2008), with ACBcalc where Boustani is silent.

Data: ``kb.raw["acb"]``, the collated table of g-b-f/ACB-data (commit f10b2af, see
``knowledge_base/sources/acb_gbf/SOURCE.md``), one row per English drug name with its scores on
eight published scales and the KB substances the build mapped it to.

Scale choice. The report's scale is the ACB of Boustani et al. (the usual reference in French
practice, SOURCE.md). Boustani rates about a hundred drugs; where it is silent the ACBcalc value
(acbcalc.com, an extension of the same scale) is used and ``basis`` says so for that substance. A
substance on neither list is *not rated*, which is not the same as 0: it is listed apart.

Rows and routes. The collated table has several rows for one substance (spelling variants,
salts) and route-qualified rows ("dexamethasone-ophthalmic", "hydrocortisone-not(opthalmic|…)").
A qualified row applies only to an exposure by that route and, when it carries a value on a scale,
it wins over unqualified rows (it is the more specific statement). When the route of a line is
unknown and a qualified row has a value, the unqualified value is used and the route is reported
missing. Rows of equal specificity that disagree (e.g. "brompheniramine" 3, "brompheniramine
maleate" 1 on Boustani) give the highest value, and ``conflicts`` says so: under-counting a burden
is the error this check exists to avoid. Boustani and ACBcalc never distinguish routes; when
another scale has a row for the exposure's own route (Carnahan rates ophthalmic hydrocortisone 0),
``basis`` says so next to the ACB value, which is kept.

A substance counts once however many lines carry it (the highest of its exposures); two substances
of one combination product count separately, as the scale scores drugs.

Alert. The ACB notes (Aging Brain Care, 2012 update) treat a total of 3 or more as clinically
relevant; that threshold comes with the scale, not from Iatro. No source grades totals beyond it,
so every alert is ``moderate`` — Iatro's display choice, not a clinical grading.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

from iatro.checks.context import CheckContext, Exposure
from iatro.checks.result import AlertMemo, CheckResult
from iatro.errors import KnowledgeBaseCorrupt
from iatro.kb.store import KnowledgeBase
from iatro.model.report import Alert, SubstanceRef

SCALE = "ACB"
PRIMARY = "Boustani2008"
FALLBACK = "ACBcalc"
# The other published scales of the collated table, shown side by side. MajVote and KieselVote are
# computed by the collating repository's own pipeline (SOURCE.md), not published lists: left out.
OTHER_SCALES = (
    "ACBcalc",
    "Rudolph2008",
    "Carnahan2006",
    "Ancelin2006",
    "Ehrt2010",
    "Sittironnarit2011",
    "Bishara2020",
)
ALERT_THRESHOLD = 3
ALERT_SEVERITY = "moderate"
RULE_ID = "acb:total>=3"
SOURCE = (
    "Anticholinergic Cognitive Burden scale (Boustani M et al., Aging Health 2008;4(3):311-320), "
    "ACBcalc (acbcalc.com) where Boustani is silent; collated by g-b-f/ACB-data"
)
EDITION = "Boustani 2008; ACBcalc accessed 2023-08-31; g-b-f/ACB-data f10b2af"

# Route words of the collated table (spelling as found there, typos included) -> Iatro's normalised
# routes (iatro.units). "topical" in Carnahan's list is skin application; transdermal patches are
# systemic and are not "topical" here.
_ROUTE_WORDS: Mapping[str, frozenset[str]] = {
    "topical": frozenset({"cutanee"}),
    "ophthalmic": frozenset({"ophtalmique"}),
    "opthalmic": frozenset({"ophtalmique"}),
    "opthalimic": frozenset({"ophtalmique"}),
    "nasal": frozenset({"nasale"}),
    "auricular (otic)": frozenset({"auriculaire"}),
}
_NEGATED = re.compile(r"^not\s*\((?P<words>.*)\)$")


@dataclass(frozen=True, slots=True)
class _Row:
    name: str  # the collated table's English name, for provenance
    routes: frozenset[str] | None  # None: every route
    negated: bool  # True: every route except ``routes``
    scores: Mapping[str, int]

    def applies(self, route: str | None) -> bool | None:
        """Whether the row speaks of this route; None when the route is unknown and it matters."""
        if self.routes is None:
            return True
        if route is None:
            return None
        return (route in self.routes) != self.negated


@dataclass(frozen=True, slots=True)
class _Rated:
    value: int
    rows: tuple[str, ...]  # the rows the value was read from
    conflict: str | None  # rows that disagreed, when they did
    route_unknown: bool  # a route-qualified row could have given another value


def _parse_route(spec: str | None) -> tuple[frozenset[str] | None, bool]:
    if spec is None:
        return None, False
    text = spec.strip()
    match = _NEGATED.match(text)
    words = match.group("words").split("|") if match else [text]
    routes: set[str] = set()
    for word in words:
        mapped = _ROUTE_WORDS.get(word.strip())
        if mapped is None:
            # An unknown qualifier would silently apply a topical score to a systemic drug.
            raise KnowledgeBaseCorrupt(f"ACB table: unknown route qualifier {word!r} in {spec!r}")
        routes |= mapped
    return frozenset(routes), match is not None


def _rate(rows: tuple[_Row, ...], route: str | None, scale: str) -> _Rated | None:
    with_value = [r for r in rows if scale in r.scores]
    qualified = [r for r in with_value if r.routes is not None]
    chosen = [r for r in qualified if r.applies(route)]
    route_unknown = route is None and bool(qualified)
    if not chosen:
        chosen = [r for r in with_value if r.routes is None]
    if not chosen:
        return None
    values = {r.name: r.scores[scale] for r in chosen}
    best = max(values.values())
    conflict = None
    if len(set(values.values())) > 1:
        conflict = ", ".join(f"{name} {value}" for name, value in sorted(values.items()))
    return _Rated(best, tuple(sorted(values)), conflict, route_unknown)


class AnticholinergicCheck:
    """ACB total and per-substance scores; the other published scales side by side."""

    def __init__(self, kb: KnowledgeBase) -> None:
        by_substance: dict[int, list[_Row]] = {}
        for entry in kb.raw.get("acb", ()):
            if not entry.get("substances"):
                continue  # unmapped rows (supplements, categories) cannot meet a prescription
            routes, negated = _parse_route(entry.get("route"))
            row = _Row(entry["name"], routes, negated, dict(entry["scores"]))
            for substance_id in entry["substances"]:
                by_substance.setdefault(substance_id, []).append(row)
        if not by_substance:
            raise KnowledgeBaseCorrupt("the knowledge base has no ACB table (tables.json 'acb')")
        self._rows = {sid: tuple(rows) for sid, rows in by_substance.items()}
        # A rating depends on the substance, the route and the scale only: computed once each.
        self._rated: dict[tuple[int, str | None, str], _Rated | None] = {}
        self._notes: dict[tuple[int, str | None], str] = {}
        self._basis: dict[tuple[int, str | None], tuple[_Rated | None, str]] = {}
        self._other_values: dict[tuple[int, str | None], tuple[int | None, ...]] = {}
        self._alerts = AlertMemo()

    def _rate(self, substance_id: int, route: str | None, scale: str) -> _Rated | None:
        key = (substance_id, route, scale)
        try:
            return self._rated[key]
        except KeyError:
            rated = self._rated[key] = _rate(self._rows.get(substance_id, ()), route, scale)
            return rated

    def _acb(self, exposure: Exposure) -> tuple[_Rated | None, str | None]:
        primary = self._rate(exposure.substance_id, exposure.route, PRIMARY)
        if primary is not None:
            return primary, "Boustani 2008"
        fallback = self._rate(exposure.substance_id, exposure.route, FALLBACK)
        if fallback is not None:
            return fallback, "ACBcalc (Boustani 2008 silent)"
        return None, None

    def _acb_basis(self, exposure: Exposure) -> tuple[_Rated | None, str]:
        """The ACB rating of an exposure and where it comes from, once per (substance, route)."""
        key = (exposure.substance_id, exposure.route)
        found = self._basis.get(key)
        if found is None:
            rated, how = self._acb(exposure)
            text = "" if rated is None else f"{how}: {', '.join(rated.rows)}{self._route_note(exposure)}"
            found = self._basis[key] = (rated, text)
        return found

    def _route_note(self, exposure: Exposure) -> str:
        """Other scales' rows written for this very route, to be shown beside a route-blind ACB value."""
        key = (exposure.substance_id, exposure.route)
        note = self._notes.get(key)
        if note is None:
            note = self._notes[key] = self._route_note_of(exposure)
        return note

    def _route_note_of(self, exposure: Exposure) -> str:
        notes = [
            f"{row.name} {scale} {value}"
            for row in self._rows.get(exposure.substance_id, ())
            if row.routes is not None and row.applies(exposure.route)
            for scale, value in sorted(row.scores.items())
            if scale in OTHER_SCALES or scale == PRIMARY
        ]
        if not notes:
            return ""
        return f"; the ACB value does not distinguish routes, route-specific rows: {', '.join(notes)}"

    def run(self, ctx: CheckContext) -> CheckResult:
        missing: list[str] = []
        scores: dict[str, int] = {}
        basis: dict[str, str] = {}
        conflicts: dict[str, str] = {}
        lines: dict[str, set[int]] = {}
        atcs: dict[str, str | None] = {}  # of the first exposure of each substance
        not_rated: dict[str, None] = {}
        for exposure in ctx.exposures:
            rated, basis_text = self._acb_basis(exposure)
            name = exposure.name
            if rated is None:
                not_rated[name] = None
                continue
            if rated.route_unknown:
                missing.append(f"line {exposure.line} ({name}): route")
            if name not in scores or rated.value > scores[name]:
                scores[name] = rated.value
                basis[name] = basis_text
                if rated.conflict:
                    conflicts[name] = f"rows disagree ({rated.conflict}); highest kept"
            lines.setdefault(name, set()).add(exposure.line)
            if name not in atcs:
                atcs[name] = exposure.atc[0] if exposure.atc else None
        for name in scores:
            not_rated.pop(name, None)
        if ctx.unresolved_lines:
            listed = ", ".join(str(i) for i in ctx.unresolved_lines)
            missing.append(f"unresolved line(s) {listed}: anticholinergic score unknown")
        total = sum(scores.values())
        result: dict[str, object] = {
            "scale": SCALE,
            "total": total,
            "by_substance": dict(sorted(scores.items())),
            "basis": dict(sorted(basis.items())),
            "not_rated": sorted(not_rated),
            "complete": not ctx.unresolved_lines and not missing,
            "threshold": ALERT_THRESHOLD,
            "source": SOURCE,
            "edition": EDITION,
            "other_scales": self._other_scales(ctx),
        }
        if conflicts:
            result["conflicts"] = dict(sorted(conflicts.items()))
        alerts: tuple[Alert, ...] = ()
        if total >= ALERT_THRESHOLD:
            alerts = (self._alert(total, scores, lines, atcs),)
        return CheckResult(
            alerts=alerts,
            scores={"anticholinergic": result},
            missing_inputs=tuple(dict.fromkeys(missing)),
        )

    def _other_scales(self, ctx: CheckContext) -> dict[str, object]:
        by_scale: list[dict[str, int]] = [{} for _ in OTHER_SCALES]
        for exposure in ctx.exposures:
            key = (exposure.substance_id, exposure.route)
            values = self._other_values.get(key)
            if values is None:
                rated = (self._rate(*key, scale) for scale in OTHER_SCALES)
                values = self._other_values[key] = tuple(None if r is None else r.value for r in rated)
            for by_name, value in zip(by_scale, values, strict=True):
                if value is not None:
                    by_name[exposure.name] = max(value, by_name.get(exposure.name, 0))
        return {
            scale: {"total": sum(by_name.values()), "by_substance": dict(sorted(by_name.items()))}
            for scale, by_name in zip(OTHER_SCALES, by_scale, strict=True)
        }

    def _alert(
        self,
        total: int,
        scores: Mapping[str, int],
        lines: Mapping[str, set[int]],
        atcs: Mapping[str, str | None],
    ) -> Alert:
        contributing = sorted(
            (name for name, value in scores.items() if value > 0), key=lambda n: (-scores[n], n)
        )
        # The alert reads, of each contributing substance, its score and ATC code (not its lines).
        key = (total, tuple((name, scores[name], atcs[name]) for name in contributing))
        at = tuple(sorted({line for name in contributing for line in lines[name]}))
        return self._alerts.get(key, at, partial(self._build_alert, total, key[1], at))

    @staticmethod
    def _build_alert(
        total: int, contributing: tuple[tuple[str, int, str | None], ...], lines: tuple[int, ...]
    ) -> Alert:
        detail = ", ".join(f"{name} {score}" for name, score, _ in contributing)
        return Alert(
            type="anticholinergic",
            severity=ALERT_SEVERITY,
            substances=tuple(SubstanceRef(name=name, atc=atc) for name, _, atc in contributing),
            lines=lines,
            source=SOURCE,
            edition=EDITION,
            rule_id=RULE_ID,
            message=f"Charge anticholinergique élevée (échelle ACB) : total {total} ({detail})",
            recommendation=(
                "Réévaluer la nécessité des médicaments à effet anticholinergique et préférer, quand "
                "elle existe, une alternative sans cet effet."
            ),
            why=(
                f"ACB total {total} >= {ALERT_THRESHOLD} (threshold of the ACB scale notes); "
                f"severity '{ALERT_SEVERITY}' is Iatro's display choice (no source grades higher totals)"
            ),
        )
