"""FDA CYP table (substrates, inhibitors, inducers) mapped to KB substance ids.

The FDA lists drugs by English USAN name ("rifampin", "glyburide", "cyclosporine"); the KB is keyed
by French DCI. Each FDA name is resolved, in this order, and the first that finds something wins:

1. a short curated table of exact identities the dictionaries miss (USAN vs INN spellings DNER keeps
   as two unlinked entries, the French common name of a herbal drug), each with its reason;
2. :class:`EnglishNames` (the name as written, its DNER synonyms, then DNER entries with the same
   parent structure) against the KB's English INNs, keys and French ``-e`` spellings.

Nothing is fuzzy-matched: a near-miss spelling is not an identity (the ACB import once joined
histidine to histamine that way). Single enantiomers ("R-venlafaxine") are never folded into their
racemate: the FDA classes them apart because their sensitivity differs. A combination row
("lopinavir and ritonavir") maps when every required component maps; its role then ``requires`` all
of them. Every name that maps to nothing gets a reason, so coverage can be audited.

Transporter rows (P-gp, BCRP, OATP…) are kept with ``kind: transporter`` but are not modelled by
:mod:`iatro.checks.cyp`: the FDA gives no strength for them.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iatro.kb.store import SubstanceInfo
from iatro.text import fold
from knowledge_base.builder.english_names import EnglishNames
from knowledge_base.builder.files import load_registry, read_text

REGISTRY_KEY = "fda_cyp_table"
# Used while sources.yaml has no entry for the table (the registry owner adds it).
DEFAULT_ROLES_FILE = "fda_cyp_table/fda_cyp_roles_long.csv"
CYP_ENZYMES = ("CYP1A2", "CYP2B6", "CYP2C8", "CYP2C9", "CYP2C19", "CYP2D6", "CYP3A")

# Exact identities the dictionaries do not link, FDA name (folded) -> (KB keys, why it is the same
# substance). Every key must exist in the KB (checked at build), so a renamed key cannot silently drop.
_CURATED_LINKS: dict[str, tuple[tuple[str, ...], str]] = {
    "acyclovir": (
        ("aciclovir",),
        "USAN 'acyclovir' = INN 'aciclovir'; DNER holds both as separate entries, the INN without structure",
    ),
    "peginterferon alpha-2a": (
        ("peginterferon alfa-2a",),
        "the FDA page spells 'alpha'; the INN (and the KB) spell 'alfa'",
    ),
    "st. john s wort": (
        (
            "millepertuis extrait sec de",
            "millepertuis sommite fleurie extrait sec de",
            "extrait sec de millepertuis",
            "extrait sec de la sommite fleurie de millepertuis",
        ),
        "millepertuis is the French name of St John's wort (Hypericum perforatum); all four KB "
        "substances are its extracts (two are not linked to the ANSM entry 'millepertuis')",
    ),
}

# Names that are not one medicinal substance of the KB, with the reason (checked before resolution).
_NOT_A_KB_SUBSTANCE: dict[str, str] = {
    "grapefruit juice": "a food, not a medicinal product",
    "tobacco smoking": "an exposure, not a medicinal product: smoking status is not a prescription line",
    "oral contraceptives": "a therapeutic class, not a substance (the FDA footnote qualifying it is "
    "not transcribed)",
    "curcumin": "a dietary-supplement constituent; no KB medicinal substance",
    "piperine": "a dietary-supplement constituent; no KB medicinal substance",
    "oseltamivir carboxylate": "the active metabolite of oseltamivir, not the prescribed substance",
}

_NOT_IN_KB = (
    "no KB substance under this name, its DNER synonyms or its parent structure "
    "(in neither the BDPM nor the ANSM index)"
)
_ENANTIOMER = re.compile(r"^[rs]-")
_OPTIONAL_PART = re.compile(r"\([^)]*\)")


@dataclass(frozen=True, slots=True)
class NameMapping:
    """How one FDA name maps: alternatives (each a tuple of required KB ids), method, or reason."""

    fda_name: str
    alternatives: tuple[tuple[int, ...], ...]  # one tuple per way to be exposed; >1 id = combination
    how: str  # curated | name | synonym | structure | combination | unmapped
    reason: str | None = None

    @property
    def mapped(self) -> bool:
        return bool(self.alternatives)


@dataclass(frozen=True)
class CypMapping:
    roles: list[dict[str, Any]]
    names: dict[str, NameMapping] = field(default_factory=dict)

    def unmapped(self) -> dict[str, str]:
        return {n: m.reason or "" for n, m in sorted(self.names.items()) if not m.mapped}

    def coverage(self) -> tuple[int, int]:
        """(FDA names mapped to the KB, FDA names)."""
        return sum(m.mapped for m in self.names.values()), len(self.names)


class _Lookup:
    """KB substances by English INN, by key, and by the French "-e" spelling of an English INN."""

    def __init__(self, substances: Sequence[SubstanceInfo]) -> None:
        self.by_en: dict[str, list[int]] = {}
        self.by_key: dict[str, list[int]] = {}
        for s in substances:
            if s.homeopathic:
                continue  # a homeopathic dilution is not an exposure to the drug's pharmacology
            if s.name_en:
                self.by_en.setdefault(fold(s.name_en), []).append(s.id)
            self.by_key.setdefault(s.key, []).append(s.id)
        self.substances = substances

    def __call__(self, name: str) -> list[str]:
        # EnglishNames.resolve wants strings back; ids are carried as their decimal text.
        if name in self.by_en:
            return [str(i) for i in self.by_en[name]]
        if name in self.by_key:
            return [str(i) for i in self.by_key[name]]
        # Many French DCIs are the English INN plus "e" (simvastatin -> simvastatine; the ACB import
        # uses the same rule). Accepted only when that substance's own English name does not differ.
        hits = [i for i in self.by_key.get(name + "e", []) if self.substances[i].name_en in (None, name)]
        return [str(i) for i in hits]


def _roles_path(sources_dir: Path) -> Path:
    registry = load_registry()
    if REGISTRY_KEY in registry:
        return sources_dir / registry[REGISTRY_KEY].files["roles"]
    return sources_dir / DEFAULT_ROLES_FILE


def load_english_names(sources_dir: Path) -> EnglishNames:
    files = load_registry()["dner"].files
    return EnglishNames(sources_dir / files["variants"], sources_dir / files["structures"])


def _map_single(name: str, lookup: _Lookup, english: EnglishNames) -> NameMapping:
    folded = fold(name)
    if folded in _CURATED_LINKS:
        keys, _why = _CURATED_LINKS[folded]
        missing = [k for k in keys if k not in lookup.by_key]
        if missing:
            raise ValueError(f"curated CYP link {name!r}: KB keys {missing} do not exist")
        ids = sorted({i for k in keys for i in lookup.by_key[k]})
        return NameMapping(name, tuple((i,) for i in ids), "curated")
    if folded in _NOT_A_KB_SUBSTANCE:
        return NameMapping(name, (), "unmapped", _NOT_A_KB_SUBSTANCE[folded])
    if _ENANTIOMER.match(folded):
        racemate = folded[2:]
        held = " (the KB holds the racemate)" if lookup(racemate) else ""
        reason = f"a single enantiomer, classed apart from its racemate by the FDA{held}"
        return NameMapping(name, (), "unmapped", reason)
    found, how = english.resolve(folded, lookup)
    if not found:
        return NameMapping(name, (), "unmapped", _NOT_IN_KB)
    return NameMapping(name, tuple((int(i),) for i in sorted(set(found), key=int)), how)


def map_name(name: str, lookup: _Lookup, english: EnglishNames) -> NameMapping:
    """One FDA name: a substance, or a combination whose required components all map."""
    folded = fold(name)
    if " and " not in folded:
        return _map_single(name, lookup, english)
    # "paritaprevir and ritonavir and (ombitasvir and/or dasabuvir)": the parenthesis is optional.
    required = [part.strip() for part in _OPTIONAL_PART.sub(" ", name).split(" and ") if part.strip()]
    parts = [_map_single(part, lookup, english) for part in required]
    unmapped = [p.fda_name for p in parts if not p.mapped]
    if unmapped:
        reason = f"combination whose component(s) {', '.join(unmapped)} map to no KB substance"
        return NameMapping(name, (), "unmapped", reason)
    # Components keep the FDA's order, so the first named (the drug the row is about) leads.
    alternatives = tuple(
        tuple(dict.fromkeys(i for alt in combo for i in alt))
        for combo in itertools.product(*(p.alternatives for p in parts))
    )
    return NameMapping(name, alternatives, "combination")


def map_fda_table(
    sources_dir: Path, kb_substances: Sequence[SubstanceInfo], english: EnglishNames | None = None
) -> CypMapping:
    """Every FDA row mapped to KB ids (one role per id or combination), with each name's mapping."""
    english = english or load_english_names(sources_dir)
    lookup = _Lookup(kb_substances)
    rows = list(csv.DictReader(io.StringIO(read_text(_roles_path(sources_dir)))))
    names: dict[str, NameMapping] = {}
    roles: list[dict[str, Any]] = []
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        name = row["substance"].strip()
        if name not in names:
            names[name] = map_name(name, lookup, english)
        mapping = names[name]
        for requires in mapping.alternatives:
            roles.append(
                {
                    "substance_id": requires[0],
                    "requires": list(requires),
                    "enzyme": row["pathway"],
                    "kind": "cyp" if row["pathway"] in CYP_ENZYMES else "transporter",
                    "role": row["role"],
                    "strength": row["strength"],
                    "fda_name": name,
                    "how": mapping.how,
                    "source_row": number,
                }
            )
    return CypMapping(roles, names)


def build_cyp_roles(
    sources_dir: Path, kb_substances: Sequence[SubstanceInfo], english: EnglishNames | None = None
) -> list[dict[str, Any]]:
    """Rows {substance_id, requires, enzyme, kind, role, strength, fda_name, how, source_row}.

    ``source_row`` is the line number in ``fda_cyp_roles_long.csv`` (the header is line 1).
    ``requires`` lists every KB id that must be prescribed for the role to apply (one id, or the
    components of a combination row; ``substance_id`` is its first).
    """
    return map_fda_table(sources_dir, kb_substances, english).roles
