"""Strengths as BDPM and prescribers write them: "25 mg", "1,00 mg", "800 microgrammes", "1 000 UI"."""

from __future__ import annotations

import re
from dataclasses import dataclass

from iatro.text import strip_accents

_UNIT_TO_MG = {
    "g": 1000.0,
    "mg": 1.0,
    "microgrammes": 0.001,
    "microgramme": 0.001,
    "µg": 0.001,
    "ug": 0.001,
    "mcg": 0.001,
    "ng": 1e-6,
    "nanogrammes": 1e-6,
}
_UNITS = (
    r"microgrammes?|nanogrammes?|milligrammes?|grammes?|mg|µg|ug|mcg|ng|g|ui|u\.i\.|u|ml|mmol|meq|%|mbq|gbq"
)
# A number glued after a letter ("D3", "B12") is part of a name, not a strength.
STRENGTH = re.compile(
    rf"(?<![a-z0-9.,])(\d+(?:[ \u00a0]\d{{3}})*(?:[.,]\d+)?)\s*({_UNITS})?(?![a-z])", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Strength:
    value: float
    unit: str | None  # normalised: mg, g, µg, ui, ml, mmol, %, … or None when the text gave none

    @property
    def mg(self) -> float | None:
        if self.unit is None:
            return None
        factor = _UNIT_TO_MG.get(self.unit)
        return None if factor is None else self.value * factor


def _unit(raw: str | None) -> str | None:
    if not raw:
        return None
    unit = strip_accents(raw.lower()).replace(".", "")
    if unit.startswith("microgramme") or unit in ("ug", "mcg"):
        return "µg"
    if unit.startswith("nanogramme"):
        return "ng"
    if unit.startswith("milligramme"):
        return "mg"
    if unit.startswith("gramme"):
        return "g"
    return {"u": "ui"}.get(unit, unit)


def _number(raw: str) -> float:
    return float(raw.replace(" ", "").replace("\u00a0", "").replace(",", "."))


def parse_strengths(text: str) -> list[Strength]:
    """Every number-with-unit in the text, in order ("50 mg/12,5 mg" -> two strengths)."""
    return [Strength(_number(m.group(1)), _unit(m.group(2))) for m in STRENGTH.finditer(text)]


def parse_dosage(text: str) -> Strength | None:
    """The first strength of a BDPM dosage cell, or None when it holds no number."""
    found = parse_strengths(text)
    return found[0] if found else None
