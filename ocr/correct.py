"""Dictionary post-processing of OCR words: the confusions Tesseract makes on ordonnances, undone.

Three kinds of token, three rules, because the same glyph means different things in each:

- a number before a unit, or in a posology: letters that look like digits become digits ("S mg" ->
  "5 mg", "l0" -> "10", "1-O-1" -> "1-0-1"), a split decimal comma is joined ("2, 5 mg");
- a unit: its misreadings become the unit ("m9", "rng" -> "mg"; "pg", "ug", "µg" -> "µg");
- a drug name word: digits that look like letters become letters ("0MEPRAZOLE"), then the word is
  looked up in the vocabulary of BDPM product names and substances, trying the usual confusions
  ("rn"/"m", "cl"/"d", "l"/"i") before the nearest word at a small edit distance. A posology word
  is looked up in the posology vocabulary the same way.

Every change is recorded: the pipeline reports a corrected drug name and never hides that a value was
guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from iatro.resolve.index import NameIndex
from iatro.resolve.lines import FORM_WORDS
from iatro.text import fold, fold_words

_DIGIT_LIKE = str.maketrans("OoDQlIi|!]SsBZz", "000011111155822")
_LETTER_LIKE = str.maketrans({"0": "O", "1": "I", "5": "S", "8": "B", "2": "Z", "6": "G", "4": "A"})
_NUMBERISH = re.compile(r"^[0-9OoDQlIi|!\]SsBZz]+(?:[.,][0-9OoDQlIi|!\]SsBZz]+)?$")
_HAS_DIGIT = re.compile(r"\d")

# Misreadings of units on ordonnances -> the unit. Keys are folded (µ already "u").
_UNIT_FIXES = {
    "mg": "mg", "m9": "mg", "rng": "mg", "mq": "mg", "rnq": "mg", "rn9": "mg", "mgs": "mg", "img": "mg",
    "nig": "mg", "rig": "mg", "my": "mg", "mig": "mg", "rnig": "mg", "mgr": "mg", "msg": "mg",
    "ug": "µg", "pg": "µg", "yg": "µg", "jg": "µg", "ig": "µg", "µg": "µg", "mcg": "µg", "u1g": "µg",
    "ulg": "µg", "uig": "µg",
    "g": "g", "ui": "UI", "ul": "UI", "u1": "UI", "ml": "ml", "mi": "ml", "mmol": "mmol", "%": "%",
}  # fmt: skip
GLUED_FORM = re.compile(
    r"^(\d+(?:[.,]\d+)?)(mg|g|µg|ug|m9|rng)(cp|cpr|comprimé|comprime|gél|gel|gélule|gelule|sachet|capsule)([,.;]?)$",
    re.IGNORECASE,
)
# "KRKA5", "ZENTIVA.80", "Levothyroxine-62,5": a name and its strength run together, with at most a
# speck read as a stop or a hyphen between them.
_UNIT_FORM = re.compile(
    r"^(mg|g|µg|ug)(cp|cpr|comprimé|comprime|gél|gel|gélule|gelule)([,.;]?)$", re.IGNORECASE
)
NAME_NUMBER = re.compile(r"^([A-Za-zÀ-ÿ]{3,})[.,-]?(\d+(?:[.,]\d+)?)$")
_UNIT_WORDS = ("microgrammes", "microgramme", "milligrammes", "grammes")
GLUED = re.compile(
    r"^([0-9OoDQlI|SsBZz]*\d[0-9OoDQlI|SsBZz]*(?:[.,][0-9OoDQlI|SsBZz]+)?)([a-zA-Zµ%]{1,4})([,.;]?)$"
)

# Words of French posologies, folded: the vocabulary a misread posology word is corrected to.
_POSOLOGY_WORDS_TEXT = """
cp cpr cps comp comprime comprimes gel gelule gelules sachet sachets capsule capsules ampoule
ampoules goutte gouttes dose doses suppositoire suppositoires injection injections bouffee bouffees
patch le la les l de du des d a au aux et en ou avec sans par pour pendant pdt durant puis avant
apres matin matins midi soir soirs coucher nuit lever jour jours journee semaine semaines mois an
ans fois prise prises chaque tous toutes tout repas petit dejeuner diner jeun si besoin douleur
douleurs fievre insomnie nausees constipation anxiete maximum max maxi dose heures heure toutes demi
lundi mardi mercredi jeudi vendredi samedi dimanche prendre avaler croquer sucer eau verre
renouvelable renouveler qsp traitement poursuivre continuer arret reevaluer quotidien
"""
POSOLOGY_WORDS = frozenset(_POSOLOGY_WORDS_TEXT.split())
_FORM_ONLY_TEXT = "cp cpr cps comp comprime comprimes gel gelule gelules sachet sachets capsule capsules"
_POSOLOGY_SORTED = sorted(w for w in POSOLOGY_WORDS if len(w) >= 4)
_UNIT_WORDS_POSOLOGY = frozenset(_FORM_ONLY_TEXT.split())


# Letter pairs Tesseract reads for one letter (and back).
_GLYPH_PAIRS = (("rn", "m"), ("cl", "d"), ("vv", "w"), ("ii", "u"), ("li", "h"), ("in", "m"), ("ni", "m"))


@dataclass(frozen=True, slots=True)
class Fix:
    before: str
    after: str
    kind: str  # "number", "comma" (a decimal comma put back), "unit", "name", "posology", "matrix"


def unit_of(token: str) -> str | None:
    key = fold(token).rstrip(".,;:")
    if key in _UNIT_FIXES:
        return _UNIT_FIXES[key]
    if len(key) >= 8:
        for word in _UNIT_WORDS:
            if Levenshtein.distance(key, word) <= 2:
                return word
    return None


def as_number(token: str) -> str | None:
    """The number a token stands for, with letter-for-digit confusions undone; None if not a number."""
    core = token.rstrip(",;:")
    if core.endswith(".") and core[:-1].isdigit():
        core = core[:-1]  # "50. mg": a speck after the number, read as a stop
    if not core or not _NUMBERISH.match(core):
        return None
    if not _HAS_DIGIT.search(core) and len(core) > 2:
        return None  # "les", "Sl": words, not numbers, unless a unit follows a single glyph
    return core.translate(_DIGIT_LIKE)


def fix_strengths(tokens: list[str], fixes: list[Fix]) -> list[str]:
    """Numbers and units of the strength part of a drug line (tokens already split on spaces)."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        stuck = NAME_NUMBER.match(token)
        if stuck and i + 1 < len(tokens) and unit_of(tokens[i + 1]) is not None:
            # "KRKA5 mg": the space between the name and the strength was lost.
            fixes.append(Fix(token, f"{stuck.group(1)} {stuck.group(2)}", "number"))
            out.append(stuck.group(1))
            token = stuck.group(2)
        glued = GLUED.match(token)
        unit_form = _UNIT_FORM.match(token)
        if unit_form and out and as_number(out[-1]) is not None and unit_of(unit_form.group(1)) is not None:
            # "1 gcp": the unit and the form abbreviation without the space between them.
            new = [unit_of(unit_form.group(1)) or unit_form.group(1), unit_form.group(2) + unit_form.group(3)]
            fixes.append(Fix(token, " ".join(new), "number"))
            out.extend(new)
            i += 1
            continue
        with_form = GLUED_FORM.match(token)
        if with_form and unit_of(with_form.group(2)) is not None:
            # "10mgcp": number, unit and form abbreviation without their spaces.
            number = as_number(with_form.group(1)) or with_form.group(1)
            new = [
                number,
                unit_of(with_form.group(2)) or with_form.group(2),
                with_form.group(3) + with_form.group(4),
            ]
            fixes.append(Fix(token, " ".join(new), "number"))
            out.extend(new)
            i += 1
            continue
        if glued and unit_of(glued.group(2)) is not None:
            number = as_number(glued.group(1))
            unit = unit_of(glued.group(2))
            if number is not None and unit is not None:
                new = [number, unit + glued.group(3)]
                if new != [glued.group(1), glued.group(2) + glued.group(3)]:
                    fixes.append(Fix(token, " ".join(new), "number"))
                out.extend(new)
                i += 1
                continue
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        unit_next = unit_of(following) is not None
        # "2, 5 mg" / "2 ,5 mg": a decimal comma the OCR cut from its number.
        if (
            unit_next is False
            and i + 2 < len(tokens)
            and re.fullmatch(r"\d+,?", token)
            and re.fullmatch(r",?\d+", following)
            and (token.endswith(",") != following.startswith(","))
            and unit_of(tokens[i + 2]) is not None
        ):
            joined = token.rstrip(",") + "," + following.lstrip(",")
            fixes.append(Fix(f"{token} {following}", joined, "number"))
            out.append(joined)
            i += 2
            continue
        if (
            re.fullmatch(r"\d{1,3}", token)
            and i + 2 < len(tokens)
            and re.fullmatch(r"\d{1,2}", following)
            and unit_of(tokens[i + 2]) is not None
        ):
            # "7 5 mg": a decimal comma lost with nothing in its place (a thousands space has three
            # digits after it). Taken as 7,5 and flagged: 75 cannot be ruled out from the glyphs.
            joined = f"{token},{following}"
            fixes.append(Fix(f"{token} {following}", joined, "comma"))
            out.append(joined)
            i += 2
            continue
        if unit_next:
            number = as_number(token)
            if number is not None and number != token.rstrip(",;:"):
                fixes.append(Fix(token, number, "number"))
                token = number
        elif out and unit_of(token) is not None and as_number(out[-1]) is not None:
            unit = unit_of(token)
            assert unit is not None
            suffix = token[len(token.rstrip(",;:")) :]
            if (fold(token).rstrip(".,;:") not in ("mg", "g", "ml", "%") and unit not in _UNIT_WORDS) or (
                unit in _UNIT_WORDS and fold(token).rstrip(".,;:") != unit
            ):
                fixes.append(Fix(token, unit, "unit"))
            token = unit + suffix
        out.append(token)
        i += 1
    return out


