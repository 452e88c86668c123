"""Words to rows, and rows to the parts of an ordonnance: zone headings, a table, footer lines.

Rows are visual lines: Tesseract's lines, merged when they sit at the same height (a date printed at
the right of the prescriber's name, a table cell far from its drug name). The page is then read top to
bottom; the drug items themselves are recognised by the pipeline with the resolver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from statistics import median

from rapidfuzz import fuzz

from iatro.text import fold
from ocr.tesseract import Word


@dataclass
class Row:
    words: list[Word] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def x0(self) -> int:
        return min(w.x0 for w in self.words)

    @property
    def x1(self) -> int:
        return max(w.x1 for w in self.words)

    @property
    def y0(self) -> int:
        return min(w.y0 for w in self.words)

    @property
    def y1(self) -> int:
        return max(w.y1 for w in self.words)

    @property
    def height(self) -> float:
        return float(median(w.height for w in self.words))

    @property
    def cy(self) -> float:
        return float(median(w.cy for w in self.words))


def _noise(word: Word) -> bool:
    """Specks read as punctuation: a lone mark with low confidence carries nothing."""
    return not any(ch.isalnum() for ch in word.text) and (word.conf < 60 or len(word.text) == 1)


def group_rows(words: list[Word]) -> list[Row]:
    """Visual rows, top to bottom, words left to right."""
    lines: dict[int, list[Word]] = {}
    for word in words:
        if not _noise(word):
            lines.setdefault(word.line_id, []).append(word)
    rows: list[Row] = []
    for line in sorted(lines.values(), key=lambda ws: median(w.cy for w in ws)):
        candidate = Row(sorted(line, key=lambda w: w.x0))
        for row in reversed(rows[-4:]):
            overlap = min(row.y1, candidate.y1) - max(row.y0, candidate.y0)
            apart = candidate.x0 >= row.x1 or candidate.x1 <= row.x0
            if apart and overlap >= 0.6 * min(row.height, candidate.height):
                row.words = sorted(row.words + candidate.words, key=lambda w: w.x0)
                break
        else:
            rows.append(candidate)
    return sorted(rows, key=lambda r: r.cy)


# -- zone headings of an ordonnance bizone ------------------------------------------------------


def zone_heading(text: str) -> str | None:
    """ "ald" for the upper zone's heading, "hors_ald" for the lower one's, else None."""
    folded = fold(text)
    if len(folded) < 12:
        return None
    if (
        fuzz.partial_ratio("sans rapport avec", folded) >= 85
        or fuzz.partial_ratio("maladies intercurrentes", folded) >= 85
    ):
        return "hors_ald"
    if (
        fuzz.partial_ratio("affection de longue duree", folded) >= 85
        or fuzz.partial_ratio("affection exonerante", folded) >= 85
    ):
        return "ald"
    return None


# -- table of a discharge ordonnance ------------------------------------------------------------

COLUMNS = ("matin", "midi", "soir", "coucher")


def column_labels(row: Row) -> dict[str, Word]:
    """The moment-of-day labels of a table header row, by name."""
    found: dict[str, Word] = {}
    for word in row.words:
        key = fold(word.text).strip(".:;,")
        for name in COLUMNS:
            if name not in found and (key == name or (len(key) >= 4 and fuzz.ratio(key, name) >= 80)):
                found[name] = word
                break
    return found


def is_table_header(row: Row) -> bool:
    """Column labels and nothing else: a posology row ("1 cp matin, midi et soir") names moments too,
    but with a dose, and its labels are not most of its words."""
    labels = column_labels(row)
    folded = fold(row.text)
    if len(labels) >= 2 and fuzz.partial_ratio("medicament", folded) >= 85:
        return True  # a speck read as a digit does not unmake the header
    if any(ch.isdigit() for ch in row.text):
        return False
    if len(labels) >= 1 and fuzz.partial_ratio("medicament", folded) >= 85:
        return True
    return len(labels) >= 3 and len(labels) >= 0.6 * len(row.words)


@dataclass(frozen=True, slots=True)
class Columns:
    centres: tuple[float, float, float, float]  # Matin, Midi, Soir, Coucher
    width: float
    left: float  # where the cells begin: words right of it are cells, not the drug's name

    def nearest(self, x: float) -> int | None:
        best = min(range(4), key=lambda i: abs(self.centres[i] - x))
        return best if abs(self.centres[best] - x) <= 0.6 * self.width else None


def columns_from(labels: dict[str, Word]) -> Columns | None:
    """Column centres from the labels found; a missing label is placed by the spacing of the others."""
    known = {COLUMNS.index(name): word.cx for name, word in labels.items()}
    if len(known) < 2:
        return None
    indices = sorted(known)
    steps = [(known[b] - known[a]) / (b - a) for a, b in pairwise(indices)]
    step = float(median(steps))
    if step <= 0:
        return None
    first = indices[0]
    origin = known[first] - first * step
    if len(known) >= 3:
        # Columns of such a table are evenly spaced: a label whose box the OCR got wrong (merged with
        # a speck or a neighbour) sits off the grid the others agree on, and is put back on it.
        origin = float(median(x - i * step for i, x in known.items()))
        known = {i: x for i, x in known.items() if abs(x - (origin + i * step)) <= 0.35 * step}
    centres = tuple(known.get(i, origin + i * step) for i in range(4))
    return Columns((centres[0], centres[1], centres[2], centres[3]), step, centres[0] - 0.5 * step)


# -- lines that are neither drugs nor posologies --------------------------------------------------

_FOOTER_WORDS = (
    "ordonnance", "renouvel", "urgence", "signature", "cachet", "poursuivre", "docteur", "praticien",
    "consultation", "prescriptions", "medicament",
)  # fmt: skip
_FOOTER_STARTS = ("dr", "docteur", "pr", "professeur", "a renouveler", "ar ", "qsp", "traitement a")


def is_footer(text: str) -> bool:
    folded = fold(text)
    return any(w in folded for w in _FOOTER_WORDS) or folded.startswith(_FOOTER_STARTS)
