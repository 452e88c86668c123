"""Text normalisation shared by the build and the resolver.

Names are compared folded: lower case, accents removed, apostrophes and punctuation turned to spaces,
white space collapsed. The folded form is a *key*, never shown to a user: reports keep the names as
the sources write them.
"""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[^a-z0-9.,%/+\- ]+")
_SPACES = re.compile(r"\s+")


class _WithoutCombining(dict[int, int | None]):
    """A ``str.translate`` table that drops combining marks (accents once decomposed).

    Each code point is classified once, on first sight, then read from the dict in C: several times
    faster than testing every character in Python, and the same characters are dropped.
    """

    def __missing__(self, code: int) -> int | None:
        kept = None if unicodedata.combining(chr(code)) else code
        self[code] = kept
        return kept


_WITHOUT_COMBINING = _WithoutCombining()


def strip_accents(text: str) -> str:
    if text.isascii():  # nothing to decompose: NFKD leaves ASCII as it is
        return text
    return unicodedata.normalize("NFKD", text).translate(_WITHOUT_COMBINING)


def fold(text: str) -> str:
    """Lower-case, accent-free, punctuation-light key.

    "Acide ACÉTYLSALICYLIQUE" -> "acide acetylsalicylique".
    """
    # The micro sign must not vanish with the accents: "75 µg" folded to "75 g" would read a
    # microgram dose as a thousand times larger. It becomes "u" ("75 ug"), a unit the parsers know.
    text = text.replace("µ", "u").replace("μ", "u")
    text = strip_accents(text).lower()
    text = text.replace("œ", "oe").replace("æ", "ae").replace("’", " ").replace("'", " ")
    text = _NON_WORD.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def fold_words(text: str) -> str:
    """Like :func:`fold` but keeps letters and digits only (for name matching, not strengths)."""
    text = fold(text)
    text = re.sub(r"[^a-z0-9 ]+", " ", text)
    return _SPACES.sub(" ", text).strip()
