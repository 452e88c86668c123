"""Prescription lines to products and substances.

A line is resolved in this order, and the report says which step matched (``match``):

1. codes: CIP13, CIP7, CIS (exact; an unknown code is an unresolved line, never a guess);
2. a substance name (``{"substance": …}``): the KB's names and BDPM synonyms, then one-typo fixes;
3. free text, split into name, strength, form and posology:
   a. the name is a product stem ("laroxyl", "amlodipine biogaran") -> that product family;
   b. the name is a substance (a DCI line: "amiodarone 200") -> products of exactly that substance;
   c. the name starts a stem ("levodopa carbidopa" -> "levodopa carbidopa teva");
   d. each unknown word is replaced by its nearest vocabulary words (small edit distance) and
      a-c are tried again.
   Candidates are then narrowed by strength and form. When the survivors differ in substances the
   line is ``ambiguous`` with ranked candidates: the resolver never picks between two substances.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import product as cartesian

from iatro.kb.store import KnowledgeBase, ProductInfo
from iatro.kb.strength import STRENGTH, Strength, parse_strengths
from iatro.model.prescription import LineInput
from iatro.model.report import Candidate, LineReport, Posology, ProductRef, SubstanceRef
from iatro.resolve.index import NameIndex, ProductEntry
from iatro.resolve.posology import daily_mass_mg, parse_posology
from iatro.text import fold, fold_words
from iatro.units import dosing_unit, known_route, normalise_route

# Form words and their abbreviations as written on ordonnances -> a word of the BDPM form.
FORM_WORDS = {
    "cp": "comprime",
    "cpr": "comprime",
    "cpe": "comprime",
    "comp": "comprime",
    "comprime": "comprime",
    "comprimes": "comprime",
    "gel": "gelule",
    "gelule": "gelule",
    "gelules": "gelule",
    "gell": "gelule",
    "sach": "sachet",
    "sachet": "sachet",
    "sachets": "sachet",
    "amp": "ampoule",
    "ampoule": "ampoule",
    "ampoules": "ampoule",
    "inj": "injectable",
    "injectable": "injectable",
    "sol": "solution",
    "solution": "solution",
    "buv": "buvable",
    "buvable": "buvable",
    "susp": "suspension",
    "supp": "suppositoire",
    "suppo": "suppositoire",
    "suppositoire": "suppositoire",
    "collyre": "collyre",
    "creme": "creme",
    "pommade": "pommade",
    "gouttes": "goutte",
    "gtt": "goutte",
    "patch": "transdermique",
    "cps": "comprime",
    "caps": "capsule",
    "capsule": "capsule",
    "pell": "pellicule",
    "pellicule": "pellicule",
    "sec": "secable",
    "secable": "secable",
    "eff": "effervescent",
    "effervescent": "effervescent",
    "orodispersible": "orodispersible",
    "spray": "pulverisation",
    "flacon": "flacon",
    "stylo": "stylo",
    "poudre": "poudre",
    "granules": "granules",
    "dispersible": "dispersible",
    "croquer": "croquer",
    "gastro": "gastro",
    "resistant": "resistant",
    "enrobe": "enrobe",
    "dose": "dose",
}
_SEPARATORS = re.compile(r"^[\s,;:\-–]+")
_STRENGTH_GROUP = re.compile(
    rf"^\s*{STRENGTH.pattern}(?:\s*[/+]\s*{STRENGTH.pattern})*(?:\s*/\s*(?:ml|g|dose|l)\b)?", re.IGNORECASE
)
_TEXT_CACHE_SIZE = 100_000
# A bare count this small before a form word is a posology ("COLCHIMAX 1 cp/j"), not a strength.
_MAX_BARE_COUNT = 4


_LP = {"lp", "l.p.", "l.p", "lp."}


def _drop_lp(words: list[str]) -> tuple[list[str], bool]:
    """Remove "LP", "L.P.", "L P" (libération prolongée) from a name; say whether it was there."""
    out: list[str] = []
    found = False
    i = 0
    while i < len(words):
        word = words[i]
        if word in _LP:
            found = True
        elif word in ("l", "l.") and i + 1 < len(words) and words[i + 1] in ("p", "p."):
            found = True
            i += 1
        else:
            out.append(word)
        i += 1
    return out, found


def starts_strength(token: str) -> bool:
    return token[:1].isdigit()


@dataclass(frozen=True, slots=True)
class ParsedText:
    name: str  # folded words of the drug name
    parts: tuple[str, ...]  # the name split at "/" (combination products)
    strengths: tuple[Strength, ...]
    forms: tuple[str, ...]  # BDPM form words the line mentions
    posology: str | None


def split_line(text: str) -> ParsedText:
    """ "LAROXYL 25 mg cp, 1 le soir" -> name "laroxyl", 25 mg, forms (comprime,), posology "1 le soir"."""
    folded = fold(text)
    tokens = folded.split()
    name_words: list[str] = []
    i = 0
    while i < len(tokens) and not starts_strength(tokens[i]):
        name_words.append(tokens[i])
        i += 1
    forms: list[str] = []
    name_words, prolonged = _drop_lp(name_words)
    if prolonged:
        forms.append("prolongee")
    # Form words written before the strength ("seresta cp 10") are not part of the name.
    while name_words and fold_words(name_words[-1]) in FORM_WORDS and len(name_words) > 1:
        forms.insert(0, FORM_WORDS[fold_words(name_words.pop())])
    rest = " ".join(tokens[i:])
    strengths: tuple[Strength, ...] = ()
    group = _STRENGTH_GROUP.match(rest)
    if group and _is_intake_count(group.group(0), rest[group.end() :]):
        group = None
    if group:
        strengths = tuple(parse_strengths(group.group(0)))
        rest = rest[group.end() :]
    words = rest.replace(",", " , ").split()
    while words and (fold_words(words[0]) in FORM_WORDS or words[0] in {",", "-", "/"} or words[0] in _LP):
        word = words.pop(0)
        if fold_words(word) in FORM_WORDS:
            forms.append(FORM_WORDS[fold_words(word)])
        elif word in _LP:
            forms.append("prolongee")
    joined = " ".join(name_words)
    name = fold_words(joined)
    parts = tuple(p for p in (fold_words(part) for part in joined.split("/")) if p)
    # The posology is cut from the original text so that the parser sees the prescriber's words.
    posology = _original_tail(text, len(words)) if words else None
    return ParsedText(name, parts, strengths, tuple(dict.fromkeys(forms)), posology)


def _is_intake_count(strength_text: str, after: str) -> bool:
    found = parse_strengths(strength_text)
    if len(found) != 1 or found[0].unit is not None or found[0].value > _MAX_BARE_COUNT:
        return False
    following = fold_words(after).split()
    return bool(following) and following[0] in FORM_WORDS


_FORM_OF_UNIT = {
    "comprimé": "comprime",
    "gélule": "gelule",
    "sachet": "sachet",
    "capsule": "capsule",
    "suppositoire": "suppositoire",
    "ampoule": "ampoule",
}


def _forms_of_posology(posology: str | None) -> tuple[str, ...]:
    """ "1 cp le soir" says the product is a tablet: the unit of the posology is a form hint."""
    if not posology:
        return ()
    unit = parse_posology(posology).unit
    if unit is not None and unit in _FORM_OF_UNIT:
        return (_FORM_OF_UNIT[unit],)
    # An unparsed posology still names its unit ("1 cp avant les repas").
    for word in fold_words(posology).split():
        form = FORM_WORDS.get(word)
        if form is not None and form in _FORM_OF_UNIT.values():
            return (form,)
    return ()


def _original_tail(text: str, n_words: int) -> str | None:
    words = text.replace(",", " , ").split()
    tail = " ".join(words[-n_words:]) if n_words else ""
    tail = _SEPARATORS.sub("", tail).replace(" , ", ", ").strip()
    return tail or None


def _strength_matches(line: tuple[Strength, ...], entry: ProductEntry) -> bool:
    if not line:
        return True
    if not entry.strengths:
        return False
    for written, known in zip(line, entry.strengths, strict=False):
        same_unit = written.unit is None or known.unit is None or written.unit == known.unit
        if same_unit and abs(written.value - known.value) < 1e-9:
            continue
        if written.mg is not None and known.mg is not None and abs(written.mg - known.mg) < 1e-9:
            continue
        if written.unit is None and known.mg is not None and abs(written.value - known.mg) < 1e-9:
            continue
        return False
    return len(line) <= len(entry.strengths)


def _unit_of_form(product_name: str) -> str | None:
    return dosing_unit(product_name.split(", ", 1)[1]) if ", " in product_name else None


class Resolver:
    """Resolves lines against one loaded KB. Build once; ``resolve`` is pure and thread-safe."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.index = NameIndex(kb)
        # Prescribing software sends the same lines again and again; resolution of a text is pure,
        # so it is kept (the report is frozen, only its index changes).
        self._text_cache: dict[str, LineReport] = {}

    # -- public -------------------------------------------------------------------------------
    def resolve(self, line: LineInput, index: int = 0) -> LineReport:
        shown = line.display()
        if line.cip13 or line.cip7 or line.cis:
            report = self._by_code(line, index, shown)
        elif line.substance and not line.text:
            key = "\0substance:" + line.substance  # cannot collide with a free-text line
            cached = self._text_cache.get(key)
            if cached is None:
                cached = self._by_substance(line.substance, 0, shown, strengths=())
                self._remember(key, cached)
            report = cached if index == 0 else cached.model_copy(update={"index": index})
        else:
            text = line.text or line.substance or ""
            cached = self._text_cache.get(text)
            if cached is None:
                cached = self._by_text(text, 0, shown)
                self._remember(text, cached)
            report = cached if index == 0 else cached.model_copy(update={"index": index})
        return self._with_posology(report, line)

    def _remember(self, key: str, report: LineReport) -> None:
        if len(self._text_cache) >= _TEXT_CACHE_SIZE:
            self._text_cache.clear()  # bounded memory; a batch refills what it repeats
        self._text_cache[key] = report

    # -- codes --------------------------------------------------------------------------------
    def _by_code(self, line: LineInput, index: int, shown: str) -> LineReport:
        kb = self.kb
        product: ProductInfo | None = None
        cip13 = None
        if line.cip13:
            pres = kb.by_cip13.get(line.cip13)
            product, cip13 = (kb.products[pres.product_id], pres.cip13) if pres else (None, None)
            what = f"CIP13 {line.cip13}"
        elif line.cip7:
            pres = kb.by_cip7.get(line.cip7)
            product, cip13 = (kb.products[pres.product_id], pres.cip13) if pres else (None, None)
            what = f"CIP7 {line.cip7}"
        else:
            product = kb.by_cis.get(line.cis or "")
            what = f"CIS {line.cis}"
        if product is None:
            return LineReport(
                index=index,
                input=shown,
                status="unresolved",
                reason=f"{what} is not in BDPM {kb.manifest.editions().get('bdpm', '')}",
            )
        return self._resolved_product(product, index, shown, match=what.split()[0].lower(), cip13=cip13)

    # -- substances ---------------------------------------------------------------------------
    def _by_substance(self, name: str, index: int, shown: str, strengths: tuple[Strength, ...]) -> LineReport:
        ids = self.kb.substance_ids_by_name.get(fold_words(name)) or self.kb.substance_ids_by_name.get(
            fold(name)
        )
        match = "substance"
        if not ids:
            fixed = self._typo_variants(fold_words(name))
            groups = {self.kb.substance_ids_by_name[v] for v in fixed if v in self.kb.substance_ids_by_name}
            if len(groups) == 1:
                ids, match = next(iter(groups)), "substance~spelling"
            elif len(groups) > 1:
                cands = tuple(Candidate(substances=self._refs(g), score=0.5) for g in sorted(groups))
                return LineReport(
                    index=index,
                    input=shown,
                    status="ambiguous",
                    candidates=cands,
                    reason="several substances are one typo away",
                )
        if not ids:
            return LineReport(
                index=index, input=shown, status="unresolved", reason="no product or substance matches"
            )
        return LineReport(
            index=index,
            input=shown,
            status="resolved",
            substances=self._refs(ids),
            match=match,
            substance_ids=tuple(ids),
        )

    # -- free text ----------------------------------------------------------------------------
    def _by_text(self, text: str, index: int, shown: str) -> LineReport:
        parsed = split_line(text)
        if not parsed.name:
            return LineReport(
                index=index, input=shown, status="unresolved", reason="no drug name in the line"
            )
        entries, how = [], "none"
        if "prolongee" in parsed.forms:
            # "TERALITHE LP 400": BDPM names the LP product "TERALITHE LP", apart from "TERALITHE".
            for stem in (parsed.name + " lp", parsed.name + " l p"):
                if stem in self.index.stems:
                    entries, how = list(self.index.stems[stem]), "name"
                    break
        if not entries:
            entries, how = self._candidates(parsed.name, parsed.parts)
        spelled = ""
        if not entries and how != "substance":
            for variant in self._typo_variants(parsed.name):
                entries, how = self._candidates(variant, (variant,) if len(parsed.parts) < 2 else ())
                if entries or how == "substance":
                    spelled = "~spelling"
                    break
        if how == "substance" and not entries:
            return self._by_substance(parsed.name, index, shown, parsed.strengths)
        if not entries:
            return LineReport(
                index=index, input=shown, status="unresolved", reason="no product or substance matches"
            )
        by_strength = [e for e in entries if _strength_matches(parsed.strengths, e)]
        if parsed.strengths and not by_strength:
            written = " / ".join(f"{s.value:g} {s.unit or ''}".strip() for s in parsed.strengths)
            groups = {e.product.substance_ids for e in entries}
            if len(groups) == 1:
                only = next(iter(groups))
                return LineReport(
                    substance_ids=only,
                    index=index,
                    input=shown,
                    status="resolved",
                    substances=self._refs(only),
                    match=how + spelled + ";strength-not-found",
                    reason=f"no {parsed.name} product of strength {written} in BDPM",
                )
            return self._ambiguous(entries, index, shown, f"strength {written} not found")
        entries = by_strength or entries
        forms = parsed.forms or _forms_of_posology(parsed.posology)
        form_note = ""
        if forms:
            by_form = [e for e in entries if all(f in e.form for f in forms)]
            if not by_form:
                form_note = ";form-not-found"  # the written form does not exist: say so in `match`
            entries = by_form or entries
        else:
            # Nothing says how it is given: an ordonnance de ville means the oral form, not the
            # hospital's injectable of the same name (ZECLAR 500 mg is a tablet before an IV powder).
            oral = [e for e in entries if any(fold(r) == "orale" for r in e.product.routes)]
            entries = oral or entries
        groups = {e.product.substance_ids for e in entries if e.product.components}
        if len(groups) > 1:
            return self._ambiguous(entries, index, shown, "the name fits products of different substances")
        if not groups:
            return LineReport(
                index=index,
                input=shown,
                status="unresolved",
                reason="the matching product has no known composition",
            )
        if how == "substance" and len({e.product.stem for e in entries}) > 1:
            # A DCI line names the substance, not a laboratory's product: report the substance.
            return LineReport(
                index=index,
                input=shown,
                status="resolved",
                substances=self._refs(next(iter(groups))),
                substance_ids=next(iter(groups)),
                match="substance" + spelled,
                route=self._route(entries[0].product),
            )
        return self._resolved_product(
            entries[0].product, index, shown, match=how + spelled + form_note, alternatives=len(entries) - 1
        )

    def _substance_part(self, part: str) -> tuple[int, ...] | None:
        """Substance ids of one name part; a trailing salt word is tolerated ("perindopril arginine")."""
        names = self.kb.substance_ids_by_name
        words = part.split()
        for n in range(len(words), 0, -1):
            ids = names.get(" ".join(words[:n]))
            if ids:
                return ids
        return None

    def _candidates(self, name: str, parts: tuple[str, ...] = ()) -> tuple[list[ProductEntry], str]:
        stems = self.index.stems
        if name in stems:
            return list(stems[name]), "name"
        ids = self.kb.substance_ids_by_name.get(name)
        if ids is None and len(parts) > 1:
            # "perindopril arginine/indapamide": each "/" part names a substance -> a combination.
            found = [self._substance_part(p) for p in parts]
            if all(found):
                ids = tuple(sorted({i for f in found if f for i in f}))
        if ids is None and " " in name and len(parts) < 2:
            # "levodopa carbidopa": every word a substance -> a combination DCI line.
            per_word = [self.kb.substance_ids_by_name.get(w) for w in name.split()]
            if all(per_word):
                ids = tuple(sorted({i for w in per_word if w for i in w}))
        if ids:
            return list(self.index.by_substances.get(frozenset(ids), ())), "substance"
        longer = self.index.stems_starting_with(name)
        if longer:
            return [e for stem in longer for e in stems[stem]], "name-prefix"
        words = name.split()
        for n in range(len(words) - 1, 0, -1):
            head = " ".join(words[:n])
            if head in stems:
                return list(stems[head]), "name-prefix"
        return [], "none"

    def _typo_variants(self, name: str) -> list[str]:
        options: list[list[str]] = []
        for word in name.split():
            if self.index.known_word(word) or len(word) < 5:
                options.append([word])
                continue
            close = self.index.close_words(word)
            if not close:
                return []
            best = close[0][1]
            options.append([w for w, d in close if d == best])
        variants = [" ".join(choice) for choice in cartesian(*options)]
        return [v for v in variants if v != name][:16]

    # -- reports ------------------------------------------------------------------------------
    def _refs(self, ids: tuple[int, ...] | list[int]) -> tuple[SubstanceRef, ...]:
        out = []
        for sid in ids:
            sub = self.kb.substances[sid]
            out.append(SubstanceRef(name=sub.name, atc=sub.atc[0] if sub.atc else None))
        return tuple(out)

    def _route(self, product: ProductInfo) -> str | None:
        for route in product.routes:
            norm = known_route(route)
            if norm:
                return norm
        return normalise_route(product.routes[0]) if product.routes else None

    def _resolved_product(
        self,
        product: ProductInfo,
        index: int,
        shown: str,
        match: str,
        cip13: str | None = None,
        alternatives: int = 0,
    ) -> LineReport:
        if not product.components:
            return LineReport(
                index=index,
                input=shown,
                status="unresolved",
                product=ProductRef(cis=product.cis, name=product.name, cip13=cip13),
                reason="product found but BDPM gives no composition for it",
            )
        refs = []
        for comp in product.components:
            sub = self.kb.substances[comp.substance_id]
            atc = (
                product.atc
                if len(product.components) == 1 and product.atc
                else (sub.atc[0] if sub.atc else None)
            )
            refs.append(SubstanceRef(name=sub.name, atc=atc))
        return LineReport(
            index=index,
            input=shown,
            status="resolved",
            product=ProductRef(cis=product.cis, name=product.name, cip13=cip13),
            substances=tuple(refs),
            match=match,
            route=self._route(product),
            substance_ids=product.substance_ids,
        )

    def _ambiguous(self, entries: list[ProductEntry], index: int, shown: str, reason: str) -> LineReport:
        seen: dict[tuple[int, ...], ProductEntry] = {}
        for entry in entries:
            seen.setdefault(entry.product.substance_ids, entry)
        cands = tuple(
            Candidate(
                product=ProductRef(cis=e.product.cis, name=e.product.name),
                substances=self._refs(e.product.substance_ids),
                score=round(1.0 / (rank + 1), 3),
            )
            for rank, e in enumerate(list(seen.values())[:5])
        )
        return LineReport(index=index, input=shown, status="ambiguous", candidates=cands, reason=reason)

    def _with_posology(self, report: LineReport, line: LineInput) -> LineReport:
        text = line.posology
        if text is None and line.text and report.status == "resolved":
            text = split_line(line.text).posology
        updates: dict[str, object] = {}
        if line.route:
            updates["route"] = normalise_route(line.route)
        if text:
            posology: Posology = parse_posology(text)
            if posology.parsed and posology.unit is None and report.product is not None:
                # "1 le soir" names no unit: the product's form does ("comprimé pelliculé" -> comprimé).
                unit = _unit_of_form(report.product.name)
                if unit:
                    posology = posology.model_copy(update={"unit": unit})
            strength = self._unit_strength_mg(report, line, posology.unit)
            mg = daily_mass_mg(posology, strength)
            if mg is not None:
                posology = posology.model_copy(update={"mg_per_day": mg})
            updates["posology"] = posology
        if line.dose_mg_per_day is not None:
            # A dose the caller states outright wins over one computed from the posology text.
            base = updates.get("posology")
            stated = (
                base
                if isinstance(base, Posology)
                else Posology(
                    text=f"{line.dose_mg_per_day:g} mg/j",
                    parsed=True,
                    unit="mg",
                    note="dose_mg_per_day given",
                )
            )
            updates["posology"] = stated.model_copy(update={"mg_per_day": line.dose_mg_per_day})
        return report.model_copy(update=updates) if updates else report

    def _unit_strength_mg(self, report: LineReport, line: LineInput, unit: str | None) -> float | None:
        """mg of the single active substance per unit of the posology, when both are known.

        BDPM gives a strength per reference ("un comprimé", "1 ml de solution"): it converts a dose
        only when the posology counts that very unit, so that "10 gouttes" of a 138 mg/ml solution
        never becomes 1,380 mg.
        """
        if report.product is not None:
            product = self.kb.by_cis.get(report.product.cis)
            if product is None or len(product.components) != 1:
                return None
            component = product.components[0]
            reference_unit = dosing_unit(component.reference)
            return component.mg if reference_unit is not None and reference_unit == unit else None
        if line.text and len(report.substances) == 1:
            strengths = split_line(line.text).strengths
            if len(strengths) == 1:
                return strengths[0].mg
        return None
