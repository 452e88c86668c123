"""A :class:`ThesaurusEdition` from the ANSM PDFs (thesaurus + index des substances).

:mod:`.thesaurus_layout` and :mod:`.index_layout` read the PDF pages; this module turns what they
read into the runtime model with the decisions of the JSON import (``knowledge_base/builder/ansm.py``,
``ANSM_IMPORT.md``). It calls that import's own merge functions rather than restating them, so that
the engine gets the same object whichever source an edition is built from:

* one rule per unordered pair of folded names; levels are the union of both listings, worst first,
  an empty condition dropped when the other listing gives text for the same level; distinct
  mechanisms joined by a blank line; what differed goes to ``disagreements``;
* the index merged on folded names (accent variants), with the "autres X" labels of
  ``curation/altClassLabels.json`` added to the members of X;
* sides classified class / substance / other against the index;
* headings: the "Voir aussi" references (each spelled as the index spells it), and a class's
  introduction as ``note`` without its "(member, …)" list.

Only the texts come from elsewhere: the PDF's words read in their columns, instead of a text dump
cut by regular expressions. The hand-typed fixes of ``pddis_manually_extracted.json`` are not
applied: they repair cuts of the JSON parser and are keyed on its text (see ``ANSM_PDF_IMPORT.md``).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iatro.errors import SourceError
from iatro.kb.thesaurus import (
    Heading,
    InteractionRule,
    RuleDirection,
    SideKind,
    ThesaurusEdition,
    make_rule_id,
    name_key,
)
from knowledge_base.builder.ansm import (
    ImportReport,
    _build_index,
    _clean,
    _disagreements,
    _display_names,
    _Listing,
    _merge_levels,
    _read_json,
    _resolve_see_also,
    _split_see_also,
    _strip_member_list,
)
from knowledge_base.builder.ansm_pdf.index_layout import IndexLayout, parse_index
from knowledge_base.builder.ansm_pdf.thesaurus_layout import ThesaurusLayout, parse_thesaurus
from knowledge_base.builder.ansm_pdf.words import read_words
from knowledge_base.builder.files import SOURCES_DIR

#: "autres X" -> X, shipped with the JSON sources (the PDFs print no such mapping; see
#: :func:`_with_alt_labels`).
DEFAULT_ALT_CLASS_LABELS = SOURCES_DIR / "ansm_thesaurus" / "curation" / "altClassLabels.json"

_SEE_ALSO_LINE = re.compile(r"^voir aussi\s*:", re.IGNORECASE)
_SEE_ALSO_PAREN = re.compile(r'^\(voir aussi\s*"([^"]+)"\)$', re.IGNORECASE)


@dataclass
class PdfImportReport:
    """What the PDF import met, for the build log and ANSM_PDF_IMPORT.md."""

    edition: str
    pages: int = 0
    index_pages: int = 0
    entries: int = 0  # "+" lines read
    headings: int = 0
    rules: int = 0
    index_entries: int = 0
    furniture_words: int = 0  # page numbers and footers dropped
    skipped_words: int = 0  # cover pages
    entries_without_level: int = 0  # not turned into rules (0 in 2020-10)
    #: Entries whose layout departs from the usual one, for review (see split_conduct).
    layout_notes: list[str] = field(default_factory=list)
    #: Index paragraphs that could not be read (0 in 2020-10).
    index_problems: list[str] = field(default_factory=list)
    seconds_reading: float = 0.0
    seconds_total: float = 0.0
    #: The JSON import's report, filled by the shared index and heading functions (accent
    #: collisions, label variants, "autres" labels added, unresolved "Voir aussi" items).
    shared: ImportReport | None = None


# ---------------------------------------------------------------------------------------- index


def _read_alt_labels(path: Path | None) -> dict[str, list[str]]:
    if path is None:
        return {}
    data: Any = _read_json(path)
    if not isinstance(data, dict) or not all(
        isinstance(mains, list) and all(isinstance(m, str) for m in mains) for mains in data.values()
    ):
        raise SourceError(f"{path}: expected a JSON object of label -> [labels]")
    return data


def _with_alt_labels(classes: Sequence[str], alt_labels: Mapping[str, Sequence[str]]) -> list[str]:
    """The classes of a substance plus every "autres X" label whose X is one of them.

    The PDF index prints X only, while rules are written against "AUTRES X" ("BRADYCARDISANTS +
    AUTRES BRADYCARDISANTS"): a member of X must carry that label to meet them. The JSON index
    carries it already (its parser added it), in the order of the classes it stands for; matching
    is on folded labels because the curation file drops some accents ("autres médicaments sedatifs").
    """
    added = [
        alt
        for label in classes
        for alt, mains in alt_labels.items()
        if name_key(label) in {name_key(main) for main in mains}
    ]
    return [*classes, *dict.fromkeys(added)]


# ---------------------------------------------------------------------------------------- headings


def _heading_parts(text: str) -> tuple[list[str], str]:
    """The "Voir aussi" items and the introduction of a heading text (member list removed).

    Substances print "Voir aussi : a - b" (wrapped over lines when long); classes print an
    introduction, '(voir aussi "x")' and/or their members "(a, b, c)" as the last lines.
    """
    lines = text.split("\n")
    items: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        paren = _SEE_ALSO_PAREN.match(line)
        if paren:
            items.append(paren.group(1))
        elif _SEE_ALSO_LINE.match(line):
            # The list runs on to a blank line; the JSON import's splitter undoes the line breaks
            # (a break after a word hyphen joins without a space) and cuts on " - ".
            block = [line]
            while index + 1 < len(lines) and lines[index + 1].strip():
                index += 1
                block.append(lines[index].strip())
            items.extend(_split_see_also("\n".join(block)))
        else:
            rest.append(lines[index])
        index += 1
    # The member list closes a class heading; the index holds the membership the engine uses.
    return items, _clean(_strip_member_list("\n".join(rest).strip()))


def _build_headings(
    layout: ThesaurusLayout,
    label_by_key: dict[str, str],
    display: dict[str, str],
    report: ImportReport,
) -> dict[str, Heading]:
    headings: dict[str, Heading] = {}
    for pdf_heading in layout.headings:
        name = display.get(name_key(pdf_heading.name), pdf_heading.name)
        if name in headings:
            continue
        items, note = _heading_parts(pdf_heading.text)
        see_also = tuple(
            dict.fromkeys(_resolve_see_also(item, label_by_key, display, report, name) for item in items)
        )
        headings[name] = Heading(name=name, see_also=see_also, note=note)
    return headings


# ---------------------------------------------------------------------------------------- edition


def build_edition(
    layout: ThesaurusLayout,
    index: IndexLayout | None,
    edition: str,
    source: str,
    alt_labels: Mapping[str, Sequence[str]],
    report: PdfImportReport,
) -> ThesaurusEdition:
    """The runtime model from the parsed layouts (no PDF reading here, so it is cheap to rerun)."""
    shared = ImportReport(edition=edition)
    report.shared = shared
    raw_index = [
        {"substance": entry.substance, "drug_classes": _with_alt_labels(entry.classes, alt_labels)}
        for entry in (index.entries if index else [])
    ]
    built_index = _build_index(raw_index, {alt: list(mains) for alt, mains in alt_labels.items()}, shared)
    label_by_key = built_index.label_by_key
    substance_keys = {name_key(name) for name in built_index.substance_classes}

    # The spelling of each name: its heading's, else the one printed most often.
    display = _display_names(
        [{"main_drug": e.main, "plus_drug": e.plus} for e in layout.entries]
        + [{"main_drug": h.name, "plus_drug": h.name} for h in layout.headings]
    )

    def kind(key: str) -> SideKind:
        if key in label_by_key:
            return "class"
        return "substance" if key in substance_keys else "other"

    headings = _build_headings(layout, label_by_key, display, shared)

    groups: dict[tuple[str, str], list[_Listing]] = {}
    for position, entry in enumerate(layout.entries):
        if not entry.levels:
            report.entries_without_level += 1  # its note says why; a rule needs a level
            continue
        first, second = sorted((name_key(entry.main), name_key(entry.plus)))
        groups.setdefault((first, second), []).append(
            _Listing(entry.main, entry.plus, position, entry.levels, entry.mechanism)
        )

    rules: list[InteractionRule] = []
    for (key_a, key_b), listings in sorted(groups.items()):
        a, b = display[key_a], display[key_b]
        see_also = tuple(
            dict.fromkeys(ref for name in (a, b) if name in headings for ref in headings[name].see_also)
        )
        rules.append(
            InteractionRule(
                rule_id=make_rule_id(a, b),
                edition=edition,
                a=a,
                b=b,
                a_kind=kind(key_a),
                b_kind=kind(key_b),
                levels=_merge_levels(listings),
                mechanism="\n\n".join(dict.fromkeys(x.mechanism for x in listings if x.mechanism)),
                see_also=see_also,
                directions=tuple(
                    RuleDirection(main=x.main, plus=x.plus, position=x.position) for x in listings
                ),
                disagreements=_disagreements(listings),
            )
        )

    report.entries = len(layout.entries)
    report.headings = len(layout.headings)
    report.rules = len(rules)
    report.index_entries = len(index.entries) if index else 0
    report.furniture_words = layout.furniture_words + (index.furniture_words if index else 0)
    report.skipped_words = layout.skipped_words + (index.skipped_words if index else 0)
    report.layout_notes = list(layout.notes)
    report.index_problems = list(index.problems) if index else []
    shared.source_entries = len(layout.entries)
    shared.rules = len(rules)
    shared.multi_level_rules = sum(len(rule.level_codes) > 1 for rule in rules)
    shared.level_counts = dict(Counter(entry.level for rule in rules for entry in rule.levels))
    return ThesaurusEdition(
        edition=edition,
        source=source,
        rules=tuple(rules),
        substance_classes=built_index.substance_classes,
        class_labels=tuple(sorted(label_by_key.values(), key=lambda s: (name_key(s), s))),
        substance_aliases=built_index.substance_aliases,
        alt_class_labels=built_index.alt_class_labels,
        headings=headings,
    )


def import_pdf_with_report(
    thesaurus_pdf: Path,
    index_pdf: Path | None,
    edition: str,
    *,
    alt_class_labels: Path | None = DEFAULT_ALT_CLASS_LABELS,
    workers: int | None = None,
) -> tuple[ThesaurusEdition, PdfImportReport]:
    """:func:`import_pdf`, plus what the import met (counts, layout notes, timings).

    ``alt_class_labels``: the "autres X" mapping (None: add no such label); ``workers``: processes
    that read the PDF pages (see :func:`.words.read_words`).
    """
    started = time.perf_counter()
    report = PdfImportReport(edition=edition)
    pages = read_words(thesaurus_pdf, workers)
    index_pages = read_words(index_pdf, workers) if index_pdf is not None else None
    report.seconds_reading = time.perf_counter() - started
    report.pages = len(pages)
    report.index_pages = len(index_pages) if index_pages is not None else 0
    layout = parse_thesaurus(pages)
    if not layout.entries:
        raise SourceError(f"{thesaurus_pdf}: no thesaurus entry found (not an ANSM thesaurus PDF?)")
    index = parse_index(index_pages) if index_pages is not None else None
    if index is not None and not index.entries:
        raise SourceError(f"{index_pdf}: no index entry found (not an ANSM index des substances PDF?)")
    names = thesaurus_pdf.name + (f" + {index_pdf.name}" if index_pdf is not None else "")
    source = f"ANSM, Thésaurus des interactions médicamenteuses, edition {edition}; PDF {names} (pdfplumber)"
    thesaurus = build_edition(layout, index, edition, source, _read_alt_labels(alt_class_labels), report)
    report.seconds_total = time.perf_counter() - started
    return thesaurus, report


def import_pdf(thesaurus_pdf: Path, index_pdf: Path | None, edition: str) -> ThesaurusEdition:
    """The thesaurus edition printed in ``thesaurus_pdf``, with the substance index of ``index_pdf``.

    Without an index the edition has its rules and headings but no substance → class index, and
    every rule side is of kind "other".
    """
    return import_pdf_with_report(thesaurus_pdf, index_pdf, edition)[0]
