"""Substance identity across BDPM, WHO ATC and the ANSM index.

A KB substance is an active moiety, keyed by its folded French name. It is born from the BDPM
compositions (the FT row when the composition gives one, else the SA row with its salt stripped),
gets its ATC codes from the products that carry one (CIS_MITM) or from its English INN in the WHO
index, and is linked to the ANSM index entries whose rules apply to it. Every link records how it
was made, so that ``kb stats`` can say how much each rule contributed.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from iatro.kb.strength import parse_dosage
from iatro.text import fold
from knowledge_base.builder.atc import AtcIndex
from knowledge_base.builder.bdpm import Bdpm, CompositionRow, Product
from knowledge_base.builder.naming import english_candidates, moiety_name


@dataclass
class Substance:
    key: str
    name: str
    origin: str  # bdpm | ansm | who
    bdpm_codes: set[str] = field(default_factory=set)
    synonyms: set[str] = field(default_factory=set)  # folded names that mean this substance
    atc_votes: Counter[str] = field(default_factory=Counter)  # ATC code -> single-substance products
    atc_who: list[str] = field(default_factory=list)  # codes found through the English INN
    name_en: str | None = None
    ansm: dict[str, str] = field(default_factory=dict)  # ANSM index name -> how it was linked
    homeopathic: bool = False

    @property
    def atc(self) -> list[str]:
        voted = [code for code, _ in sorted(self.atc_votes.items(), key=lambda kv: (-kv[1], kv[0]))]
        return voted or list(self.atc_who)


@dataclass(frozen=True)
class Component:
    substance: str  # substance key
    dosage: str  # as written by BDPM ("5 mg", "1 000 UI")
    reference: str  # "un comprimé", "100 ml de solution"
    source: str  # composition file, or how the composition was derived
    # mg of the active moiety per reference unit. From the FT row when BDPM gives one; for a salt
    # given alone (SA row only), the salt's mass times the moiety/salt ratio BDPM states for the same
    # salt in another product (850 mg metformin hydrochloride = 662.9 mg metformin base).
    mg: float | None = None


@dataclass
class SubstanceTable:
    substances: dict[str, Substance]
    components: dict[str, list[Component]]  # cis -> components
    product_atc: dict[str, tuple[str, str]]  # cis -> (ATC level 5, basis)


def _pick_row(rows: list[CompositionRow]) -> CompositionRow:
    # The FT (fraction thérapeutique) names the moiety the ANSM and ATC speak of.
    ft = [r for r in rows if r.nature == "FT"]
    return ft[0] if ft else rows[0]


def _substance_for(table: dict[str, Substance], display: str, origin: str) -> Substance:
    key = fold(display)
    sub = table.get(key)
    if sub is None:
        sub = table[key] = Substance(key=key, name=display, origin=origin)
        sub.synonyms.add(key)
    return sub


def _salt_ratios(bdpm: Bdpm) -> dict[str, float]:
    """Moiety/salt mass ratio per BDPM SA substance code, from groups that give both SA and FT rows."""
    seen: dict[str, set[float]] = defaultdict(set)
    for rows in bdpm.compositions.values():
        by_link: dict[tuple[str, str], list[CompositionRow]] = defaultdict(list)
        for row in rows:
            by_link[(row.element, row.link)].append(row)
        for group in by_link.values():
            sa = [r for r in group if r.nature == "SA"]
            ft = [r for r in group if r.nature == "FT"]
            if len(sa) == 1 and len(ft) == 1:
                sa_mg, ft_mg = _mg(sa[0].dosage), _mg(ft[0].dosage)
                if sa_mg and ft_mg and 0 < ft_mg <= sa_mg:
                    seen[sa[0].code].add(round(ft_mg / sa_mg, 3))
    # A salt whose products disagree (rounding in BDPM, or different hydrates under one code) keeps
    # no ratio: its salt-only doses then stay unconverted rather than converted wrongly.
    return {code: next(iter(r)) for code, r in seen.items() if len(r) == 1 or max(r) - min(r) <= 0.01}


def _mg(dosage: str) -> float | None:
    strength = parse_dosage(dosage) if dosage else None
    return strength.mg if strength else None


def _components_from_bdpm(bdpm: Bdpm, table: dict[str, Substance]) -> dict[str, list[Component]]:
    ratios = _salt_ratios(bdpm)
    components: dict[str, list[Component]] = {}
    for cis, rows in bdpm.compositions.items():
        by_link: dict[tuple[str, str], list[CompositionRow]] = defaultdict(list)
        for row in rows:
            by_link[(row.element, row.link)].append(row)
        seen: dict[str, Component] = {}
        for group in by_link.values():
            row = _pick_row(group)
            sub = _substance_for(table, moiety_name(row.name), "bdpm")
            sub.bdpm_codes.update(r.code for r in group)
            sub.synonyms.update(fold(r.name) for r in group)
            sub.homeopathic |= "homéopathiques" in row.name.lower()
            if sub.key not in seen:
                source = bdpm.composition_edition[cis]
                mg = _mg(row.dosage)
                if row.nature == "SA" and mg is not None and row.code in ratios:
                    mg = round(mg * ratios[row.code], 4)
                    source += f"+moiety_ratio:{ratios[row.code]}"
                seen[sub.key] = Component(sub.key, row.dosage, row.reference, source, mg)
        components[cis] = list(seen.values())
    return components


_STRENGTH = re.compile(r"\s\d")


def _derive_missing(bdpm: Bdpm, table: dict[str, Substance], components: dict[str, list[Component]]) -> None:
    """Compositions for products newer than the compositions file.

    First from a generic-group sibling with the same strength text (same group = same active
    substances by definition of the BDPM generic group), then from the name when every part of a
    "/"-separated generic name is a known substance. Anything else stays without composition and
    is counted as unresolved by ``kb stats``.
    """
    by_group: dict[str, list[str]] = defaultdict(list)
    for cis, product in bdpm.products.items():
        if product.generic_group and cis in components:
            by_group[product.generic_group].append(cis)
    for cis, product in bdpm.products.items():
        if cis in components:
            continue
        siblings = by_group.get(product.generic_group or "", [])
        if siblings:
            components[cis] = [
                Component(c.substance, c.dosage, c.reference, "derived:generic_group", c.mg)
                for c in components[siblings[0]]
            ]
            continue
        head = product.name.split(",")[0]
        cut = _STRENGTH.search(head)
        stem = fold(head[: cut.start()] if cut else head)
        parts = [p.strip() for p in stem.split("/")]
        found: list[str] = []
        for i, part in enumerate(parts):
            words = part.split()
            # The laboratory name follows the substance only in the last part of the stem.
            spans = range(len(words), 0, -1) if i == len(parts) - 1 else [len(words)]
            match = next((" ".join(words[:n]) for n in spans if " ".join(words[:n]) in table), None)
            if match is None:
                break
            found.append(match)
        if found and len(found) == len(parts):
            components[cis] = [Component(key, "", "", "derived:name") for key in dict.fromkeys(found)]


def _route_groups(product: Product, route_atc: dict[str, list[str]]) -> list[str]:
    groups: list[str] = []
    for route in product.routes:
        groups.extend(route_atc.get(fold(route).replace(" ", ""), []))
    return groups


# BDPM route (folded) -> the WHO DDD administration route it corresponds to.
_DDD_ROUTE = {
    "orale": "O", "sublinguale": "SL", "intraveineuse": "P", "intramusculaire": "P", "sous-cutanee": "P",
    "rectale": "R", "vaginale": "V", "nasale": "N", "transdermique": "TD", "inhalee": "Inhal",
}  # fmt: skip


def choose_atc(
    codes: list[str],
    product: Product | None,
    route_atc: dict[str, list[str]],
    local_groups: list[str],
    ddd: dict[str, list[tuple[float, str, str]]] | None = None,
) -> str | None:
    """The level-5 code that fits the product's route among a substance's codes.

    In order: a local route's ATC groups, in the table's order (a cream is D before C05); then a
    code whose WHO DDD is defined for the product's route (oral naproxen is M01AE02, not the
    vaginal G02CC02; oral celecoxib M01AH01, not L01XX33); then a systemic code; then any.
    """
    if not codes:
        return None
    if product is not None:
        wanted = _route_groups(product, route_atc)
        for group in wanted:
            fit = [c for c in codes if c.startswith(group)]
            if fit:
                return fit[0]
        ddd_routes = {_DDD_ROUTE.get(fold(r).replace(" ", "-"), "") for r in product.routes} - {""}
        if ddd and ddd_routes:
            by_ddd = [
                c for c in codes if any(route.startswith(tuple(ddd_routes)) for _, _, route in ddd.get(c, ()))
            ]
            if by_ddd:
                return by_ddd[0]
    systemic = [c for c in codes if not c.startswith(tuple(local_groups))]
    return (systemic or codes)[0]


def build_substances(
    bdpm: Bdpm,
    atc: AtcIndex,
    route_atc: dict[str, list[str]],
    local_groups: list[str],
    curated_atc: dict[str, list[str]],
) -> SubstanceTable:
    table: dict[str, Substance] = {}
    components = _components_from_bdpm(bdpm, table)
    _derive_missing(bdpm, table, components)

    # ATC votes: a single-substance product's MITM code is that substance's code for that route.
    for cis, product in bdpm.products.items():
        comps = components.get(cis, [])
        if product.atc_mitm and len(product.atc_mitm) == 7 and len(comps) == 1:
            table[comps[0].substance].atc_votes[product.atc_mitm] += 1
    for sub in table.values():
        if sub.key in curated_atc:
            sub.atc_who = list(curated_atc[sub.key])
            sub.name_en = fold(atc.names.get(sub.atc_who[0], "")) or None
            continue
        for candidate in english_candidates(sub.name):
            codes = atc.level5_for(candidate)
            if codes:
                sub.atc_who = list(codes)
                sub.name_en = candidate
                break
        if sub.name_en is None and sub.atc_votes:
            top = sub.atc[0]
            sub.name_en = fold(atc.names.get(top, "")) or None

    product_atc: dict[str, tuple[str, str]] = {}
    for cis, product in bdpm.products.items():
        comps = components.get(cis, [])
        if product.atc_mitm and len(product.atc_mitm) == 7:
            product_atc[cis] = (product.atc_mitm, "bdpm:CIS_MITM")
        elif len(comps) == 1:
            sub = table[comps[0].substance]
            # Codes seen on MITM products of the same substance are preferred to name matches
            # because they carry the French reading of which ATC the product belongs to.
            code = choose_atc(
                list(dict.fromkeys(sub.atc + sub.atc_who)), product, route_atc, local_groups, atc.ddd
            )
            if code:
                basis = "substance:CIS_MITM" if sub.atc_votes else "substance:who_name"
                product_atc[cis] = (code, basis)
    return SubstanceTable(table, components, product_atc)
