"""Issue 9: the ANSM thesaurus read from its official PDFs (2020-10), compared with the JSON import.

Reading the 257-page thesaurus takes 15-40 s depending on the machine's load, so the PDFs are read
once for the module (fixture ``imported``); the other tests reuse the result.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from iatro.errors import SourceError
from iatro.kb.thesaurus import InteractionRule, ThesaurusEdition, make_rule_id
from knowledge_base.builder.ansm import load_edition
from knowledge_base.builder.ansm_errata import load_errata
from knowledge_base.builder.ansm_pdf import (
    DEFAULT_ALT_CLASS_LABELS,
    Comparison,
    PdfImportReport,
    build_edition,
    compare,
    import_pdf,
    import_pdf_with_report,
)
from knowledge_base.builder.ansm_pdf.compare import squeeze
from knowledge_base.builder.ansm_pdf.importer import _read_alt_labels
from knowledge_base.builder.ansm_pdf.index_layout import parse_description, parse_index
from knowledge_base.builder.ansm_pdf.thesaurus_layout import parse_level_header, parse_thesaurus
from knowledge_base.builder.ansm_pdf.words import UNREADABLE, read_words

SOURCES = Path(__file__).resolve().parents[1] / "knowledge_base" / "sources"
PDF_DIR = SOURCES / "ansm_thesaurus" / "pdf" / "2020_10"
THESAURUS_PDF = PDF_DIR / "thesaurus-referentiel-national-des-interactions-medicamenteuses-20102020.pdf"
INDEX_PDF = PDF_DIR / "index-des-substances-20102020.pdf"


@pytest.fixture(scope="module")
def imported() -> tuple[ThesaurusEdition, PdfImportReport]:
    return import_pdf_with_report(THESAURUS_PDF, INDEX_PDF, "2020-10")


@pytest.fixture(scope="module")
def pdf(imported: tuple[ThesaurusEdition, PdfImportReport]) -> ThesaurusEdition:
    return imported[0]


@pytest.fixture(scope="module")
def report(imported: tuple[ThesaurusEdition, PdfImportReport]) -> PdfImportReport:
    return imported[1]


@pytest.fixture(scope="module")
def comparison(pdf: ThesaurusEdition) -> Comparison:
    # The parser is measured against the JSON as shipped, before the level errata (taken from this
    # PDF) are applied; test_errata_quote_the_pdf checks those.
    return compare(pdf, load_edition(SOURCES, "2020-10", errata_applied=False))


def rule(edition: ThesaurusEdition, a: str, b: str) -> InteractionRule:
    found = edition.rule(make_rule_id(a, b))
    assert found is not None, (a, b)
    return found


# --------------------------------------------------------------------------------- figures


def test_comparison_figures(comparison: Comparison) -> None:
    # 1,584 pairs in either edition; the JSON's extra one is a class introduction it read as an entry.
    assert (comparison.rules_compared, comparison.rules_pdf, comparison.rules_json) == (1584, 1583, 1584)
    # Identical = same pair, levels and conditions, white space ignored (the JSON dropped the line
    # break between two words in 605 rules, so only 952 are identical with the same spacing).
    assert comparison.rules_identical == 1557
    assert comparison.rules_identical_exact == 952
    assert comparison.rules_ratio >= 0.98
    # Every rule difference has a JSON-side cause shown by the texts; none is left to the parser.
    assert comparison.by_category("rule") == {
        "whitespace-hyphenation": 605,
        "json-artefact": 20,
        "json-manual-fix": 7,
    }
    assert not comparison.of("rule", "parser-miss")
    explained = (
        comparison.rules_identical
        + len(comparison.of("rule", "json-artefact"))
        + len(comparison.of("rule", "json-manual-fix"))
    )
    assert explained / comparison.rules_compared >= 0.99


def test_index_figures(comparison: Comparison) -> None:
    assert (comparison.index_compared, comparison.index_pdf, comparison.index_json) == (1081, 1081, 1081)
    assert comparison.index_ratio >= 0.995
    assert comparison.index_identical == 1081
    assert not comparison.of("index")


def test_mechanisms_and_headings_are_reviewed_too(comparison: Comparison) -> None:
    # Not part of the identity test: listed so that a reviewer sees them.
    assert comparison.mechanisms_identical == 1550
    assert comparison.by_category("mechanism") == {"json-artefact": 30, "json-manual-fix": 3}
    assert not comparison.of("mechanism", "parser-miss")
    assert (comparison.headings_identical, comparison.headings_compared) == (595, 597)
    assert comparison.by_category("heading") == {"json-artefact": 2}


def test_known_json_artefacts_are_categorised(comparison: Comparison) -> None:
    by_key = {d.key: d for d in comparison.of("rule")}
    # The two "Il convient de prendre en compte" sentences of the ANTICHOLINESTÉRASIQUES introduction.
    intro = by_key["ansm:anticholinesterasiques+autres medicaments anticholinesterasiques"]
    assert (intro.aspect, intro.category) == ("only-in-json", "json-artefact")
    assert by_key["ansm:anticholinesterasiques+medicaments atropiniques"].category == "json-artefact"
    # A condition the JSON parser left in the mechanism column.
    potassium = by_key["ansm:inhibiteurs de l enzyme de conversion+potassium"]
    assert potassium.category == "json-artefact" and "mechanism" in potassium.reason
    assert by_key["ansm:abiraterone+metoprolol"].category == "whitespace-hyphenation"  # "dumétoprolol"
    assert by_key["ansm:fibrates+inhibiteurs de l hmg coa reductase statines"].category == "json-manual-fix"


def test_report(report: PdfImportReport) -> None:
    assert (report.pages, report.index_pages) == (257, 43)
    assert (report.entries, report.headings, report.rules, report.index_entries) == (3137, 597, 1583, 1084)
    assert report.entries_without_level == 0
    assert report.index_problems == []
    assert report.shared is not None
    assert report.shared.see_also_unresolved == []
    assert report.shared.collisions == [
        ("déméclocycline", "demeclocycline"),
        ("évérolimus", "everolimus"),
        ("pipéracilline", "piperacilline"),
    ]
    # Irregular entries are listed for review (10 pairs, most in both directions), never dropped.
    assert len(report.layout_notes) == 26
    assert any(
        "ANTISPASMODIQUES URINAIRES" in note and "a-prendre-en-compte" in note for note in report.layout_notes
    )


# --------------------------------------------------------------------------------- spot checks


def test_simvastatin_strong_cyp3a4_inhibitors_is_contraindicated(pdf: ThesaurusEdition) -> None:
    simva = rule(pdf, "SIMVASTATINE", "INHIBITEURS PUISSANTS DU CYP3A4")
    assert simva.rule_id == "ansm:inhibiteurs puissants du cyp3a4+simvastatine"
    assert [e.level for e in simva.levels] == ["contre-indication"]
    assert (simva.a_kind, simva.b_kind) == ("class", "substance")
    assert "rhabdomyolyse" in simva.mechanism
    assert len(simva.directions) == 2
    # Through the index: clarithromycine is a strong CYP3A4 inhibitor.
    assert "inhibiteurs puissants du CYP3A4" in pdf.classes_of("clarithromycine")
    assert simva in pdf.rules_for_substance("clarithromycine")


def test_amiodarone_diltiazem_two_levels_with_their_conditions(pdf: ThesaurusEdition) -> None:
    amio = rule(pdf, "AMIODARONE", "DILTIAZEM")
    assert [(e.level, e.condition) for e in amio.levels] == [
        (
            "association-deconseillee",
            "avec :\n- le diltiazem IV\n"
            "Si l'association ne peut être évitée, surveillance clinique et ECG continu.",
        ),
        ("precaution-emploi", "avec :\n- le diltiazem per os\nSurveillance clinique et ECG."),
    ]
    # The mechanism keeps the PDF's paragraphs (the JSON glued them: "…ventriculairePour diltiazem").
    assert amio.mechanism.startswith("Pour diltiazem voie injectable")
    assert "auriculo-ventriculaire\n\nPour diltiazem per os" in amio.mechanism


def test_three_levels_and_a_context_before_the_paragraphs(pdf: ThesaurusEdition) -> None:
    aas_avk = rule(pdf, "ACIDE ACETYLSALICYLIQUE", "ANTICOAGULANTS ORAUX")
    assert aas_avk.level_codes == ("contre-indication", "association-deconseillee", "a-prendre-en-compte")
    assert aas_avk.levels[2].condition == "avec :\n- des doses antiagrégantes (de 50 mg à 375 mg par jour)"
    # "Avec le méthotrexate utilisé à des doses > 20 mg/semaine :" qualifies both levels.
    aas_mtx = rule(pdf, "ACIDE ACETYLSALICYLIQUE", "METHOTREXATE")
    assert all(
        e.condition.startswith("Avec le méthotrexate utilisé à des doses > 20") for e in aas_mtx.levels
    )
    assert "- contre-indication avec l'acide acétylsalicylique" in aas_mtx.levels[0].condition


def test_see_also(pdf: ThesaurusEdition) -> None:
    abiraterone = pdf.heading("ABIRATERONE")
    assert abiraterone is not None
    assert abiraterone.see_also == ("médicaments à l'origine d'un hypogonadisme masculin",)
    # A list that wraps: "… médicaments abaissant la" / "pression artérielle".
    carvedilol = pdf.heading("CARVEDILOL")
    assert (
        carvedilol is not None and carvedilol.see_also[-1] == "médicaments abaissant la pression artérielle"
    )
    # '(voir aussi "bradycardisants")' under a class heading.
    anticholinesterasiques = pdf.heading("ANTICHOLINESTÉRASIQUES")
    assert anticholinesterasiques is not None and anticholinesterasiques.see_also == ("bradycardisants",)
    assert (
        "médicaments à l'origine d'un hypogonadisme masculin"
        in rule(pdf, "ABIRATERONE", "RIFAMPICINE").see_also
    )


def test_class_heading_member_list_and_introduction(pdf: ThesaurusEdition) -> None:
    # "(acenocoumarol, apixaban, …)" is the index's business, not the note's.
    anticoagulants = pdf.heading("ANTICOAGULANTS ORAUX")
    assert anticoagulants is not None and anticoagulants.note == ""
    curares = pdf.heading("CURARES")
    assert curares is not None
    assert curares.note.startswith("Certaines substances peuvent modifier")
    assert "atracurium" not in curares.note
    # The two "+ NAME" lines of the ANTICHOLINESTÉRASIQUES introduction stay prose: no rule.
    anticholinesterasiques = pdf.heading("ANTICHOLINESTÉRASIQUES")
    assert anticholinesterasiques is not None
    assert "Il convient de prendre en compte l'association" in anticholinesterasiques.note
    assert (
        pdf.rule(make_rule_id("ANTICHOLINESTÉRASIQUES", "AUTRES MEDICAMENTS ANTICHOLINESTERASIQUES")) is None
    )
    atropiniques = rule(pdf, "ANTICHOLINESTÉRASIQUES", "MÉDICAMENTS ATROPINIQUES")
    assert [(e.level, e.condition) for e in atropiniques.levels] == [("a-prendre-en-compte", "")]


def test_two_line_names(pdf: ThesaurusEdition) -> None:
    long_name = (
        "SUBSTANCES À ABSORPTION RÉDUITE PAR LES TOPIQUES GASTRO-INTESTINAUX, ANTIACIDES ET ADSORBANTS"
    )
    # A "+" name on two bold lines (p. 241) and a heading on two lines (p. 222).
    topiques = rule(pdf, "TOPIQUES GASTRO-INTESTINAUX, ANTIACIDES ET ADSORBANTS", long_name)
    assert {(d.main, d.plus) for d in topiques.directions} == {
        (long_name, "TOPIQUES GASTRO-INTESTINAUX, ANTIACIDES ET ADSORBANTS"),
        ("TOPIQUES GASTRO-INTESTINAUX, ANTIACIDES ET ADSORBANTS", long_name),
    }
    assert pdf.heading(long_name) is not None
    assert pdf.kind_of(long_name) == "class"


def test_page_furniture_and_unreadable_glyphs(pdf: ThesaurusEdition, report: PdfImportReport) -> None:
    assert report.furniture_words > 0
    texts = [r.mechanism for r in pdf.rules] + [e.condition for r in pdf.rules for e in r.levels]
    assert not any("www.ansm.sante.fr" in text or "Octobre 2020" in text for text in texts)
    # The 8 symbols without a Unicode map are marked, not guessed and not control characters.
    assert not any(ch < " " and ch != "\n" for text in texts for ch in text)
    deferasirox = rule(pdf, "ACIDE ACETYLSALICYLIQUE", "DEFERASIROX")
    assert deferasirox.levels[0].condition.startswith(
        f"- Pour des doses anti-inflammatoires d'acide acétylsalicylique ({UNREADABLE}1g par"
    )


def test_same_model_as_the_json_import(pdf: ThesaurusEdition) -> None:
    json_edition = load_edition(SOURCES, "2020-10")
    assert pdf.substance_classes == json_edition.substance_classes  # order of the labels included
    assert pdf.class_labels == json_edition.class_labels
    assert pdf.substance_aliases == json_edition.substance_aliases
    assert pdf.alt_class_labels == json_edition.alt_class_labels
    assert set(pdf.headings) == set(json_edition.headings)
    # JSON: 284 / 449 / 632 / 219. AMINOSIDES + AUTRES AMINOSIDES is "CI - APEC" in the PDF (the JSON
    # lost its CI), and the JSON's ANTICHOLINESTÉRASIQUES + AUTRES … (APEC) is introduction prose.
    assert Counter(r.worst for r in pdf.rules) == {
        "contre-indication": 285,
        "association-deconseillee": 449,
        "precaution-emploi": 632,
        "a-prendre-en-compte": 217,
    }


def test_without_index_every_side_is_other() -> None:
    # Cheap: the layout of a few pages is enough to show what an edition without index holds.
    pages = read_words(THESAURUS_PDF, workers=1, pages=range(0, 6))
    report = PdfImportReport(edition="2020-10")
    edition = build_edition(parse_thesaurus(pages), None, "2020-10", "test", {}, report)
    assert edition.rules and edition.substance_classes == {}
    assert {r.a_kind for r in edition.rules} == {"other"}


# --------------------------------------------------------------------------------- determinism


def test_reading_does_not_depend_on_the_number_of_workers() -> None:
    pages = range(2, 14)
    assert read_words(THESAURUS_PDF, workers=1, pages=pages) == read_words(
        THESAURUS_PDF, workers=3, pages=pages
    )


def test_building_twice_gives_the_same_edition() -> None:
    thesaurus_pages = read_words(THESAURUS_PDF, workers=1, pages=range(0, 30))
    index_pages = read_words(INDEX_PDF, workers=1)
    alt_labels = _read_alt_labels(DEFAULT_ALT_CLASS_LABELS)
    editions = [
        build_edition(
            parse_thesaurus(thesaurus_pages),
            parse_index(index_pages),
            "2020-10",
            "test",
            alt_labels,
            PdfImportReport(edition="2020-10"),
        )
        for _ in range(2)
    ]
    assert editions[0].model_dump_json() == editions[1].model_dump_json()
    assert len(editions[0].rules) > 100


def test_edition_is_consistent(pdf: ThesaurusEdition) -> None:
    keys = [(r.a_key, r.b_key) for r in pdf.rules]
    assert keys == sorted(keys) and len({r.rule_id for r in pdf.rules}) == len(keys)  # as the JSON import
    assert all(r.rule_id == make_rule_id(r.a, r.b) for r in pdf.rules)
    assert sum(len(r.directions) for r in pdf.rules) == 3137


# --------------------------------------------------------------------------------- small parts


def test_level_markers() -> None:
    assert parse_level_header("CONTRE-INDICATION") == ("contre-indication",)
    assert parse_level_header("Association DECONSEILLEE") == ("association-deconseillee",)
    assert parse_level_header("Précaution d'emploi") == ("precaution-emploi",)
    assert parse_level_header("A prendre en compte") == ("a-prendre-en-compte",)
    assert parse_level_header("CI - ASDEC - APEC") == (
        "contre-indication",
        "association-deconseillee",
        "a-prendre-en-compte",
    )
    assert parse_level_header("Surveillance clinique") == ()


def test_index_descriptions() -> None:
    assert parse_description("Interactions en propre seulement") == ((), True)
    assert parse_description("Voir : anticoagulants oraux - antivitamines K") == (
        ("anticoagulants oraux", "antivitamines K"),
        False,
    )
    assert parse_description("Interactions en propre mais voir aussi : alcalinisants urinaires") == (
        ("alcalinisants urinaires",),
        True,
    )
    assert parse_description("Voir aussi quelque chose") is None


def test_missing_or_wrong_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError):
        import_pdf(tmp_path / "absent.pdf", None, "2020-10")
    not_a_pdf = tmp_path / "thesaurus.pdf"
    not_a_pdf.write_text("not a PDF", encoding="utf-8")
    with pytest.raises(SourceError):
        import_pdf(not_a_pdf, None, "2020-10")


def test_words_are_pdfplumbers_words() -> None:
    # words.py hands pdfplumber's word extractor the characters of page.layout directly instead of
    # going through page.chars (40 % faster); the words must be exactly those of page.extract_words.
    import pdfplumber

    ours = read_words(THESAURUS_PDF, workers=1, pages=range(2, 6))
    with pdfplumber.open(THESAURUS_PDF) as document:
        for page_words, page in zip(ours, document.pages[2:6], strict=True):
            theirs = page.extract_words(extra_attrs=["fontname", "size"])
            assert [(w.text, round(w.x0, 3), round(w.top, 3), w.size) for w in page_words] == [
                (
                    t["text"].replace("\x1a", UNREADABLE),
                    round(t["x0"], 3),
                    round(t["top"], 3),
                    round(t["size"], 1),
                )
                for t in theirs
            ]


def test_errata_quote_the_pdf(pdf: ThesaurusEdition) -> None:
    # Every corrected level is printed in the PDF for that rule, with the same condition text
    # (white space aside); the mechanism too. The PDF import glues the APEC of the urinary
    # antispasmodics to the PE text (no level marker of its own), so texts are matched within the
    # PDF rule's whole text, and levels against the PDF's levels plus the glued sub-heading.
    errata = load_errata("2020-10")
    assert {e.rule_id for e in errata} == {
        "ansm:aminosides+autres aminosides",
        "ansm:antispasmodiques urinaires+inhibiteurs puissants du cyp3a4",
    }
    corrected = load_edition(SOURCES, "2020-10")
    raw = load_edition(SOURCES, "2020-10", errata_applied=False)
    for erratum in errata:
        printed = pdf.rule(erratum.rule_id)
        assert printed is not None
        whole = squeeze(" ".join([*(e.condition for e in printed.levels), printed.mechanism]))
        pdf_levels = {e.level for e in printed.levels}
        if "A prendre en compte :" in " ".join(e.condition for e in printed.levels):
            pdf_levels.add("a-prendre-en-compte")
        assert {e.level for e in erratum.levels} == pdf_levels, erratum.rule_id
        for entry in erratum.levels:
            assert squeeze(entry.condition) in whole, (erratum.rule_id, entry.level)
        assert squeeze(erratum.mechanism) == squeeze(printed.mechanism)
        # The correction only ever adds levels the JSON lost; it never drops one.
        fixed = corrected.rule(erratum.rule_id)
        before = raw.rule(erratum.rule_id)
        assert fixed is not None and before is not None
        assert set(before.level_codes) < set(fixed.level_codes)
