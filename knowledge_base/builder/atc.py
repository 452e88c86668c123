"""WHO ATC index: codes, names and levels."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from iatro.text import fold
from knowledge_base.builder.files import read_text
from knowledge_base.builder.naming import strip_english_salts


def atc_level(code: str) -> int:
    return {1: 1, 3: 2, 4: 3, 5: 4, 7: 5}.get(len(code), 0)


@dataclass
class AtcIndex:
    names: dict[str, str]  # code -> WHO name as written
    by_name: dict[str, list[str]]  # folded level-5 name -> codes
    ddd: dict[str, list[tuple[float, str, str]]]  # level-5 code -> (ddd, unit, route)

    def level5_for(self, folded_name: str) -> list[str]:
        return self.by_name.get(folded_name, [])


# WHO level-5 names that stand for mixtures or families, not one substance.
_NOT_ONE_SUBSTANCE = (" and ", "combination", "various", "comb.", " with ", "others", "preparations")


def read_atc(path: Path) -> AtcIndex:
    names: dict[str, str] = {}
    by_name: dict[str, list[str]] = defaultdict(list)
    ddd: dict[str, list[tuple[float, str, str]]] = defaultdict(list)
    secondary: dict[str, list[str]] = defaultdict(list)
    for row in csv.DictReader(io.StringIO(read_text(path))):
        code, name = row["atc_code"].strip(), row["atc_name"].strip()
        names.setdefault(code, name)
        if len(code) != 7:
            continue
        if row["ddd"] not in ("NA", ""):
            ddd[code].append((float(row["ddd"]), row["uom"], row["adm_r"]))
        folded = fold(name)
        if any(marker in f" {folded} " for marker in _NOT_ONE_SUBSTANCE):
            continue
        if code not in by_name[folded]:
            by_name[folded].append(code)
        # Also under the bare name, unless that bare name is already another entry of its own.
        bare = strip_english_salts(name)
        if bare and bare != folded:
            secondary[bare].append(code)
    for bare, codes in secondary.items():
        if bare not in by_name:
            by_name[bare] = list(dict.fromkeys(codes))
    return AtcIndex(names, dict(by_name), dict(ddd))
