"""Words of an ANSM PDF, with their position and style, read by pdfplumber.

pdfplumber (on pdfminer.six) does all the PDF work: content streams, fonts, glyph positions. This
module only turns its words into small frozen records and groups them into lines, the unit both
layout parsers reason on.

Reading the 257 pages of the thesaurus costs ~20 s of CPU, nearly all of it in pdfminer's
content-stream interpreter. The pages are independent, so a pool of processes reads them (one
contiguous page range each) and the results are put back in page order: the output does not
depend on the number of workers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pdfplumber
from pdfminer.layout import LTChar, LTComponent, LTContainer
from pdfplumber.page import Page
from pdfplumber.utils.text import extract_words

from iatro.errors import SourceError

#: Words whose tops differ by less than this (points) are on one line. The "+" of an entry and its
#: bold-italic name differ by ~0.2 pt; consecutive lines of 7 pt text are 8.1 pt apart; the two
#: columns of an entry interleave (3.3 pt apart at the least) but are split before lines are made.
LINE_TOLERANCE = 2.0

#: Two words closer than this (points) touch: one word that a font change split in two.
ADJACENT_GAP = 0.5

#: A vertical gap between two lines of one column larger than this many font sizes is a blank
#: line: 7 pt text is set 8.1 pt apart, and 16.3 pt apart across a blank line.
PARAGRAPH_GAP = 1.75

#: What an unmapped glyph becomes. The 2020-10 thesaurus draws 8 symbols (in "(≥1g par prise",
#: AAS + DEFERASIROX, by the look of the same text elsewhere) in a subset font without a Unicode
#: map, and pdfminer returns their raw code, a control character. Guessing the symbol would write a
#: comparison sign into a dose threshold that the PDF does not state readably, so the text says
#: "unreadable" (U+FFFD) instead.
UNREADABLE = "\ufffd"

#: At most this many reading processes by default: beyond it, starting them costs more than it saves.
MAX_WORKERS = 4


@dataclass(frozen=True, slots=True)
class Word:
    """One word as pdfplumber extracts it: a run of glyphs between spaces, in one font."""

    page: int  # 1-based
    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    font: str  # PostScript name without the subset prefix ("ABCDEF+")
    size: float  # rounded to 0.1 pt: pdfplumber reports 8.000000000000014 next to 8.0

    @property
    def bold(self) -> bool:
        return "Bold" in self.font

    @property
    def italic(self) -> bool:
        return "Oblique" in self.font or "Italic" in self.font


@dataclass(frozen=True, slots=True)
class Line:
    """Words of one page whose tops agree within :data:`LINE_TOLERANCE`, left to right."""

    words: tuple[Word, ...]

    @property
    def page(self) -> int:
        return self.words[0].page

    @property
    def top(self) -> float:
        return min(word.top for word in self.words)

    @property
    def x0(self) -> float:
        return self.words[0].x0

    @property
    def first(self) -> Word:
        return self.words[0]

    @property
    def text(self) -> str:
        # Words are split at every font change (see _read_pages), so two of them can touch: "(",
        # an unreadable symbol, "1g". Only a real gap (a space is ~1.9 pt wide at 7 pt) is a space.
        parts: list[str] = []
        previous: Word | None = None
        for word in self.words:
            if previous is not None and word.x0 - previous.x1 > ADJACENT_GAP:
                parts.append(" ")
            parts.append(word.text)
            previous = word
        return "".join(parts)


def size_within(size: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= size <= bounds[1]


def _font_name(raw: str) -> str:
    # Subset fonts are named "ABCDEF+Helvetica"; the prefix changes between files, the style does not.
    prefix, plus, rest = raw.partition("+")
    return rest if plus and len(prefix) == 6 and prefix.isalpha() and prefix.isupper() else raw


def _readable(text: str) -> str:
    return "".join(UNREADABLE if ord(ch) < 32 else ch for ch in text)


def _page_chars(page: Page) -> list[dict[str, Any]]:
    """The characters of a page with the keys pdfplumber's word extractor reads.

    ``page.chars`` would give them too, but it converts every attribute of every pdfminer object
    (colours, graphic state, marked content) into a dict first: 40 % of the reading time for keys
    no one here uses. The coordinates are computed as pdfplumber computes them (top-left origin,
    MediaBox offset), and tests/test_issue9 checks that the words are the same.
    """
    height = float(page.height)
    mb_x0, mb_top = float(page.mediabox[0]), float(page.mediabox[1])
    chars: list[dict[str, Any]] = []

    def walk(objects: Iterable[LTComponent]) -> None:
        for obj in objects:
            if isinstance(obj, LTChar):
                top = height - obj.y1 + mb_top
                chars.append(
                    {
                        "text": obj.get_text(),
                        "x0": obj.x0 + mb_x0,
                        "x1": obj.x1 + mb_x0,
                        "top": top,
                        "bottom": height - obj.y0 + mb_top,
                        "doctop": top,  # one page at a time: the page top is the document top
                        "upright": obj.upright,
                        "fontname": obj.fontname,
                        "size": obj.size,
                    }
                )
            elif isinstance(obj, LTContainer):
                walk(obj)  # a form XObject (LTFigure) holds its own characters

    walk(page.layout)
    return chars


def _read_pages(path: str, first: int, last: int) -> list[list[Word]]:
    """Words of pages first..last (0-based, inclusive) of one PDF; runs in a worker process."""
    pages: list[list[Word]] = []
    with pdfplumber.open(path) as pdf:
        for number in range(first, last + 1):
            page = pdf.pages[number]
            pages.append(
                [
                    Word(
                        page=number + 1,
                        text=_readable(str(raw["text"])),
                        x0=float(raw["x0"]),
                        x1=float(raw["x1"]),
                        top=float(raw["top"]),
                        bottom=float(raw["bottom"]),
                        font=_font_name(str(raw["fontname"])),
                        size=round(float(raw["size"]), 1),
                    )
                    # pdfplumber's own word extractor (default tolerances). Splitting words at
                    # font changes keeps a bold level marker apart from regular text.
                    for raw in extract_words(_page_chars(page), extra_attrs=["fontname", "size"])
                ]
            )
            # Drops pdfplumber's per-page caches; otherwise every page's objects stay in memory
            # until the file is closed.
            page.close()
    return pages


def _page_count(path: Path) -> int:
    with pdfplumber.open(path) as pdf:
        return len(pdf.pages)


def default_workers() -> int:
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(available, MAX_WORKERS))


def read_words(path: Path, workers: int | None = None, pages: range | None = None) -> list[list[Word]]:
    """The words of the pages of ``path`` (all, or the 0-based ``pages``), page by page.

    ``workers`` processes read contiguous page ranges (default: the CPUs this process may use, at
    most :data:`MAX_WORKERS`); ``1`` reads in this process. The result does not depend on it.
    Processes are spawned, not forked (a forked child would inherit the locks of the parent's
    threads), so a script that calls this at import time needs the usual ``__main__`` guard.
    """
    if not path.is_file():
        raise SourceError(f"ANSM PDF missing: {path}")
    try:
        count = _page_count(path)
        wanted = range(count) if pages is None else range(max(pages.start, 0), min(pages.stop, count))
        if not wanted:
            return []
        workers = max(1, min(default_workers() if workers is None else workers, len(wanted)))
        if workers == 1:
            return _read_pages(str(path), wanted.start, wanted.stop - 1)
        size = len(wanted)
        firsts = [wanted.start + size * i // workers for i in range(workers)]
        lasts = [wanted.start + size * (i + 1) // workers - 1 for i in range(workers)]
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            chunks = pool.map(_read_pages, [str(path)] * workers, firsts, lasts)
            return [page for chunk in chunks for page in chunk]
    except SourceError:
        raise
    except Exception as exc:  # pdfminer's errors (PDFSyntaxError, PSEOF…) share no useful base class
        raise SourceError(f"cannot read PDF {path}: {exc}") from exc


def group_lines(words: Iterable[Word]) -> list[Line]:
    """Lines of the given words (one column, one or more pages), top to bottom, left to right."""
    lines: list[list[Word]] = []
    for word in sorted(words, key=lambda w: (w.page, w.top, w.x0)):
        current = lines[-1] if lines else None
        if (
            current is not None
            and current[0].page == word.page
            and word.top - current[0].top < LINE_TOLERANCE
        ):
            current.append(word)
        else:
            lines.append([word])
    return [Line(tuple(sorted(line, key=lambda w: w.x0))) for line in lines]


def join_lines(lines: Sequence[Line]) -> str:
    """Text of consecutive lines of one column: "\\n" between lines, "\\n\\n" at a blank line.

    A blank line is a gap above :data:`PARAGRAPH_GAP` font sizes on one page; at a page break the
    gap means nothing and is a plain line break.
    """
    parts: list[str] = []
    previous: Line | None = None
    for line in lines:
        if previous is not None:
            blank = (
                line.page == previous.page and line.top - previous.top > PARAGRAPH_GAP * previous.first.size
            )
            parts.append("\n\n" if blank else "\n")
        parts.append(line.text)
        previous = line
    return "".join(parts)
