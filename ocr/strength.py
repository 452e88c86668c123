"""Strengths read by OCR, checked against the strengths BDPM knows for the product.

A strength that does not exist for the product named is an OCR error (or a prescription error) and is
snapped to the nearest one that exists, nearest as an OCR misreads: digit edits first ("506" -> 500,
"26" -> 25, a lost decimal comma "25" -> 2,5 when 2,5 exists), then the ratio of the values. A snapped
strength is always flagged for review: it is a guess, however good.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

from iatro.kb.strength import STRENGTH, Strength
from iatro.model.report import LineReport
from iatro.resolve.index import ProductEntry
from iatro.resolve.lines import ParsedText, Resolver
from iatro.text import fold

# Beyond this many digit edits the read value is not a misreading of any strength of the product: it
# is left as read (the line stays at substance level and is flagged), never snapped.
MAX_SNAP_DISTANCE = 2.0
_MASS = {"mg", "g", "µg", "ng"}
_FAR = math.log(3.0)


def format_strength(values: Sequence[Strength]) -> str:
    """ "2,5 mg", "50 mg/12,5 mg": one French spelling, shared with the generator's ground truth."""
    parts = []
    for s in values:
        number = f"{s.value:g}".replace(".", ",")
        parts.append(f"{number} {s.unit}" if s.unit else number)
    return "/".join(parts)


def family(resolver: Resolver, report: LineReport, parsed: ParsedText) -> list[ProductEntry]:
    """Products the line may name: its product's name family, else its substances' products, narrowed
    to the written form (or to oral forms when none is written), as the resolver narrows them."""
    index = resolver.index
    entries: Sequence[ProductEntry] = ()
    if parsed.name in index.stems:
        entries = index.stems[parsed.name]
    elif report.product is not None:
        product = resolver.kb.by_cis.get(report.product.cis)
        if product is not None:
            entries = index.stems.get(product.stem, ())
    if not entries and report.substance_ids:
        entries = index.by_substances.get(frozenset(report.substance_ids), ())
        if parsed.name not in resolver.kb.substance_ids_by_name:
            # A product name the resolver knew only by its substances: that name's products first.
            named = [e for e in entries if e.product.stem.startswith(parsed.name)] if parsed.name else []
            entries = named or entries
    marketed = [e for e in entries if e.product.marketed] or list(entries)
    if parsed.forms:
        by_form = [e for e in marketed if all(f in e.form for f in parsed.forms if f != "prolongee")]
        marketed = by_form or marketed
    else:
        oral = [e for e in marketed if any(fold(r) == "orale" for r in e.product.routes)]
        marketed = oral or marketed
    return [e for e in marketed if e.strengths]


def _digits(value: float) -> str:
    return f"{value:g}".replace(".", ",")


def _pair_distance(read: Strength, known: Strength) -> float:
    if read.unit is None or known.unit is None or read.unit == known.unit:
        unit_penalty = 0.0
    elif read.unit in _MASS and known.unit in _MASS:
        unit_penalty = 1.0  # "75 mg" read where BDPM has 75 µg: the unit glyphs were misread
    else:
        return math.inf
    # A decimal comma is the glyph the OCR loses most ("2,5" read "25"): half an edit.
    a, b = _digits(read.value), _digits(known.value)
    comma = 0.5 if ("," in a) != ("," in b) else 0.0
    return Levenshtein.distance(a.replace(",", ""), b.replace(",", "")) + comma + unit_penalty


def _ratio(read: Sequence[Strength], known: Sequence[Strength]) -> float:
    total = 0.0
    for r, k in zip(read, known, strict=False):
        if r.value > 0 and k.value > 0:
            total += abs(math.log(r.value / k.value))
    return total


def strength_options(entries: Sequence[ProductEntry]) -> list[tuple[Strength, ...]]:
    seen: dict[tuple[tuple[float, str | None], ...], tuple[Strength, ...]] = {}
    for entry in entries:
        key = tuple((s.value, s.unit) for s in entry.strengths)
        seen.setdefault(key, entry.strengths)
    return list(seen.values())


