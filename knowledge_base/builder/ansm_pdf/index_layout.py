"""Layout of the "Index des substances" PDF: substance -> the thesaurus classes it belongs to.

What the 2020-10 PDF prints (measured with pdfplumber):

* two cover pages, then per substance a bold 8 pt name at the left margin (x ≈ 29, lower case,
  rarely on two lines) and, under it, one regular 7 pt paragraph (x ≈ 41) that is one of
  "Interactions en propre seulement" (no class), "Voir : a - b - c" (classes only) or
  "Interactions en propre mais voir aussi : a - b" (own entry and classes);
* page furniture: "Page 2 sur 42" and the footer "ANSM - Octobre 2020 … Index des substances …
  2/42", regular 8 pt at the bottom of the page.

The class list is split on " - " once its lines are joined (a line that ends with a word hyphen,
"bêta-" / "bloquants", joins without a space, so a label is never cut in two).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from iatro.text import fold_words
from knowledge_base.builder.ansm_pdf.thesaurus_layout import (
    LEFT_MARGIN_X,
    NAME_SIZE,
    TEXT_SIZE,
    follows,
    is_furniture,
    join_words,
)
from knowledge_base.builder.ansm_pdf.words import Line, Word, group_lines, size_within

_SEPARATOR = re.compile(r"\s+-\s+")
#: "Voir :" and "… mais voir aussi :" both introduce the class list; the text before the colon
#: says whether the substance also has an entry of its own.
_OWN_ONLY = "interactions en propre seulement"


@dataclass(frozen=True)
class IndexEntry:
    substance: str
    classes: tuple[str, ...]
    own_entry: bool  # "Interactions en propre …": the substance is a heading of the thesaurus
    text: str
    page: int


@dataclass
class IndexLayout:
    entries: list[IndexEntry] = field(default_factory=list)
    furniture_words: int = 0
    skipped_words: int = 0
    problems: list[str] = field(default_factory=list)


def _is_name(line: Line) -> bool:
    return all(w.bold and size_within(w.size, NAME_SIZE) for w in line.words)


def _is_text(line: Line) -> bool:
    return all(not w.bold and size_within(w.size, TEXT_SIZE) for w in line.words)


def parse_description(text: str) -> tuple[tuple[str, ...], bool] | None:
    """(classes, own entry) of an index paragraph, None if it has none of the three forms."""
    head, colon, body = text.partition(":")
    key = fold_words(head)
    if not colon:
        return ((), True) if fold_words(text) == _OWN_ONLY else None
    if key == "voir":
        own = False
    elif key == "interactions en propre mais voir aussi":
        own = True
    else:
        return None
    classes = tuple(item.strip() for item in _SEPARATOR.split(body.strip()) if item.strip())
    return classes, own


def parse_index(pages: Sequence[Sequence[Word]]) -> IndexLayout:
    """Index entries in the order the PDF prints them."""
    layout = IndexLayout()
    name_lines: list[Line] = []
    text_lines: list[Line] = []

    def flush() -> None:
        if not name_lines:
            return
        name = join_words([line.text for line in name_lines])
        text = join_words([line.text for line in text_lines])
        parsed = parse_description(text)
        if parsed is None:
            layout.problems.append(f"{name} (p. {name_lines[0].page}): unreadable description {text!r}")
            parsed = ((), False)
        layout.entries.append(IndexEntry(name, parsed[0], parsed[1], text, name_lines[0].page))
        name_lines.clear()
        text_lines.clear()

    for page in pages:
        content: list[Word] = []
        for word in page:
            if is_furniture(word):
                layout.furniture_words += 1
            else:
                content.append(word)
        for line in group_lines(content):
            if _is_name(line) and line.x0 < LEFT_MARGIN_X:
                if name_lines and not text_lines and follows(line, name_lines[-1]):
                    name_lines.append(line)  # the name wraps
                    continue
                flush()
                name_lines.append(line)
            elif name_lines and _is_text(line):
                text_lines.append(line)
            elif name_lines:
                layout.problems.append(f"p. {line.page}: unexpected line {line.text!r}")
            else:
                layout.skipped_words += len(line.words)  # cover pages
    flush()
    return layout
