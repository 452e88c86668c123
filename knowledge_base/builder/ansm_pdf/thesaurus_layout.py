"""Layout of the thesaurus PDF: entry headings, "+" entries, the two columns of each entry.

What the 2020-10 PDF prints (measured with pdfplumber, A4 portrait, points from the top-left):

* page furniture: the page number at the top (regular 8 pt, top ≈ 33) and the footer
  "ANSM - Octobre 2020  www.ansm.sante.fr  2/256" (regular 8 pt, top ≈ 807). No other text is
  regular 8 pt, and the two cover pages hold no heading, so everything before the first heading is
  ignored.
* an entry heading: bold 10 pt upper case at the left margin (x ≈ 29), on a grey band, sometimes on
  two lines ("SUBSTANCES À ABSORPTION RÉDUITE … ANTIACIDES ET / ADSORBANTS"). Under it, before the
  first "+", regular 7 pt text: "Voir aussi : a - b - c", a class introduction, the class members
  "(a, b, c)". The introduction of ANTICHOLINESTÉRASIQUES contains two "+ NAME" lines in that
  regular 7 pt font: they are prose, not entries (the JSON parser read them as entries).
* an entry: a bold "+" at x ≈ 32 then the other name in bold (italic or not) 8 pt, sometimes
  wrapped on a second bold line; then two columns that interleave line by line —
  left (x ≈ 98): "nature du risque et mécanisme"; right (x ≈ 317): the level in bold 7 pt on the
  first line ("CONTRE-INDICATION", "Association DECONSEILLEE", "Précaution d'emploi",
  "A prendre en compte", or abbreviations for several levels: "CI - ASDEC - APEC"), then the
  conduct in regular 7 pt. With several levels the conduct has one paragraph per level, each
  opening with the level's name ("Contre-indication avec :", "Association déconseillée :").
* page breaks fall between entries in 2020-10; the pages are read as one stream all the same, so
  an entry or a heading text that ran over a break would be read whole.

Nothing here depends on absolute page coordinates except the left margin test (x < 35 for the
heading and the "+") and the page-furniture bands; the column boundary is taken from each entry's
own level marker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from iatro.kb.thesaurus import Level, LevelEntry
from iatro.text import fold_words
from knowledge_base.builder.ansm_pdf.words import Line, Word, group_lines, join_lines, size_within

#: Headings and "+" are set at the left margin (x ≈ 29 and 32); names and texts start right of it.
LEFT_MARGIN_X = 35.0
#: Page furniture sits above this top or below the bottom one (A4 page, 842 pt high).
FURNITURE_TOP = 60.0
FURNITURE_BOTTOM = 770.0

HEADING_SIZE = (9.5, 10.5)
NAME_SIZE = (7.5, 8.5)
TEXT_SIZE = (6.5, 7.5)

#: The level names as the PDF writes them (folded), in the header of a single-level entry and at
#: the head of each paragraph of a multi-level conduct.
LEVEL_NAMES: dict[str, Level] = {
    "contre indication": "contre-indication",
    "association deconseillee": "association-deconseillee",
    "precaution d emploi": "precaution-emploi",
    "a prendre en compte": "a-prendre-en-compte",
}
#: The abbreviations of a multi-level header ("CI - ASDEC - PE - APEC").
LEVEL_ABBREVIATIONS: dict[str, Level] = {
    "ci": "contre-indication",
    "asdec": "association-deconseillee",
    "pe": "precaution-emploi",
    "apec": "a-prendre-en-compte",
}


def is_furniture(word: Word) -> bool:
    """Page number and footer: the only regular 8 pt text, in the top or bottom band."""
    return (
        not word.bold
        and size_within(word.size, NAME_SIZE)
        and (word.top < FURNITURE_TOP or word.top > FURNITURE_BOTTOM)
    )


@dataclass(frozen=True)
class PdfHeading:
    """An entry heading and the text printed under it before its first "+" line."""

    name: str
    text: str
    page: int


@dataclass(frozen=True)
class PdfEntry:
    """One "+ PLUS" line under heading ``main``, with its two columns read."""

    main: str
    plus: str
    page: int
    level_header: str
    levels: tuple[LevelEntry, ...]
    mechanism: str
    conduct: str
    notes: tuple[str, ...] = ()


@dataclass
class ThesaurusLayout:
    headings: list[PdfHeading] = field(default_factory=list)
    entries: list[PdfEntry] = field(default_factory=list)
    furniture_words: int = 0
    skipped_words: int = 0  # before the first heading (cover pages)
    #: Entries whose layout departs from the rule, for review: "CI - ASDEC" with one paragraph
    #: named, a level named in the conduct but not in the marker, … (see split_conduct).
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------- texts


def join_words(parts: Sequence[str]) -> str:
    """One name or sentence from several lines: a break after a word hyphen joins without space."""
    text = ""
    for part in parts:
        if text.endswith("-") and len(text) > 1 and text[-2].isalpha():
            text += part
        else:
            text = f"{text} {part}" if text else part
    return text


def clean_text(text: str) -> str:
    """Spaces collapsed inside lines, at most one blank line in a row; words and breaks stay."""
    cleaned = "\n".join(" ".join(line.split()) for line in text.split("\n")).strip()
    while "\n\n\n" in cleaned:
        cleaned = cleaned.replace("\n\n\n", "\n\n")
    return cleaned


def clean_condition(text: str) -> str:
    """:func:`clean_text`, without a leading ":" (what followed a removed level name)."""
    cleaned = clean_text(text)
    return cleaned[1:].lstrip() if cleaned.startswith(":") else cleaned


#: Other ways the conduct of a multi-level entry opens a level's paragraph (folded), seen in 2020-10:
#: "Association nécessitant une précaution d'emploi :", "Associations déconseillées",
#: "Association à prendre en compte".
LEVEL_NAME_VARIANTS: dict[str, Level] = {
    "associations deconseillees": "association-deconseillee",
    "association necessitant une precaution d emploi": "precaution-emploi",
    "association a prendre en compte": "a-prendre-en-compte",
}


#: What a sentence that names a level in passing contains, folded without spaces: "contre-\n
#: indiquée", "(association déconseillée)", "précaution d'emploi", "à prendre en compte".
_LEVEL_STEMS: dict[Level, str] = {
    "contre-indication": "contreindi",
    "association-deconseillee": "deconseill",
    "precaution-emploi": "precautiondemploi",
    "a-prendre-en-compte": "prendreencompte",
}


def _level_names(level: Level) -> list[str]:
    names = [name for name, code in (*LEVEL_NAMES.items(), *LEVEL_NAME_VARIANTS.items()) if code == level]
    return sorted(names, key=len, reverse=True)  # longest first: "association a prendre…" before "a prendre…"


def _opens_with(text: str, names: Sequence[str]) -> str | None:
    key = fold_words(text) + " "
    return next((name for name in names if key.startswith(name + " ")), None)


def strip_level_name(text: str, name: str) -> str:
    """``text`` without the folded level ``name`` its first line opens with.

    Compared word by word on the folded text, since the PDF varies accents, case and hyphens
    ("Contre-indication", "CONTRE-INDICATION"); what follows the name on that line (" avec :",
    ":") stays.
    """
    first, newline, rest = text.partition("\n")
    target = name.split()
    words = first.split(" ")
    for count in range(1, len(words) + 1):
        folded = fold_words(" ".join(words[:count])).split()
        if folded == target:
            head = " ".join(words[count:])
            # "compte:" folds to "compte": the colon glued to the last word of the name stays.
            tail = words[count - 1][len(words[count - 1].rstrip(":")) :]
            return f"{tail}{' ' if tail and head else ''}{head}{newline}{rest}"
        if folded != target[: len(folded)]:
            break
    return text


def parse_level_header(header: str) -> tuple[Level, ...]:
    """The levels a bold marker names, worst first as printed; () if it names none."""
    key = fold_words(header)
    if key in LEVEL_NAMES:
        return (LEVEL_NAMES[key],)
    codes = [fold_words(part) for part in header.split(" - ")]
    if codes and all(code in LEVEL_ABBREVIATIONS for code in codes):
        return tuple(LEVEL_ABBREVIATIONS[code] for code in codes)
    return ()


def _find_level_line(lines: Sequence[Line], start: int, level: Level) -> tuple[int, bool] | None:
    """First line from ``start`` that opens ``level``'s paragraph, and whether its name heads it.

    The name heads a paragraph ("Contre-indication avec :") or a dash item ("- contre-indication
    avec l'acide acétylsalicylique …", AAS + METHOTREXATE). Only a heading name is removed from the
    condition: in an item it is part of the sentence.
    """
    names = _level_names(level)
    for index in range(start, len(lines)):
        text = lines[index].text
        # The dash first: folding drops it, so "- contre-indication" would also pass as a heading.
        if text.startswith("-"):
            if _opens_with(text[1:], names):
                return index, False
        elif _opens_with(text, names):
            return index, True
    return None


def split_conduct(lines: Sequence[Line], levels: Sequence[Level]) -> tuple[list[LevelEntry], list[str]]:
    """One condition per level, from the conduct column of an entry.

    * One level: the whole conduct, without the level's name when it opens the text ("A prendre
      en compte : - …").
    * Several levels: each level's paragraph opens with its name, searched in the order the header
      gives. The text before the first paragraph (a context such as "Avec le méthotrexate utilisé à
      des doses > 20 mg/semaine :") qualifies every paragraph and is kept in front of each.
    * The level marker is authoritative: a paragraph named after a level the marker does not print
      ("A prendre en compte : - avec l'oxybutynine" under "CI - ASDEC - PE") stays in the text of
      the paragraph before it, and is reported.
    * Several levels and no paragraph named: the PDF gives one text for all the levels (IPDE5 +
      inhibiteurs puissants du CYP3A4: "se reporter aux AMM"), so each level gets all of it.
    * A level without a paragraph while others have one takes the paragraphs that name it in passing
      (MÉDICAMENTS SÉDATIFS + AUTRES: "A prendre en compte : - pour tous … sauf : - avec l'oxybate de
      sodium (association déconseillée)"), so that its condition says when it applies; if none
      names it, it has no text (MÉDICAMENTS, BRADYKININE ET ANGIO-ŒDÈME: "CI - ASDEC", one
      paragraph "Contre-indication entre sacubitril et IEC": the ASDEC is everything else).
    """
    notes = [
        f"the conduct names {level}, which the level marker does not print"
        for level in LEVEL_ABBREVIATIONS.values()
        if level not in levels and _find_level_line(lines, 0, level) is not None
    ]
    if len(levels) == 1:
        text = join_lines(lines)
        found = _find_level_line(lines, 0, levels[0])
        if found == (0, True):
            text = strip_level_name(text, _opens_with(text, _level_names(levels[0])) or "")
        return [LevelEntry(level=levels[0], condition=clean_condition(text))], notes
    starts: list[tuple[int, bool] | None] = []
    cursor = 0
    for level in levels:
        found = _find_level_line(lines, cursor, level)
        starts.append(found)
        if found is None:
            notes.append(f"no paragraph named {level}")
        else:
            cursor = found[0] + 1
    found_starts = sorted(start for start, _ in filter(None, starts))
    if not found_starts:
        whole = clean_condition(join_lines(lines))
        return [LevelEntry(level=level, condition=whole) for level in levels], notes
    preamble = join_lines(lines[: found_starts[0]]) if found_starts[0] > 0 else ""
    if preamble:
        notes.append(f"context before the level paragraphs: {preamble!r}")
    paragraphs: dict[Level, str] = {}
    for level, found in zip(levels, starts, strict=True):
        if found is None:
            continue
        start, heads = found
        end = min((s for s in found_starts if s > start), default=len(lines))
        text = join_lines(lines[start:end])
        if heads:
            text = clean_condition(strip_level_name(text, _opens_with(text, _level_names(level)) or ""))
        paragraphs[level] = clean_condition(f"{preamble}\n{text}" if preamble else text)
    entries: list[LevelEntry] = []
    for level in levels:
        if level in paragraphs:
            entries.append(LevelEntry(level=level, condition=paragraphs[level]))
            continue
        # No paragraph of its own: the level takes the paragraphs that name it in passing
        # ("… sauf : - avec l'oxybate de sodium (association déconseillée)"), else no text.
        stem = _LEVEL_STEMS[level]
        mentions = [text for text in paragraphs.values() if stem in fold_words(text).replace(" ", "")]
        entries.append(LevelEntry(level=level, condition="\n\n".join(mentions)))
    return entries, notes


# ---------------------------------------------------------------------------------------- entries


def _parse_entry(main: str, plus: str, page: int, words: Sequence[Word]) -> PdfEntry:
    notes: list[str] = []
    marker_lines = group_lines(w for w in words if w.bold and size_within(w.size, TEXT_SIZE))
    if not marker_lines:
        mechanism = clean_text(join_lines(group_lines(words)))
        return PdfEntry(main, plus, page, "", (), mechanism, "", ("no level marker",))
    header = marker_lines[0]
    if len(marker_lines) > 1:
        notes.append(f"bold text besides the level marker: {[m.text for m in marker_lines[1:]]}")
    # The conduct column starts where the marker does; mechanism lines end well left of it.
    column_x = header.x0 - 1.0
    header_words = set(header.words)
    left = [w for w in words if w.x0 < column_x]
    right = [w for w in words if w.x0 >= column_x and w not in header_words]
    levels = parse_level_header(header.text)
    if not levels:
        notes.append(f"unknown level marker {header.text!r}")
    conduct_lines = group_lines(right)
    entries, split_notes = split_conduct(conduct_lines, levels) if levels else ([], [])
    notes.extend(split_notes)
    return PdfEntry(
        main=main,
        plus=plus,
        page=page,
        level_header=header.text,
        levels=tuple(entries),
        mechanism=clean_text(join_lines(group_lines(left))),
        conduct=join_lines(conduct_lines),
        notes=tuple(notes),
    )


def _is_heading(line: Line) -> bool:
    first = line.first
    return (
        first.bold and not first.italic and size_within(first.size, HEADING_SIZE) and first.x0 < LEFT_MARGIN_X
    )


def _is_plus(line: Line) -> bool:
    first = line.first
    return (
        first.text == "+" and first.bold and size_within(first.size, NAME_SIZE) and first.x0 < LEFT_MARGIN_X
    )


def follows(line: Line, previous: Line) -> bool:
    """``line`` is the next line of the same block: same page, one line pitch below (a wrapped
    heading is 11.9 pt below its first line, a wrapped name 9.4 pt; two headings are ~28 pt apart)."""
    return line.page == previous.page and line.top - previous.top < 1.5 * previous.first.size


def _is_name_line(line: Line) -> bool:
    return all(w.bold and size_within(w.size, NAME_SIZE) for w in line.words)


def parse_thesaurus(pages: Sequence[Sequence[Word]]) -> ThesaurusLayout:
    """Headings and entries of the thesaurus, in the order the PDF prints them."""
    layout = ThesaurusLayout()
    heading_lines: list[Line] = []  # the heading being read (one or two bold lines)
    heading_text: list[Line] = []
    plus_lines: list[Line] = []
    body: list[Word] = []
    state = "cover"  # cover -> heading -> heading-text | plus -> body -> …

    def flush_entry() -> None:
        if plus_lines:
            name = join_words([line.text for line in plus_lines]).removeprefix("+").strip()
            main = layout.headings[-1].name
            layout.entries.append(_parse_entry(main, name, plus_lines[0].page, body))
            for note in layout.entries[-1].notes:
                layout.notes.append(f"{main} + {name} (p. {plus_lines[0].page}): {note}")
        plus_lines.clear()
        body.clear()

    def flush_heading_text() -> None:
        if heading_lines:
            layout.headings.append(
                PdfHeading(_heading_name(heading_lines), join_lines(heading_text), heading_lines[0].page)
            )
            heading_lines.clear()
            heading_text.clear()

    for page in pages:
        content = []
        for word in page:
            if is_furniture(word):
                layout.furniture_words += 1
            else:
                content.append(word)
        for line in group_lines(content):
            if _is_heading(line):
                if state == "heading" and not heading_text and follows(line, heading_lines[-1]):
                    heading_lines.append(line)  # the heading wraps
                    continue
                flush_entry()
                flush_heading_text()
                heading_lines.append(line)
                state = "heading"
            elif state == "cover":
                layout.skipped_words += len(line.words)
            elif _is_plus(line):
                flush_entry()
                flush_heading_text()
                plus_lines.append(line)
                state = "plus"
            elif state == "plus" and _is_name_line(line) and follows(line, plus_lines[-1]):
                plus_lines.append(line)  # the name wraps
            elif state in ("plus", "body"):
                body.extend(line.words)
                state = "body"
            else:
                heading_text.append(line)
    flush_entry()
    flush_heading_text()
    return layout


def _heading_name(lines: Sequence[Line]) -> str:
    return join_words([line.text for line in lines])
