"""English drug names to WHO INNs, through the DNER dictionary's synonyms and RDKit parent structures.

Scales and tables written in English (ACB, FDA CYP) use US or brand names ("acetaminophen",
"rifampin", "amitriptyline hydrochloride"). A name is first looked up as is in the WHO index, then
through every synonym of its DNER canonical entry, then through the entries whose *parent*
structure (largest fragment after salt stripping, InChIKey connectivity block) is the same.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from rdkit import Chem
from rdkit.Chem.MolStandardize import rdMolStandardize
from rdkit.rdBase import DisableLog

from iatro.text import fold
from knowledge_base.builder.files import read_text


class EnglishNames:
    def __init__(self, variants_path: Path, structures_path: Path) -> None:
        self.canonical: dict[str, str] = {}
        self.variants: dict[str, set[str]] = defaultdict(set)
        for row in csv.reader(io.StringIO(read_text(variants_path)), delimiter="\t"):
            if len(row) < 2 or row[0] == "variant":
                continue
            variant, canonical = fold(row[0]), fold(row[1])
            self.canonical.setdefault(variant, canonical)
            self.variants[canonical].add(variant)
        self.by_parent: dict[str, set[str]] = defaultdict(set)
        self.parent_of: dict[str, str] = {}
        DisableLog("rdApp.*")  # malformed SMILES are skipped on purpose; the log adds nothing
        chooser = rdMolStandardize.LargestFragmentChooser()
        for entry in csv.DictReader(io.StringIO(read_text(structures_path)), delimiter="\t"):
            mol = Chem.MolFromSmiles(entry["smiles"] or "")
            if mol is None:
                continue
            parent = chooser.choose(mol)
            key: str = Chem.MolToInchiKey(parent)  # type: ignore[no-untyped-call]
            if not key:
                continue
            block = key.split("-")[0]
            name = fold(entry["canonical"])
            self.parent_of[name] = block
            self.by_parent[block].add(name)

    def related(self, name: str) -> list[str]:
        """Names that denote the same substance, closest first."""
        folded = fold(name)
        canonical = self.canonical.get(folded, folded)
        out = [folded, canonical, *sorted(self.variants.get(canonical, ()))]
        block = self.parent_of.get(canonical)
        if block:
            for other in sorted(self.by_parent[block]):
                out.extend([other, *sorted(self.variants.get(other, ()))])
        return list(dict.fromkeys(out))

    def resolve(self, name: str, lookup: Callable[[str], list[str]]) -> tuple[list[str], str]:
        """Substance ids for an English name, and how they were found ("name", "synonym", "structure")."""
        folded = fold(name)
        direct = lookup(folded)
        if direct:
            return direct, "name"
        canonical = self.canonical.get(folded, folded)
        for other in [canonical, *sorted(self.variants.get(canonical, ()))]:
            found = lookup(other)
            if found:
                return found, "synonym"
        block = self.parent_of.get(canonical)
        if block:
            for other in sorted(self.by_parent[block]):
                for variant in [other, *sorted(self.variants.get(other, ()))]:
                    found = lookup(variant)
                    if found:
                        return found, "structure"
        return [], "unmapped"
