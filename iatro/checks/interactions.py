"""ANSM drug-drug interactions: detection through substances and classes, qualification, one alert per pair.

Built once per KB (:class:`InteractionIndex`): for every KB substance, the rules it meets and on
which side, through its ANSM index entries and their classes. Checking a prescription walks those
memberships only, so the cost grows with the prescription, not with the thesaurus.

Detection is symmetric by construction: a rule is an unordered pair, each exposure is bucketed
by the side it meets, and the pair key is the sorted pair of substance ids. Two exposures of the
same substance, or two substances of the same line (a fixed combination), are never an
interaction. Each rule's level is qualified for this patient (``iatro.checks.qualify``); the
pair's alert carries the worst qualified level and every rule that matched.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, NamedTuple

from iatro.checks.context import CheckContext, Exposure
from iatro.checks.qualify import QualifiedLevel, qualify
from iatro.errors import KnowledgeBaseCorrupt
from iatro.kb.qualifications import Qualification
from iatro.kb.store import KnowledgeBase
from iatro.kb.thesaurus import LEVEL_LABEL, LEVEL_RANK, InteractionRule, ThesaurusEdition, name_key
from iatro.kb.yaml_tables import read_yaml
from iatro.model.prescription import Patient
from iatro.model.report import Alert, SubstanceRef, replaced

SOURCE = "ANSM thésaurus des interactions médicamenteuses"
_NOBODY = Exposure(line=-1, substance_id=-1, name="", atc=())
# Bounds the memo tables of the fast path (a long-running service sees ever new dose combinations).
_CACHE_LIMIT = 200_000
_PAIR_ALERTS = 50_000  # alerts remembered per exposure pair (each holds an Alert: ~1-2 kB)

# (rule index, x is the side-a exposure, rank of x's entry, rank of y's entry, via of a, via of b)
_Proto = tuple[int, bool, int, int, str, str]
# (minus the level's rank, substance names): how alerts sort, before their lines.
_Order = tuple[int, tuple[str, ...]]
# What ``qualify`` reads of an exposure, and of the patient.
_DoseKey = tuple[int, str, tuple[str, ...], str | None, float | None, float | None, float | None]
_Facts = tuple[tuple[str, ...], str | None, int | None, float | None, float | None]


def _dose_key(e: Exposure) -> _DoseKey:
    return (e.substance_id, e.name, e.aliases, e.route, e.mg_per_intake, e.mg_per_day, e.intakes_per_day)


def _patient_facts(patient: Patient) -> _Facts:
    return (patient.conditions, patient.sex, patient.age, patient.egfr_ml_min, patient.labs.potassium_mmol_l)


def _order(item: tuple[tuple[int, int, int, int, int], Exposure, Exposure, str, str]) -> tuple[int, ...]:
    return item[0]


def _first(item: tuple[tuple[int, int, int, int, int], object]) -> tuple[int, ...]:
    return item[0]


class _Excluded:
    """A pair whose every finding the thesaurus text excludes (remembered as such)."""


_EXCLUDED = _Excluded()
_PairKey = tuple[int, int, tuple[str, ...], tuple[str, ...], bool, tuple[QualifiedLevel, ...] | None]


class Finding(NamedTuple):
    """One rule met by one pair of exposures (a named tuple: built by the dozen per prescription)."""

    rule: InteractionRule
    level: QualifiedLevel
    first: Exposure  # the exposure matched to rule.a
    second: Exposure  # the exposure matched to rule.b
    via_first: str
    via_second: str


class InteractionIndex:
    """Rule memberships of every KB substance for one thesaurus edition."""

    def __init__(self, kb: KnowledgeBase, edition: str | None = None) -> None:
        thesaurus: ThesaurusEdition = kb.thesaurus(edition)
        self.kb = kb
        self.edition = thesaurus.edition
        self.rules = thesaurus.rules
        active = kb.raw.get("ansm_active_edition")
        # Curation is written against one edition's text: it never qualifies another edition's rules.
        self.qualifications: dict[str, Qualification] = kb.qualifications() if self.edition == active else {}
        by_key: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for index, rule in enumerate(self.rules):
            by_key[rule.a_key].append((index, 0))
            by_key[rule.b_key].append((index, 1))
        restricted = _class_conditions(kb)
        # Conditional memberships: (rule, side, name, routes) met only by an exposure of those routes.
        self.conditional: dict[int, tuple[tuple[int, int, str, frozenset[str]], ...]] = {}
        memberships: list[tuple[tuple[int, int, str], ...]] = []
        for substance in kb.substances:
            names: dict[str, None] = {}
            for ansm_name in substance.ansm:
                for name in thesaurus.names_of(ansm_name) or (ansm_name,):
                    names[name] = None
            found: dict[tuple[int, int], str] = {}
            conditional: list[tuple[int, int, str, frozenset[str]]] = []
            limits = [r for keys, r in restricted if not keys.isdisjoint(map(name_key, substance.ansm))]
            for name in names:
                routes = next((rs for classes, rs in limits for c in classes if c == name_key(name)), None)
                for rule_side in by_key.get(name_key(name), ()):
                    if routes is not None:
                        conditional.append((*rule_side, name, routes))
                    else:
                        found.setdefault(rule_side, name)
            memberships.append(tuple((r, side, name) for (r, side), name in sorted(found.items())))
            if conditional:
                self.conditional[substance.id] = tuple(sorted(conditional))
        self.memberships = tuple(memberships)
        # Most rules carry no qualification: their level is the same for every pair, computed once.
        self._unqualified = tuple(qualify(rule, None, _NOBODY, _NOBODY, Patient()) for rule in self.rules)
        # Caches of the fast path; every entry is a pure function of its key (see ``findings``).
        self._entries: dict[tuple[int, str | None, tuple[str, ...]], tuple[tuple[int, int, str], ...]] = {}
        self._entry_ids: dict[tuple[int, str | None, tuple[str, ...]], int] = {}
        self._pair_protos: dict[int, dict[int, tuple[_Proto, ...]]] = {}
        self._proto_count = 0
        self._qualified_cache: dict[tuple[int, _DoseKey, _DoseKey, _Facts], QualifiedLevel] = {}
        self._qualification_of = tuple(self.qualifications.get(rule.rule_id) for rule in self.rules)
        self._single_alerts: dict[tuple[object, ...], tuple[Alert, _Order]] = {}
        # (entry of x, entry of y, their ATC codes, x on the earlier line, the candidate rules' levels)
        # -> the pair's alert (see ``_by_exposure_pair``).
        self._pair_alerts: dict[_PairKey, tuple[Alert, _Order] | _Excluded] = {}
        self._alerts: dict[tuple[tuple[int, int], tuple[tuple[object, ...], ...]], tuple[Alert, _Order]] = {}
        self._refs: dict[tuple[int, str | None], SubstanceRef] = {}
        self._mechanisms: dict[str, str] = {}
        self._source = f"{SOURCE}, {self.edition}"
        # Sides that name a route ("médicaments administrés par voie orale"): met through the route.
        self.route_sides: dict[str, list[tuple[int, int, str, frozenset[str] | None]]] = defaultdict(list)
        for side_name, side_routes, only in _route_sides(kb):
            for rule_index, side in by_key.get(name_key(side_name), ()):
                for route in side_routes:
                    self.route_sides[route].append((rule_index, side, side_name, only))

    def entries(self, exposure: Exposure) -> tuple[tuple[int, int, str], ...]:
        """The (rule, side, via) an exposure meets, in the order detection lists them.

        Memberships through the substance's index names first, then the route-restricted ones (an
        unknown route keeps them: the worse reading), then the sides named by a route. Depends on
        the substance, its route and its index names only, so it is computed once per such triple.
        """
        key = (exposure.substance_id, exposure.route, exposure.aliases)
        found = self._entries.get(key)
        if found is None:
            out = list(self.memberships[exposure.substance_id])
            for rule_index, side, name, routes in self.conditional.get(exposure.substance_id, ()):
                if exposure.route is None or exposure.route in routes:
                    out.append((rule_index, side, name))
            if exposure.route is not None:
                for rule_index, side, name, only in self.route_sides.get(exposure.route, ()):
                    if only is None or not only.isdisjoint(map(name_key, exposure.aliases)):
                        out.append((rule_index, side, name))
            found = self._entries[key] = tuple(out)
        return found

    def _protos(self, x: int, y: int, ex: Exposure, ey: Exposure) -> tuple[_Proto, ...]:
        """Candidate findings between two exposures (x listed before y), in detection order.

        For one rule, detection pairs every side-a entry with every side-b entry in the order of the
        prescription: x's side-a entries with y's side-b ones, then y's side-a with x's side-b.
        """
        if self._proto_count >= _CACHE_LIMIT:
            self._pair_protos.clear()
            self._proto_count = 0
        row = self._pair_protos.setdefault(x, {})
        found = row.get(y)
        if found is not None:
            return found
        sides_x: dict[tuple[int, int], list[str]] = defaultdict(list)
        sides_y: dict[tuple[int, int], list[str]] = defaultdict(list)
        for rule_index, side, name in self.entries(ex):
            sides_x[rule_index, side].append(name)
        for rule_index, side, name in self.entries(ey):
            sides_y[rule_index, side].append(name)
        out: list[_Proto] = []
        for rule_index in sorted({r for r, _ in sides_x} & {r for r, _ in sides_y}):
            for k1, via_a in enumerate(sides_x.get((rule_index, 0), ())):
                for k2, via_b in enumerate(sides_y.get((rule_index, 1), ())):
                    out.append((rule_index, True, k1, k2, via_a, via_b))
            for k1, via_a in enumerate(sides_y.get((rule_index, 0), ())):
                for k2, via_b in enumerate(sides_x.get((rule_index, 1), ())):
                    out.append((rule_index, False, k1, k2, via_a, via_b))
        found = row[y] = tuple(out)
        self._proto_count += 1
        return found

    def _entry_key(self, exposure: Exposure) -> int:
        key = (exposure.substance_id, exposure.route, exposure.aliases)
        found = self._entry_ids.get(key)
        if found is None:
            found = self._entry_ids[key] = len(self._entry_ids)
        return found

    def _qualified(
        self,
        rule_index: int,
        first: Exposure,
        second: Exposure,
        patient: Patient,
        facts: _Facts,
        doses: tuple[_DoseKey, _DoseKey] | None = None,
    ) -> QualifiedLevel:
        """``qualify`` memoised on what it reads: the rule, both exposures' doses and route, the patient."""
        qualification = self._qualification_of[rule_index]
        if qualification is None:
            return self._unqualified[rule_index]
        key = (rule_index, *(doses or (_dose_key(first), _dose_key(second))), facts)
        found = self._qualified_cache.get(key)
        if found is None:
            if len(self._qualified_cache) >= _CACHE_LIMIT:
                self._qualified_cache.clear()
            found = qualify(self.rules[rule_index], qualification, first, second, patient)
            self._qualified_cache[key] = found
        return found

    def findings(self, ctx: CheckContext, line: int | None = None) -> dict[tuple[int, int], list[Finding]]:
        """Qualified findings grouped by unordered substance-id pair (only pairs with ``line`` if given).

        Gives exactly what the first loop, kept in ``tests/unit/interactions_reference.py``, gives (same
        findings, same order), from pair candidates computed once per pair of (substance, route).
        """
        active = [(i, e, self._entry_key(e)) for i, e in enumerate(ctx.exposures) if self.entries(e)]
        generated: list[tuple[tuple[int, int, int, int, int], Exposure, Exposure, str, str]] = []
        protos = self._pair_protos
        for n, (ix, ex, kx) in enumerate(active):
            row = protos.get(kx)
            for iy, ey, ky in active[n + 1 :]:
                if ex.substance_id == ey.substance_id or ex.line == ey.line:
                    continue
                if line is not None and line != ex.line and line != ey.line:
                    continue
                candidates = row.get(ky) if row is not None else None
                if candidates is None:
                    candidates = self._protos(kx, ky, ex, ey)
                    row = protos.get(kx)
                for rule_index, x_first, k1, k2, via_a, via_b in candidates:
                    if x_first:
                        generated.append(((rule_index, ix, k1, iy, k2), ex, ey, via_a, via_b))
                    else:
                        generated.append(((rule_index, iy, k1, ix, k2), ey, ex, via_a, via_b))
        pairs: dict[tuple[int, int], list[Finding]] = defaultdict(list)
        if not generated:
            return pairs
        generated.sort(key=_order)
        facts = _patient_facts(ctx.patient)
        rules, qualifications, unqualified = self.rules, self._qualification_of, self._unqualified
        doses: dict[int, _DoseKey] = {}
        for (rule_index, first_index, _, second_index, _), first, second, via_a, via_b in generated:
            if qualifications[rule_index] is None:
                level = unqualified[rule_index]
            else:
                dose_first = doses.get(first_index) or doses.setdefault(first_index, _dose_key(first))
                dose_second = doses.get(second_index) or doses.setdefault(second_index, _dose_key(second))
                level = self._qualified(
                    rule_index, first, second, ctx.patient, facts, (dose_first, dose_second)
                )
                if level.level is None:
                    continue  # the thesaurus text excludes this combination from the rule
            a, b = first.substance_id, second.substance_id
            pairs[(a, b) if a < b else (b, a)].append(
                Finding(rules[rule_index], level, first, second, via_a, via_b)
            )
        return pairs

    def check(self, ctx: CheckContext, line: int | None = None) -> list[Alert]:
        """Alerts of the prescription; with ``line``, only those involving that line (re-checks)."""
        ordered = None if line is not None else self._by_exposure_pair(ctx)
        if ordered is None:
            ordered = self._by_substance_pair(ctx, line)
        # Worst level first, then substance names, then lines (the order key is kept with the alert).
        ordered.sort(key=lambda item: (*item[1], item[0].lines))
        return [alert for alert, _ in ordered]

    def _by_substance_pair(self, ctx: CheckContext, line: int | None = None) -> list[tuple[Alert, _Order]]:
        """Each substance pair's alert, from ``findings``, in its order."""
        return [self._alert(key, found) for key, found in self.findings(ctx, line).items()]

    def _by_exposure_pair(self, ctx: CheckContext) -> list[tuple[Alert, _Order]] | None:
        """What ``check`` builds from ``findings``, pair by pair, when each substance pair comes from one
        pair of exposures (no substance on two exposures); None otherwise (``findings`` then).

        A pair's findings are its candidates (``_protos``, already in ``findings``' order), qualified;
        the alerts come in the order ``findings`` would have grouped them (by each pair's first
        finding), which the final sort keeps for alerts it ranks equal. A pair's alert depends on its
        two entries, their ATC codes, which comes first, and the level each candidate rule gets: it is
        remembered on those (``_pair_alerts``), and copied onto this prescription's lines.
        """
        active = [(i, e, self._entry_key(e)) for i, e in enumerate(ctx.exposures) if self.entries(e)]
        if len({e.substance_id for _, e, _ in active}) < len(active):
            return None
        out: list[tuple[tuple[int, int, int, int, int], tuple[Alert, _Order]]] = []
        protos, memo = self._pair_protos, self._pair_alerts
        rules, qualifications, unqualified = self.rules, self._qualification_of, self._unqualified
        facts: _Facts | None = None
        for n, (ix, ex, kx) in enumerate(active):
            row = protos.get(kx)
            for iy, ey, ky in active[n + 1 :]:
                if ex.line == ey.line:
                    continue
                candidates = row.get(ky) if row is not None else None
                if candidates is None:
                    candidates = self._protos(kx, ky, ex, ey)
                    row = protos.get(kx)
                if not candidates:
                    continue
                levels: tuple[QualifiedLevel, ...] | None = None  # None: every rule unqualified
                if any(qualifications[c[0]] is not None for c in candidates):
                    facts = facts or _patient_facts(ctx.patient)
                    levels = tuple(
                        unqualified[r]
                        if qualifications[r] is None
                        else self._qualified(r, *((ex, ey) if x_first else (ey, ex)), ctx.patient, facts)
                        for r, x_first, _, _, _, _ in candidates
                    )
                key = (kx, ky, ex.atc, ey.atc, ex.line < ey.line, levels)
                remembered = memo.get(key)
                if remembered is None:
                    found = [
                        Finding(rules[r], level, *((ex, ey) if x_first else (ey, ex)), via_a, via_b)
                        for (r, x_first, _, _, via_a, via_b), level in zip(
                            candidates, levels or [unqualified[c[0]] for c in candidates], strict=True
                        )
                        # The thesaurus text may exclude the combination from a qualified rule.
                        if qualifications[r] is None or level.level is not None
                    ]
                    a, b = ex.substance_id, ey.substance_id
                    remembered = self._alert((a, b) if a < b else (b, a), found) if found else _EXCLUDED
                    if len(memo) >= _PAIR_ALERTS:
                        memo.clear()
                    memo[key] = remembered
                if isinstance(remembered, _Excluded):
                    continue
                # The pair's place among the others: its first finding's in ``findings``' sort.
                k = 0
                while (
                    levels is not None
                    and qualifications[candidates[k][0]] is not None
                    and levels[k].level is None
                ):
                    k += 1  # excluded: the first finding is a later candidate's
                rule_index, x_first, k1, k2, _, _ = candidates[k]
                first_key = (rule_index, *((ix, k1, iy) if x_first else (iy, k1, ix)), k2)
                alert, order = remembered
                lines = (ex.line, ey.line) if ex.line < ey.line else (ey.line, ex.line)
                out.append(
                    (first_key, (alert if alert.lines == lines else replaced(alert, lines=lines), order))
                )
        out.sort(key=_first)
        return [built for _, built in out]

    def _alert(self, key: tuple[int, int], found: list[Finding]) -> tuple[Alert, _Order]:
        """The pair's alert and its order key; a pure function of what it reads, built once per pair.

        A pair met through one finding (the common case) reads its two lines only for ``lines``: the
        alert is remembered without them and copied with this prescription's lines.
        """
        if len(found) == 1:
            f = found[0]
            single: tuple[object, ...] = (key, f.rule.rule_id, f.level, f.first.substance_id)
            single += (f.first.atc, f.second.atc, f.via_first, f.via_second)
            lines = (
                (f.first.line, f.second.line)
                if f.first.line < f.second.line
                else (f.second.line, f.first.line)
            )
            template = self._single_alerts.get(single)
            if template is None:
                if len(self._single_alerts) >= _CACHE_LIMIT:
                    self._single_alerts.clear()
                template = self._single_alerts[single] = _ordered(self._build_alert(key, found))
            alert, order = template
            return (alert if alert.lines == lines else replaced(alert, lines=lines)), order
        memo_key = (
            key,
            tuple(
                (
                    *(f.rule.rule_id, f.level, f.first.substance_id, f.first.line, f.second.line),
                    *(f.first.atc, f.second.atc, f.via_first, f.via_second),
                )
                for f in found
            ),
        )
        built = self._alerts.get(memo_key)
        if built is None:
            if len(self._alerts) >= _CACHE_LIMIT:
                self._alerts.clear()
            built = self._alerts[memo_key] = _ordered(self._build_alert(key, found))
        return built

    def _build_alert(self, key: tuple[int, int], found: list[Finding]) -> Alert:
        if len(found) > 1:
            found = sorted(found, key=lambda f: (-_rank(f), f.rule.rule_id, f.first.line, f.second.line))
        main = found[0]
        level = main.level.level
        assert level is not None  # excluded findings were dropped in findings()
        substances = tuple(self._substance_ref(sid, _atc(self.kb, sid, found)) for sid in key)
        lines = tuple(sorted({f.first.line for f in found} | {f.second.line for f in found}))
        via = tuple(dict.fromkeys(name for f in found for name in (f.via_first, f.via_second)))
        condition = next((e.condition for e in main.rule.levels if e.level == level), "")
        unresolved = tuple(dict.fromkeys(c for f in found for c in f.level.unresolved_conditions))
        others = [f.rule.rule_id for f in found[1:] if f.rule.rule_id != main.rule.rule_id]
        why = main.level.why + (f"; also {', '.join(dict.fromkeys(others))}" if others else "")
        names = " + ".join(s.name for s in substances)
        message = f"{LEVEL_LABEL[level]} : {names}"
        if main.rule.mechanism:
            # The thesaurus keeps the PDF's line breaks; a message reads as one sentence.
            message += ". " + self._mechanism(main.rule)
        return Alert(
            type="interaction",
            severity=level,
            substances=substances,
            lines=lines,
            source=self._source,
            edition=self.edition,
            rule_id=main.rule.rule_id,
            related_rules=tuple(dict.fromkeys(others)),
            via=via,
            message=message,
            recommendation=condition or None,
            unresolved_conditions=unresolved,
            why=why,
        )

    def _substance_ref(self, substance_id: int, atc: str | None) -> SubstanceRef:
        found = self._refs.get((substance_id, atc))
        if found is None:
            name = self.kb.substances[substance_id].name
            found = self._refs[substance_id, atc] = SubstanceRef(name=name, atc=atc)
        return found

    def _mechanism(self, rule: InteractionRule) -> str:
        found = self._mechanisms.get(rule.rule_id)
        if found is None:
            found = self._mechanisms[rule.rule_id] = " ".join(rule.mechanism.split())
        return found


