"""Comparison of a PDF-built edition with the JSON-built one, every difference categorised.

A rule is **identical** when both editions have its ``rule_id`` (same unordered pair), the same
levels and, level by level, the same condition once white space is normalised. The normalisation
ignores white space altogether, not just its runs: the JSON parser dropped the line break between
two words in the conditions of 605 rules of 2020-10 ("adaptation de la posologie dumétoprolol"),
which a run-collapsing normalisation would count as 605 different texts. ``rules_identical_exact``
requires the same spacing too (runs collapsed to one space), and every rule identical only under
the looser test is listed as a ``whitespace-hyphenation`` difference. The rule ratio is over the
union of both editions' rule IDs.

An index substance is identical when both editions give it the same class labels; the ratio is over
the union of substances. Mechanisms and headings are compared too, for review only: they are not
part of either ratio.

Categories (figures and cases in ``ANSM_PDF_IMPORT.md``):

* ``whitespace-hyphenation`` — the texts differ by white space only: a line break the JSON parser
  dropped ("dumétoprolol"), a space after a line-break hyphen ("bêta- bloquants").
* ``json-artefact`` — the JSON parser cut the text wrongly and the PDF import did not: sentences
  of a class introduction read as entries, a condition (or its end) left in the mechanism, a level
  name left in the condition, a condition cut short, words missing.
* ``json-manual-fix`` — a hand-typed entry of the JSON (``curation/pddis_manually_extracted.json``):
  a person re-cut the PDF text (moving sentences between levels, mechanism and conduct, taking
  conditions from a class introduction); the PDF import keeps the PDF's own layout.
* ``parser-miss`` — anything no test below explains. The tests only ever explain a difference by
  a JSON-side cause that the texts themselves show, so an unexplained difference is never counted
  in the PDF import's favour.

A difference that is neither (both sources faithful, yet different: another printing of the
edition, say) would need a person to tell; there is none in 2020-10, so no category is kept for it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from iatro.kb.thesaurus import LEVEL_LABEL, InteractionRule, ThesaurusEdition, make_rule_id, name_key
from iatro.text import fold_words
from knowledge_base.builder.ansm import _edition_files, _read_json, _source_paths
from knowledge_base.builder.files import SOURCES_DIR

Category = Literal["whitespace-hyphenation", "json-artefact", "json-manual-fix", "parser-miss"]
CATEGORIES: tuple[Category, ...] = (
    "whitespace-hyphenation",
    "json-artefact",
    "json-manual-fix",
    "parser-miss",
)
Scope = Literal["rule", "mechanism", "heading", "index"]


@dataclass(frozen=True)
class Difference:
    scope: Scope
    key: str  # rule_id, heading name or index substance
    aspect: str  # "only-in-json", "only-in-pdf", "levels", "conditions", "mechanism", "note", "classes"…
    category: Category
    reason: str
    pdf: str = ""
    json: str = ""


@dataclass(frozen=True)
class Comparison:
    rules_pdf: int
    rules_json: int
    rules_compared: int  # union of rule IDs
    rules_identical: int  # white space ignored: the target figure
    rules_identical_exact: int  # same spacing too (runs of white space collapsed)
    index_pdf: int
    index_json: int
    index_compared: int  # union of substances
    index_identical: int
    mechanisms_identical: int = 0  # rules of both editions, white space ignored
    headings_compared: int = 0
    headings_identical: int = 0  # same "Voir aussi" references and introduction
    differences: tuple[Difference, ...] = field(default=())

    @property
    def rules_ratio(self) -> float:
        return self.rules_identical / self.rules_compared if self.rules_compared else 1.0

    @property
    def index_ratio(self) -> float:
        return self.index_identical / self.index_compared if self.index_compared else 1.0

    def of(self, scope: Scope, category: Category | None = None) -> list[Difference]:
        return [d for d in self.differences if d.scope == scope and category in (None, d.category)]

    def by_category(self, scope: Scope) -> dict[str, int]:
        counts = Counter(d.category for d in self.of(scope))
        return {category: counts[category] for category in CATEGORIES if counts[category]}

    def summary(self, details: bool = True) -> str:
        """The figures, then (``details``) one line per difference other than white space."""
        lines = [
            f"rules: {self.rules_identical}/{self.rules_compared} identical ({self.rules_ratio:.2%}), "
            f"{self.rules_identical_exact} with the same spacing; "
            f"PDF {self.rules_pdf}, JSON {self.rules_json}",
            f"index: {self.index_identical}/{self.index_compared} identical ({self.index_ratio:.2%}); "
            f"PDF {self.index_pdf}, JSON {self.index_json}",
            f"mechanisms identical: {self.mechanisms_identical}; "
            f"headings identical: {self.headings_identical}/{self.headings_compared}",
        ]
        scopes: tuple[Scope, ...] = ("rule", "mechanism", "heading", "index")
        lines += [f"{scope} differences: {self.by_category(scope)}" for scope in scopes]
        if details:
            lines += [
                f"  [{d.category}] {d.scope} {d.key} ({d.aspect}): {d.reason}"
                for d in self.differences
                if d.category != "whitespace-hyphenation"
            ]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------- texts


def normalise(text: str) -> str:
    """Runs of white space collapsed to one space: the exact test."""
    return " ".join(text.split())


def squeeze(text: str) -> str:
    """No white space at all: the identity test (see the module docstring)."""
    return "".join(text.split())


def _letters(text: str) -> str:
    """Folded letters and digits only, to find one text inside another whatever the punctuation,
    accents, white space and unreadable glyphs."""
    return fold_words(text).replace(" ", "")


def _conditions(rule: InteractionRule, key: Callable[[str], str]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for entry in rule.levels:
        merged.setdefault(entry.level, []).append(key(entry.condition))
    return {level: sorted(texts) for level, texts in merged.items()}


def _describe(rule: InteractionRule) -> str:
    return " | ".join(f"{LEVEL_LABEL[e.level]}: {normalise(e.condition)}" for e in rule.levels)


def _split_by_common_ends(longer: str, shorter: str) -> bool:
    """True when ``shorter`` is ``longer`` with one stretch of it left out."""
    prefix = 0
    while prefix < len(shorter) and longer[prefix] == shorter[prefix]:
        prefix += 1
    suffix = 0
    while suffix < len(shorter) - prefix and longer[-1 - suffix] == shorter[-1 - suffix]:
        suffix += 1
    return len(shorter) < len(longer) and prefix + suffix == len(shorter)


_LEVEL_NAME = re.compile(
    r"^(contre-indication|association d[ée]conseill[ée]e|pr[ée]caution d'emploi|a prendre en compte)\s*:?",
    re.IGNORECASE,
)


# ---------------------------------------------------------------------------------------- provenance


@dataclass(frozen=True)
class JsonProvenance:
    """Rules of the JSON edition whose text a person typed, or that a class introduction gave."""

    manual_fix_rule_ids: frozenset[str] = frozenset()
    level_artefact_rule_ids: frozenset[str] = frozenset()


def json_provenance(edition: str, sources_dir: Path = SOURCES_DIR) -> JsonProvenance:
    """Read from the shipped JSON sources of ``edition``.

    The manual fixes are keyed on the raw ``description`` of a JSON entry, as the original parser
    keys them; the class-introduction sentences carry the level "Il convient de prendre en compte".
    """
    _edition_files(edition)  # SourceError for an unknown edition
    thesaurus_path, _index, fixes_path, _alt = _source_paths(sources_dir, edition)
    entries: list[dict[str, Any]] = _read_json(thesaurus_path)
    fixed = {fix.get("description") for fix in _read_json(fixes_path) if isinstance(fix, dict)}
    manual: set[str] = set()
    artefacts: set[str] = set()
    for entry in entries:
        rule_id = make_rule_id(entry["main_drug"], entry["plus_drug"])
        if entry["description"] in fixed:
            manual.add(rule_id)
        levels = {fold_words(level["level"]) for level in entry["severity_levels"]}
        if "il convient de prendre en compte" in levels:
            artefacts.add(rule_id)
    return JsonProvenance(frozenset(manual), frozenset(artefacts))


# ---------------------------------------------------------------------------------------- rules


def _in_heading_note(edition: ThesaurusEdition, rule: InteractionRule, text: str) -> bool:
    letters = _letters(text)
    for name in (rule.a, rule.b):
        heading = edition.heading(name)
        if heading is not None and letters and letters in _letters(heading.note):
            return True
    return False


def _explain(pdf: InteractionRule, json: InteractionRule) -> str | None:
    """The JSON-side cut that explains every PDF level whose text differs, or None.

    Each PDF level is set against the JSON level of the same code (empty if the JSON lacks it). Its
    text must be the JSON text with the level name still at the JSON text's head, or the JSON text
    (possibly empty) followed by a rest that the JSON holds in its mechanism, or that it lost. A
    level only the JSON has is never explained here.
    """
    if not set(json.level_codes) <= set(pdf.level_codes):
        return None
    json_text = {e.level: e.condition for e in json.levels}
    mechanism = _letters(json.mechanism)
    reasons: list[str] = []
    for entry in pdf.levels:
        raw = json_text.get(entry.level, "")
        p, j = _letters(entry.condition), _letters(raw)
        if p == j and entry.level in json_text:
            continue
        if _LEVEL_NAME.match(raw) and _letters(_LEVEL_NAME.sub("", raw, count=1)) == p:
            reasons.append("the JSON condition still opens with the level name")
        elif p.startswith(j) and p[len(j) :] in mechanism:
            part = "the whole condition" if not j else "the end of the condition"
            lost = "" if entry.level in json_text else f", and the JSON lacks the level {entry.level}"
            reasons.append(f"{part} is in the JSON mechanism{lost}")
        elif j and p.startswith(j):
            rest = normalise(entry.condition)[len(normalise(raw)) :].strip()
            reasons.append(f"the JSON condition is cut short (the PDF goes on: {rest[:60]!r})")
        else:
            return None
    return "; ".join(dict.fromkeys(reasons)) or None


def _rule_difference(
    pdf: InteractionRule, json: InteractionRule, pdf_edition: ThesaurusEdition, provenance: JsonProvenance
) -> Difference | None:
    if _conditions(pdf, normalise) == _conditions(json, normalise):
        return None
    aspect = "levels" if set(pdf.level_codes) != set(json.level_codes) else "conditions"

    def diff(category: Category, reason: str) -> Difference:
        return Difference("rule", pdf.rule_id, aspect, category, reason, _describe(pdf), _describe(json))

    if _conditions(pdf, squeeze) == _conditions(json, squeeze):
        return diff("whitespace-hyphenation", "the conditions differ by white space only")
    if json.rule_id in provenance.level_artefact_rule_ids:
        extra = [e for e in json.levels if e not in pdf.levels]
        if extra and all(_in_heading_note(pdf_edition, pdf, e.condition) for e in extra):
            return diff(
                "json-artefact",
                "the JSON adds a sentence of the class introduction as a level; the PDF prints it "
                "under the heading, not as this pair's conduct",
            )
    if json.rule_id in provenance.manual_fix_rule_ids:
        return diff("json-manual-fix", "hand-typed JSON entry (pddis_manually_extracted.json)")
    explained = _explain(pdf, json)
    if explained is not None:
        return diff("json-artefact", explained)
    return diff("parser-miss", "not explained by any test")


def _mechanism_difference(
    pdf: InteractionRule, json: InteractionRule, provenance: JsonProvenance
) -> Difference | None:
    if squeeze(pdf.mechanism) == squeeze(json.mechanism):
        return None
    p, j = _letters(pdf.mechanism), _letters(json.mechanism)
    category: Category = "json-artefact"
    if json.rule_id in provenance.manual_fix_rule_ids:
        category, reason = "json-manual-fix", "hand-typed JSON entry (pddis_manually_extracted.json)"
    elif p == j:
        category, reason = "parser-miss", "the texts differ by punctuation only"
    elif p in j:
        reason = "the JSON mechanism also holds conduct text (see the rule's conditions)"
    elif _split_by_common_ends(p, j):
        reason = "the JSON mechanism lacks words the PDF prints"
    else:
        category, reason = "parser-miss", "not explained by any test"
    return Difference(
        "mechanism",
        pdf.rule_id,
        "mechanism",
        category,
        reason,
        normalise(pdf.mechanism),
        normalise(json.mechanism),
    )


def _compare_rules(
    pdf_edition: ThesaurusEdition, json_edition: ThesaurusEdition, provenance: JsonProvenance
) -> tuple[int, int, int, list[Difference]]:
    """(exact, mechanisms identical, union size, differences)."""
    pdf_rules = {r.rule_id: r for r in pdf_edition.rules}
    json_rules = {r.rule_id: r for r in json_edition.rules}
    exact = mechanisms = 0
    differences: list[Difference] = []
    for rule_id in sorted(pdf_rules.keys() | json_rules.keys()):
        pdf, json = pdf_rules.get(rule_id), json_rules.get(rule_id)
        if pdf is None or json is None:
            differences.append(_one_sided(rule_id, pdf, json, pdf_edition, provenance))
            continue
        mechanism = _mechanism_difference(pdf, json, provenance)
        if mechanism is None:
            mechanisms += 1
        else:
            differences.append(mechanism)
        difference = _rule_difference(pdf, json, pdf_edition, provenance)
        if difference is None:
            exact += 1
        else:
            differences.append(difference)
    return exact, mechanisms, len(pdf_rules.keys() | json_rules.keys()), differences


def _one_sided(
    rule_id: str,
    pdf: InteractionRule | None,
    json: InteractionRule | None,
    pdf_edition: ThesaurusEdition,
    provenance: JsonProvenance,
) -> Difference:
    if json is not None:
        if rule_id in provenance.level_artefact_rule_ids and all(
            _in_heading_note(pdf_edition, json, e.condition) for e in json.levels
        ):
            return Difference(
                "rule",
                rule_id,
                "only-in-json",
                "json-artefact",
                "a sentence of a class introduction, read as an entry by the JSON parser",
                "",
                _describe(json),
            )
        return Difference(
            "rule",
            rule_id,
            "only-in-json",
            "parser-miss",
            "no such pair in the PDF import",
            "",
            _describe(json),
        )
    assert pdf is not None
    return Difference(
        "rule", rule_id, "only-in-pdf", "parser-miss", "no such pair in the JSON", _describe(pdf)
    )


# ---------------------------------------------------------------------------------------- headings


def _compare_headings(
    pdf_edition: ThesaurusEdition, json_edition: ThesaurusEdition
) -> tuple[int, int, list[Difference]]:
    names = {name_key(n): n for n in (*json_edition.headings, *pdf_edition.headings)}
    identical = 0
    differences: list[Difference] = []
    for key in sorted(names):
        pdf, json = pdf_edition.heading(names[key]), json_edition.heading(names[key])
        if pdf is None or json is None:
            aspect = "only-in-json" if pdf is None else "only-in-pdf"
            differences.append(
                Difference("heading", names[key], aspect, "parser-miss", "in one edition only")
            )
        elif pdf.see_also != json.see_also:
            differences.append(
                Difference(
                    "heading",
                    pdf.name,
                    "see-also",
                    "parser-miss",
                    "different cross references",
                    " - ".join(pdf.see_also),
                    " - ".join(json.see_also),
                )
            )
        elif squeeze(pdf.note) != squeeze(json.note):
            if _letters(json.note) in _letters(pdf.note):
                category: Category = "json-artefact"
                reason = "the JSON introduction lacks text the PDF prints under the heading"
            else:
                category, reason = "parser-miss", "not explained by any test"
            differences.append(
                Difference(
                    "heading", pdf.name, "note", category, reason, normalise(pdf.note), normalise(json.note)
                )
            )
        else:
            identical += 1
    return len(names), identical, differences


# ---------------------------------------------------------------------------------------- index


def _compare_index(
    pdf_edition: ThesaurusEdition, json_edition: ThesaurusEdition
) -> tuple[int, int, list[Difference]]:
    pdf_index = {name_key(k): (k, v) for k, v in pdf_edition.substance_classes.items()}
    json_index = {name_key(k): (k, v) for k, v in json_edition.substance_classes.items()}
    identical = 0
    differences: list[Difference] = []
    for key in sorted(pdf_index.keys() | json_index.keys()):
        pdf, json = pdf_index.get(key), json_index.get(key)
        if pdf is None or json is None:
            name = (pdf or json or (key, ()))[0]
            aspect = "only-in-json" if pdf is None else "only-in-pdf"
            differences.append(Difference("index", name, aspect, "parser-miss", "in one index only"))
            continue
        if set(pdf[1]) == set(json[1]):
            identical += 1
            continue
        if {squeeze(label) for label in pdf[1]} == {squeeze(label) for label in json[1]}:
            category: Category = "whitespace-hyphenation"
            reason = "class labels differ by white space only"
        else:
            category, reason = "parser-miss", "different classes"
        pdf_text, json_text = " - ".join(sorted(pdf[1])), " - ".join(sorted(json[1]))
        differences.append(Difference("index", pdf[0], "classes", category, reason, pdf_text, json_text))
    return len(pdf_index.keys() | json_index.keys()), identical, differences


# ---------------------------------------------------------------------------------------- compare


def compare(
    pdf_edition: ThesaurusEdition,
    json_edition: ThesaurusEdition,
    provenance: JsonProvenance | None = None,
) -> Comparison:
    """Every difference between the two editions, categorised (see the module docstring).

    ``provenance`` names the JSON rules that are hand-typed or introduction artefacts; by default it
    is read from the shipped JSON sources of ``json_edition.edition``.
    """
    if provenance is None:
        provenance = json_provenance(json_edition.edition)
    exact, mechanisms, rules_compared, rule_differences = _compare_rules(
        pdf_edition, json_edition, provenance
    )
    headings_compared, headings_identical, heading_differences = _compare_headings(pdf_edition, json_edition)
    index_compared, index_identical, index_differences = _compare_index(pdf_edition, json_edition)
    whitespace_only = sum(
        d.scope == "rule" and d.category == "whitespace-hyphenation" for d in rule_differences
    )
    return Comparison(
        rules_pdf=len(pdf_edition.rules),
        rules_json=len(json_edition.rules),
        rules_compared=rules_compared,
        rules_identical=exact + whitespace_only,
        rules_identical_exact=exact,
        index_pdf=len(pdf_edition.substance_classes),
        index_json=len(json_edition.substance_classes),
        index_compared=index_compared,
        index_identical=index_identical,
        mechanisms_identical=mechanisms,
        headings_compared=headings_compared,
        headings_identical=headings_identical,
        differences=tuple(rule_differences + heading_differences + index_differences),
    )