def exists(read: Sequence[Strength], options: Sequence[Sequence[Strength]]) -> bool:
    return any(_same(read, option) for option in options)


def _same(read: Sequence[Strength], known: Sequence[Strength]) -> bool:
    if len(read) > len(known):
        return False
    for r, k in zip(read, known, strict=False):
        if r.unit is not None and k.unit is not None and r.unit != k.unit:
            if r.mg is None or k.mg is None or abs(r.mg - k.mg) > 1e-9:
                return False
        elif abs(r.value - k.value) > 1e-9:
            return False
    return True


def nearest(read: Sequence[Strength], options: Sequence[Sequence[Strength]]) -> tuple[Strength, ...] | None:
    """The existing strength an OCR reading most likely stands for, or None when none is close."""
    best: tuple[float, float, tuple[Strength, ...]] | None = None
    for option in options:
        distance = 2.0 * abs(len(read) - len(option))
        distance += sum(_pair_distance(r, k) for r, k in zip(read, option, strict=False))
        if distance > MAX_SNAP_DISTANCE or (distance > 1.0 and _ratio(read, option) > _FAR):
            continue  # two glyphs off and far in value (740 mg for 10 mg): not a misreading
        key = (distance, _ratio(read, option), tuple(option))
        if best is None or key[:2] < best[:2]:
            best = key
    return best[2] if best is not None else None


# Digits Tesseract confuses with each other on printed ordonnances.
_LOOKALIKE = {frozenset(p) for p in ("08", "06", "09", "17", "14", "38", "56", "58", "68", "89", "27", "35")}


def _lookalike(read: str, known: str) -> bool:
    """One glyph apart the way OCR errs: a look-alike digit, a lost or added decimal comma, a lost
    or added digit (10 / 100)."""
    ops = Levenshtein.editops(read, known).as_list()
    if len(ops) != 1:
        return False
    tag, source, dest = ops[0]
    if tag == "replace":
        return frozenset((read[int(source)], known[int(dest)])) in _LOOKALIKE
    return True


def confusable(read: Sequence[Strength], options: Sequence[Sequence[Strength]]) -> list[tuple[Strength, ...]]:
    """Other existing strengths one misread glyph away from what was read (5 mg / 6 mg, 10 mg / 1,0
    mg...): a reading of such a strength at less than full confidence cannot be trusted."""
    out = []
    for option in options:
        if _same(read, option) or len(option) != len(read):
            continue
        differ = [(r, k) for r, k in zip(read, option, strict=True) if not _same((r,), (k,))]
        if len(differ) == 1 and differ[0][0].unit == differ[0][1].unit:
            r, k = differ[0]
            if _lookalike(_digits(r.value), _digits(k.value)):
                out.append(tuple(option))
    return out


_GROUP = re.compile(rf"{STRENGTH.pattern}(?:\s*[/+]\s*{STRENGTH.pattern})*", re.IGNORECASE)


def replace_strength(text: str, snapped: Sequence[Strength]) -> str:
    """The drug text with its (first) strength group written as the snapped strength."""
    words = text.split()
    # The strength follows the name: find the first group that starts with a digit after a word.
    for match in _GROUP.finditer(text):
        if match.group(0).strip() and match.group(0).strip()[0].isdigit() and match.start() > 0:
            return text[: match.start()] + format_strength(snapped) + text[match.end() :]
    return " ".join([*words[:1], format_strength(snapped), *words[1:]])


@dataclass(frozen=True, slots=True)
class StrengthCheck:
    read: tuple[Strength, ...]
    kept: tuple[Strength, ...] | None
    snapped: bool
    options: int  # how many strengths BDPM has for the product family
    confusable_with: tuple[tuple[Strength, ...], ...] = ()
