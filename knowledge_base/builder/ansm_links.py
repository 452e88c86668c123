"""Links from KB substances to the ANSM index entries whose interaction rules apply to them.

The ANSM index names a moiety ("amiodarone"), a family ("insuline") or a salt ("héparine calcique");
BDPM names the product's moiety ("dabigatran étexilate", "insuline asparte", "bupropione"). A link
is made by the first rule that holds, and the rule is kept with the link:

    exact        same folded name, or a BDPM synonym of the substance (an SA name)
    salt         same name once salts are stripped from the ANSM name
    family       the BDPM name is the ANSM name followed by qualifiers ("insuline" -> "insuline asparte")
    spelling     the names differ by a final "e" or "s" only ("bupropione" / "bupropion")
    atc          the ANSM name's English INN has a WHO level-5 code that BDPM products of the
                 substance carry (single-substance products only)

An ANSM entry that links to no BDPM substance becomes an ANSM-only substance and must be listed,
with a reason, in ``curated/ansm_unmapped.csv``; the build refuses an unlisted one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from iatro.text import fold
from knowledge_base.builder.atc import AtcIndex
from knowledge_base.builder.naming import english_candidates, moiety_name
from knowledge_base.builder.substances import Substance


def link_ansm(
    index_names: Iterable[str],
    substances: dict[str, Substance],
    atc: AtcIndex,
    curated: dict[str, str] | None = None,
) -> list[str]:
    """Attach ANSM index names to substances; returns the names that linked to nothing."""
    by_synonym: dict[str, list[Substance]] = defaultdict(list)
    by_atc: dict[str, list[Substance]] = defaultdict(list)
    for sub in substances.values():
        if sub.origin != "bdpm" or sub.homeopathic:
            continue
        for syn in sub.synonyms:
            by_synonym[syn].append(sub)
        for code in sub.atc_votes:
            by_atc[code].append(sub)
    bdpm_subs = [s for s in substances.values() if s.origin == "bdpm" and not s.homeopathic]

    unlinked: list[str] = []
    for name in sorted(set(index_names)):
        key = fold(name)
        hits: list[tuple[Substance, str]] = []
        if curated and name in curated:
            hits = [(substances[curated[name]], "curated")]
        elif key in substances and substances[key].origin == "bdpm":
            hits = [(substances[key], "exact")]
        elif key in by_synonym:
            hits = [(s, "exact") for s in by_synonym[key]]
        elif (stripped := fold(moiety_name(name))) in substances and substances[stripped].origin == "bdpm":
            hits = [(substances[stripped], "salt")]
        else:
            hits = [(s, "family") for s in bdpm_subs if s.key.startswith(key + " ")]
            if not hits:
                hits = [
                    (s, "spelling")
                    for s in bdpm_subs
                    if len(key) >= 6
                    and (s.key in (key + "e", key + "s") or key in (s.key + "e", s.key + "s"))
                ]
            if not hits:
                for candidate in english_candidates(name):
                    codes = atc.level5_for(candidate)
                    hits = [(s, "atc") for code in codes for s in by_atc.get(code, [])]
                    if hits:
                        break
        if not hits:
            unlinked.append(name)
        for sub, how in hits:
            sub.ansm.setdefault(name, how)
    return unlinked