class NameFixer:
    """Drug name words to the vocabulary of BDPM product stems and substance names."""

    def __init__(self, index: NameIndex) -> None:
        self.index = index
        self.vocabulary = index.vocabulary

    def _known(self, folded: str) -> bool:
        return len(folded) < 4 or self.index.known_word(folded)

    def fix_word(self, word: str) -> str | None:
        """The vocabulary word the OCR word stands for (upper case), or None when it is kept."""
        letters = word
        if _HAS_DIGIT.search(word) and sum(ch.isalpha() for ch in word) >= max(2, len(word) // 2):
            letters = word.translate(_LETTER_LIKE)
        folded = fold(letters)
        if not folded or " " in folded or not folded.isalpha():
            return letters.upper() if letters != word and folded.isalpha() else None
        if self._known(folded):
            return letters.upper() if letters != word else None
        for wrong, right in _GLYPH_PAIRS:
            if wrong in folded:
                candidate = folded.replace(wrong, right)
                if self._known(candidate):
                    return candidate.upper()
        for wrong, right in (("l", "i"), ("i", "l"), ("c", "e"), ("e", "c"), ("o", "a"), ("u", "v")):
            for pos in [m.start() for m in re.finditer(wrong, folded)]:
                candidate = folded[:pos] + right + folded[pos + 1 :]
                if self._known(candidate):
                    return candidate.upper()
        limit = 1 if len(folded) <= 6 else 2 if len(folded) <= 11 else 3
        found = process.extract(
            folded, self.vocabulary, scorer=Levenshtein.distance, score_cutoff=limit, limit=3
        )
        if not found:
            return letters.upper() if letters != word else None
        best = found[0][1]
        nearest = [w for w, d, _ in found if d == best]
        if len(nearest) == 1:
            return nearest[0].upper()
        return letters.upper() if letters != word else None

    def fix_words(self, words: Iterable[str], fixes: list[Fix]) -> list[str]:
        out = []
        for word in words:
            core = word.rstrip(",;:.")
            suffix = word[len(core) :]
            if fold_words(core) in FORM_WORDS or fold(core) in POSOLOGY_WORDS:
                out.append(word)  # "comprimé", "gél": a form, not a name to correct
                continue
            fixed = self.fix_word(core) if core else None
            if fixed is not None and fold(fixed) != fold(core):
                fixes.append(Fix(core, fixed, "name"))
                out.append(fixed + suffix)
            else:
                out.append(word)
        return out


_MATRIX_GLYPHS = re.compile(r"^[0-9OoDlIT|!/,.½]+(?:[-+][0-9OoDlIT|!/,.½]+){2,3}$")
_FRACTION = re.compile(r"^[0-9lI|!]/[0-9Z2]$")


def _known_posology(part: str) -> bool:
    return part in POSOLOGY_WORDS or bool(re.fullmatch(r"\d+(?:[.,/]\d+)?", part))


def _segment(folded: str) -> tuple[str, ...] | None:
    """The fewest posology words and numbers that spell ``folded``, or None."""
    best: list[tuple[str, ...] | None] = [None] * (len(folded) + 1)
    best[len(folded)] = ()
    for start in range(len(folded) - 1, -1, -1):
        options = [folded[start:end] for end in range(start + 1, min(len(folded), start + 14) + 1)]
        number = re.match(r"\d+(?:[.,/]\d+)?", folded[start:])
        for part in options:
            if part not in POSOLOGY_WORDS and not (number and part == number.group(0)):
                continue
            rest = best[start + len(part)]
            if rest is not None and (best[start] is None or len(rest) + 1 < len(best[start] or ())):
                best[start] = (part, *rest)
    return best[0]


def _split_glued(folded: str) -> str | None:
    """ "cple" -> "cp le", "2cplesoir" -> "2 cp le soir": posology words whose spaces the OCR lost."""
    parts = _segment(folded)
    return " ".join(parts) if parts is not None and len(parts) > 1 else None


_SHORT_FIXES = {"qu": "au", "ie": "le", "Ie": "le", "1e": "le", "lc": "le", "el": "et", "ep": "cp"}
# "cpri)", "gél/)": a unit and its "/j" ("par jour"), the slash read as a letter, the j as a bracket.
_PER_DAY = re.compile(r"(cpr?|comp|g[ée]l(?:ule)?s?|sachets?|capsules?)[/|il1I][j)]{1,2}")
_NUMBER_DOT_WORD = re.compile(r"^(\d+(?:/\d+)?)[.,]([^\W\d_]+)$")


def fix_posology_word(word: str) -> str:
    word = word.strip("“”\"'‘’`«»")
    # "cp/)j", "cp/)": the "j" of "/j" read as a parenthesis.
    word = re.sub(r"/\)j?$", "/j", re.sub(r"/j\)$", "/j", word))
    core = word.rstrip(",;:.")
    suffix = word[len(core) :]
    per_day = _PER_DAY.fullmatch(core)
    if per_day:
        return f"{per_day.group(1)}/j{suffix}"
    if core in _SHORT_FIXES:
        return _SHORT_FIXES[core] + suffix
    dotted = _NUMBER_DOT_WORD.match(core)
    if dotted:
        return f"{dotted.group(1)} {dotted.group(2)}{suffix}"  # "1.cp": a speck between number and unit
    elided = re.fullmatch(r"[lI|1]['’`]([^\W\d_]+)", core)
    if elided and fold(elided.group(1)) in POSOLOGY_WORDS and fold(elided.group(1))[0] not in "aeiouy":
        return f"1 {elided.group(1)}{suffix}"  # "l'gélule": French elides only before a vowel
    folded_core = fold(core)
    if folded_core and folded_core not in POSOLOGY_WORDS and not _known_posology(folded_core):
        split = _split_glued(folded_core)
        if split is not None:
            return split + suffix
    if core in ("l", "I", "|", "!", "]"):
        return "1" + suffix
    if core in ("O", "o") and suffix == "":
        return core
    if _MATRIX_GLYPHS.match(core) or _FRACTION.match(core):
        parts = re.split(r"([-+/])", core)
        fixed = "".join(p if p in "-+/" else p.replace("T", "1").translate(_DIGIT_LIKE) for p in parts)
        return fixed + suffix.replace(".", "")  # "0-0-1.": the parser reads a dot as a decimal
    folded = fold(core)
    if len(folded) >= 4 and folded.isalpha() and folded not in POSOLOGY_WORDS:
        for wrong, right in _GLYPH_PAIRS:
            if wrong in folded and folded.replace(wrong, right) in POSOLOGY_WORDS:
                return folded.replace(wrong, right) + suffix
        limit = 1 if len(folded) <= 4 else 2  # "maünr", "niatin" -> "matin"
        found = process.extract(
            folded, _POSOLOGY_SORTED, scorer=Levenshtein.distance, score_cutoff=limit, limit=2
        )
        if found and (len(found) == 1 or found[0][1] < found[1][1]):
            return found[0][0] + suffix
    return word


_MATRIX_PARTS = re.compile(r"^(?:\d|1/2)(?:[\s-]+(?:\d|1/2)){2,3}$")


_SEPARATOR = r"[-.:;·~_=]"
_ODD_SEPARATORS = re.compile(rf"^\d(?:{_SEPARATOR}\d){{2,3}}$")
_LOST_HYPHEN = re.compile(r"^(\d)-(\d)(\d)$|^(\d)(\d)-(\d)$")


def _broken_matrix(text: str) -> str | None:
    """A matin-midi-soir matrix with a hyphen read as another mark ("1-1.1", "0-0:1") or lost
    ("1-11", "0-61"): the matrix it stands for. The pipeline flags the line (a guess, however likely)."""
    if _ODD_SEPARATORS.match(text) and "-" in text and re.search(r"[^\d-]", text):
        return re.sub(_SEPARATOR, "-", text)
    lost = _LOST_HYPHEN.match(text)
    if lost:
        return "-".join(g for g in lost.groups() if g is not None)
    return None


_ONE_GLYPHS = frozenset(("À", "Ä", "Â", "Î", "Ï", "î", "ï", "í", "ì", "i", "l", "I", "|", "!", "]"))


def fix_posology(words: Iterable[str], fixes: list[Fix]) -> list[str]:
    out: list[str] = []
    words = list(words)
    joined = " ".join(words).strip(" .,")
    broken = _broken_matrix(joined)
    if broken is not None:
        fixes.append(Fix(joined, broken, "matrix"))
        return [broken]
    if _MATRIX_PARTS.match(joined) and " " in joined:
        # "1 0-1", "1 0 1": a matin-midi-soir matrix whose hyphens the OCR lost.
        matrix = re.sub(r"[\s-]+", "-", joined)
        fixes.append(Fix(joined, matrix, "posology"))
        return [matrix]
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        if i == 0:
            word = word.lstrip(".,;:'`‘’“”\"-_~|")  # a speck or a bullet before the posology
            if not word:
                continue
            if word.rstrip(".,;:") in _ONE_GLYPHS and fold(following).rstrip(".,") in _UNIT_WORDS_POSOLOGY:
                word = "1"  # "À cp matin", "Î, cp": one glyph before a unit is its dose, a "1"
            elif re.fullmatch(r"\d+[.,]", word) and fold(following)[:1].isalpha():
                word = word[:-1]  # "1. capsule": the dot is a speck
        if out and re.fullmatch(r"\d(?:-\d){1,2}-?", out[-1]) and re.fullmatch(r"\d", word):
            out[-1] = out[-1].rstrip("-") + "-" + word  # "0-0 1": a matrix cut by a lost hyphen
            continue
        fixed = fix_posology_word(word)
        if not fixed:
            continue
        if (
            fixed.endswith(".")
            and fold(fixed[:-1]) in POSOLOGY_WORDS
            and fold(following)[:1].isalpha()
            and following[:1].islower()
        ):
            fixed = fixed[:-1]  # "tous. les 2 jours": a sentence does not go on in lower case: a speck
        if fixed != word:
            fixes.append(Fix(word, fixed, "posology"))
        out.append(fixed)
    return out


_BULLET = re.compile(r"^(?:\d{1,2}\s*[)}\].:]+[.,]?|[-•*·>»°]|[a-zA-Z]\))\s*(?=[A-Za-zÀ-ÿ])")
# A whole token that is an item number or a bullet: "1)", "2}", ".3)", "•".
BULLET_TOKEN = re.compile(r"[.,'`‘’]?\d{1,2}[)}\].:]+[.,]?|[^\w\s]{1,2}")


def strip_bullet(text: str) -> str:
    """ "1) AMLODIPINE 5 mg" -> "AMLODIPINE 5 mg": the item number is not part of the drug's name."""
    return _BULLET.sub("", re.sub(r"^[^\w(]+", "", text)).strip()