def _class_conditions(
    kb: KnowledgeBase,
) -> list[tuple[frozenset[str], tuple[frozenset[str], frozenset[str]]]]:
    """(substance keys, (class keys, routes)) from the compiled ansm_class_conditions.yaml."""
    data = _compiled_yaml(kb, "ansm_class_conditions.yaml")
    out = []
    for entry in data.get("conditions", []):
        out.append(
            (
                frozenset(name_key(n) for n in entry["substances"]),
                (frozenset(name_key(c) for c in entry["classes"]), frozenset(entry["routes"])),
            )
        )
    return out


def _route_sides(kb: KnowledgeBase) -> list[tuple[str, list[str], frozenset[str] | None]]:
    data = _compiled_yaml(kb, "ansm_route_sides.yaml")
    return [
        (
            entry["side"],
            list(entry["routes"]),
            frozenset(name_key(n) for n in entry["ansm"]) if entry.get("ansm") else None,
        )
        for entry in data.get("sides", [])
    ]


def _compiled_yaml(kb: KnowledgeBase, name: str) -> dict[str, Any]:
    if kb.directory is None or not (kb.directory / name).exists():
        raise KnowledgeBaseCorrupt(f"{name} is not compiled into this knowledge base: rebuild it")
    loaded = read_yaml((kb.directory / name).read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise KnowledgeBaseCorrupt(f"{name}: expected a mapping")
    return loaded


def _rank(finding: Finding) -> int:
    level = finding.level.level
    return LEVEL_RANK[level] if level is not None else 0


def _atc(kb: KnowledgeBase, substance_id: int, found: list[Finding]) -> str | None:
    for f in found:
        for exposure in (f.first, f.second):
            if exposure.substance_id == substance_id and exposure.atc:
                return exposure.atc[0]
    atc = kb.substances[substance_id].atc
    return atc[0] if atc else None


def _ordered(alert: Alert) -> tuple[Alert, _Order]:
    """An alert with the part of its sort key that does not depend on lines."""
    rank = LEVEL_RANK.get(alert.severity, 0)  # type: ignore[call-overload]
    return alert, (-rank, tuple(s.name for s in alert.substances))
