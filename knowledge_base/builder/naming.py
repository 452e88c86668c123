"""Substance names across sources: salt stripping (French) and French -> English INN candidates.

Both are heuristics over curated word lists (``curated/salts.yaml``); every match they produce is
checked against a real name of another source before it is used, never taken on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from iatro.text import fold
from knowledge_base.builder.files import CURATED_DIR

_PAREN = re.compile(r"\(([^()]*)\)")


@dataclass(frozen=True)
class SaltWords:
    prefix: frozenset[str]
    suffix: frozenset[str]
    cations: frozenset[str]
    english: frozenset[str]


@cache
def salt_words(path: Path = CURATED_DIR / "salts.yaml") -> SaltWords:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return SaltWords(
        frozenset(raw["prefix_salts"]),
        frozenset(raw["suffix_words"]),
        frozenset(raw["cation_moieties"]),
        frozenset(raw["english_salt_words"]),
    )


def _is_salt_phrase(text: str, words: SaltWords) -> bool:
    tokens = [t for t in re.split(r"[\s']+", fold(text)) if t and t not in {"de", "d", "sous", "forme"}]
    return bool(tokens) and all(t in words.prefix or t in words.suffix for t in tokens)


def moiety_name(name: str) -> str:
    """The active moiety named by a BDPM substance, lower case with accents kept.

    "CHLORHYDRATE D'AMIODARONE" -> "amiodarone"; "AMLODIPINE (BÉSILATE D')" -> "amlodipine";
    "PANTOPRAZOLE SODIQUE SESQUIHYDRATÉ" -> "pantoprazole"; "CHLORURE DE POTASSIUM" -> "potassium".
    """
    words = salt_words()
    text = " ".join(name.lower().replace("’", "'").split())
    # BDPM sometimes inverts acids: "ACÉTYLSALICYLIQUE (ACIDE)" is "acide acétylsalicylique".
    inverted = re.fullmatch(r"(.+?)\s*\(acide\)", text)
    if inverted:
        text = "acide " + inverted.group(1)
    # "SODIUM (OXYBATE DE)" is "oxybate de sodium" written the other way round: when the head is a
    # cation and the parenthesis names a non-salt anion, the anion is the moiety. ("POTASSIUM
    # (CHLORURE DE)" keeps potassium: chlorure is a salt word.)
    cation = re.fullmatch(r"(\S+)\s*\((.+?)\s+d(?:e|')\s*\)", text)
    if cation and fold(cation.group(1)) in words.cations:
        anion = cation.group(2).strip()
        if not all(t in words.prefix or t in words.suffix for t in fold(anion).split()):
            text = anion
    # A trailing parenthesis that only names the salt goes; one that says more (a strain, a
    # fragment) is part of the name and stays.
    text = _PAREN.sub(lambda m: "" if _is_salt_phrase(m.group(1), words) else m.group(0), text).strip()
    text = re.sub(r"\bsous forme d[e']\s*.*$", "", text).strip()
    tokens = text.split()
    changed = True
    while changed and len(tokens) > 2:
        changed = False
        head = fold(tokens[0])
        if head in words.prefix:
            if tokens[1] == "de":
                tokens = tokens[2:]
                changed = True
            elif tokens[1].startswith("d'") and len(tokens[1]) > 2:
                tokens = [tokens[1][2:], *tokens[2:]]
                changed = True
    if len(tokens) == 2 and fold(tokens[0]) in words.prefix and tokens[1].startswith("d'"):
        tokens = [tokens[1][2:]]
    while len(tokens) > 1 and fold(tokens[-1]) in words.suffix:
        tokens = tokens[:-1]
    # "CROMOGLICATE DE SODIUM": a trailing cation names the salt, not the moiety.
    if len(tokens) > 2 and tokens[-2] == "de" and fold(tokens[-1]) in words.cations:
        tokens = tokens[:-2]
    result = " ".join(tokens).strip(" ,")
    return result or name.lower()


_EN_SUFFIXES = (
    ("illine", "illin"),
    ("mycine", "mycin"),
    ("oxacine", "oxacin"),
    ("statine", "statin"),
    ("formine", "formin"),
    ("ine", "in"),
    ("ique", "ic"),
    ("yle", "yl"),
    ("ole", "ol"),
    ("ide", "ide"),
    ("one", "one"),
    ("ene", "ene"),
)


def english_candidates(french: str) -> list[str]:
    """Likely English INN spellings of a French DCI, most likely first (folded).

    "amiodarone" -> ["amiodarone"]; "acide valproïque" -> ["valproic acid", …];
    "metformine" -> ["metformine", "metformin"]. Candidates are only hints: the caller keeps one only
    when it is a real name in an English source.
    """
    base = fold(french)
    out = [base]
    words = base.split()
    if len(words) >= 2 and words[0] == "acide":
        rest = " ".join(words[1:])
        for fr, en in (("ique", "ic"), ("eux", "ous")):
            if rest.endswith(fr):
                out.append(rest[: -len(fr)] + en + " acid")
    # Suffix rules apply word by word ("follitropine beta" -> "follitropin beta").
    converted = []
    for word in words:
        for fr, en in _EN_SUFFIXES:
            if word.endswith(fr) and fr != en:
                word = word[: -len(fr)] + en
                break
        converted.append(word)
    out.append(" ".join(converted))
    if base.endswith("e"):
        out.append(base[:-1])
    if base.endswith("ate") and len(words) == 1:
        # French names the anion of acids WHO lists as "-ic acid" (cromoglicate, valproate).
        out.append(base[:-3] + "ic acid")
    # French writes "ph" as "f" in some INNs and "th" as "t"; English keeps the Greek spelling.
    out.extend(c.replace("f", "ph") for c in list(out) if "f" in c)
    out.extend(c.replace("t", "th") for c in list(out) if "t" in c and "th" not in c)
    seen: list[str] = []
    for c in out:
        if c not in seen:
            seen.append(c)
    return seen


def strip_english_salts(name: str) -> str:
    """ "levothyroxine sodium" -> "levothyroxine"; "methyldopa (levorotatory)" -> "methyldopa"."""
    words = salt_words()
    text = fold(_PAREN.sub("", name.lower())).strip()
    tokens = text.split()
    while len(tokens) > 1 and tokens[-1] in words.english:
        tokens = tokens[:-1]
    return " ".join(tokens)
