"""The ANSM thesaurus import, on the shipped source files (editions 2020-10 and 2019-09)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from iatro.errors import SourceError
from iatro.kb.thesaurus import LEVELS, InteractionRule, ThesaurusEdition, make_rule_id
from knowledge_base.builder.ansm import ImportReport, edition_sha256, import_edition, load_edition

SOURCES = Path(__file__).resolve().parents[2] / "knowledge_base" / "sources"


@pytest.fixture(scope="module")
def imported() -> tuple[ThesaurusEdition, ImportReport]:
    return import_edition(SOURCES, "2020-10")


@pytest.fixture(scope="module")
def th(imported: tuple[ThesaurusEdition, ImportReport]) -> ThesaurusEdition:
    return imported[0]


@pytest.fixture(scope="module")
def report(imported: tuple[ThesaurusEdition, ImportReport]) -> ImportReport:
    return imported[1]


def rule(th: ThesaurusEdition, a: str, b: str) -> InteractionRule:
    found = th.rule(make_rule_id(a, b))
    assert found is not None, (a, b)
    return found


# --------------------------------------------------------------------------------- counts


def test_counts_2020(th: ThesaurusEdition, report: ImportReport) -> None:
    assert report.source_entries == 3139
    # SOURCE.md: 1,584 unordered pairs = 1,553 listed twice + 1 listed three times + 30 listed once.
    assert len(th.rules) == report.rules == 1584
    assert sum(len(r.directions) for r in th.rules) == 3139
    assert Counter(len(r.directions) for r in th.rules) == {2: 1553, 1: 30, 3: 1}
    assert len({r.rule_id for r in th.rules}) == 1584
    assert len(th.substance_classes) == 1081  # 1,084 index entries, 3 accent collisions merged
    assert len(th.class_labels) == 191  # 195 labels, 4 differ only by a PDF line-break space


def test_level_distribution_2020(th: ThesaurusEdition, report: ImportReport) -> None:
    # With the two level errata from the PDF (curated/ansm_errata.yaml): aminosides + autres
    # aminosides gains its CI, the urinary antispasmodics + CYP3A4 rule its PE and APEC.
    assert report.errata == [
        "ansm:aminosides+autres aminosides",
        "ansm:antispasmodiques urinaires+inhibiteurs puissants du cyp3a4",
    ]
    assert report.level_counts == {
        "contre-indication": 285,
        "association-deconseillee": 470,
        "precaution-emploi": 671,
        "a-prendre-en-compte": 229,
    }
    assert Counter(r.worst for r in th.rules) == {
        "contre-indication": 285,
        "association-deconseillee": 449,
        "precaution-emploi": 632,
        "a-prendre-en-compte": 218,
    }
    assert report.multi_level_rules == sum(len(r.level_codes) > 1 for r in th.rules) == 65
    for r in th.rules:
        assert r.levels and all(entry.level in LEVELS for entry in r.levels)
        ranks = [entry.rank for entry in r.levels]
        assert ranks == sorted(ranks, reverse=True), r.rule_id


# --------------------------------------------------------------------------------- spot checks


def test_simvastatin_strong_cyp3a4_inhibitors_is_contraindicated(th: ThesaurusEdition) -> None:
    r = rule(th, "SIMVASTATINE", "INHIBITEURS PUISSANTS DU CYP3A4")
    assert r.rule_id == "ansm:inhibiteurs puissants du cyp3a4+simvastatine"
    assert r.level_codes == ("contre-indication",)
    assert (r.a, r.a_kind, r.b, r.b_kind) == (
        "INHIBITEURS PUISSANTS DU CYP3A4",
        "class",
        "SIMVASTATINE",
        "substance",
    )
    assert "rhabdomyolyse" in r.mechanism
    # class-level rule reaches a member through the index
    assert r in th.rules_for_substance("clarithromycine")


def test_amiodarone_diltiazem_has_two_levels(th: ThesaurusEdition) -> None:
    r = rule(th, "DILTIAZEM", "AMIODARONE")
    assert r.level_codes == ("association-deconseillee", "precaution-emploi")
    deconseillee, precaution = r.levels
    assert "diltiazem IV" in deconseillee.condition
    assert "per os" in precaution.condition
    assert r.worst == "association-deconseillee" and r.rank == 3


def test_class_memberships(th: ThesaurusEdition) -> None:
    assert "inhibiteurs puissants du CYP3A4" in th.classes_of("clarithromycine")
    assert "médicaments atropiniques" in th.classes_of("AMITRIPTYLINE")
    citalopram = th.classes_of("citalopram")
    assert any(label.startswith("torsadogènes") for label in citalopram)
    assert "substances susceptibles de donner des torsades de pointes" in citalopram
    # "autres X" (altClassLabels) is carried with X
    assert "autres médicaments atropiniques" in th.classes_of("amitriptyline")
    assert th.alt_class_labels["autres médicaments atropiniques"] == ("médicaments atropiniques",)
    assert th.classes_of("no such substance") == ()


def test_accent_collisions_merge_class_lists(th: ThesaurusEdition, report: ImportReport) -> None:
    assert report.collisions == [
        ("déméclocycline", "demeclocycline"),
        ("évérolimus", "everolimus"),
        ("pipéracilline", "piperacilline"),
    ]
    for spelling in ("pipéracilline", "piperacilline", "PIPERACILLINE"):
        assert set(th.classes_of(spelling)) == {"pénicillines", "pipéracilline/tazobactam"}
    assert {"immunosuppresseurs", "médicaments, bradykinine et angio-œdème"} <= set(
        th.classes_of("everolimus")
    )
    assert {"cyclines"} < set(th.classes_of("demeclocycline"))
    assert th.substance_aliases["pipéracilline"] == ("piperacilline",)
    assert "piperacilline" not in th.substance_classes


def test_one_direction_rules_are_kept(th: ThesaurusEdition, report: ImportReport) -> None:
    assert len(report.one_direction) == 30
    one_way = [r for r in th.rules if r.one_direction]
    assert [r.rule_id for r in one_way] == report.one_direction
    theine = rule(th, "THÉINE", "DIPYRIDAMOLE")
    assert theine.one_direction and [d.main for d in theine.directions] == ["DIPYRIDAMOLE"]
    assert rule(th, "ANTIARYTHMIQUES", "AUTRES ANTIARYTHMIQUES").level_codes == (
        "contre-indication",
        "association-deconseillee",
        "a-prendre-en-compte",
    )
    oral = {r.rule_id for r in th.rules_for_name("médicaments administrés par voie orale")}
    assert make_rule_id("RÉSINES CHÉLATRICES", "MÉDICAMENTS ADMINISTRÉS PAR VOIE ORALE") in oral


def test_every_side_is_classified(th: ThesaurusEdition, report: ImportReport) -> None:
    others = set()
    for r in th.rules:
        for name, kind in ((r.a, r.a_kind), (r.b, r.b_kind)):
            assert kind == th.kind_of(name)
            if kind == "class":
                assert th.class_label(name) is not None, name
            elif kind == "substance":
                assert th.substance(name) is not None, name
            else:
                others.add(name)
    assert (
        sorted(others)
        == report.other_sides
        == [
            "ALCOOL (BOISSON OU EXCIPIENT)",
            "MÉDICAMENTS ADMINISTRÉS PAR VOIE ORALE",
            "MÉDICAMENTS UTILISÉS PAR VOIE VAGINALE",
            "PAMPLEMOUSSE (JUS ET FRUIT)",
            "PRÉSERVATIFS EN LATEX",
            "SELS DE FER PAR VOIE INJECTABLE",
            "THÉINE",
        ]
    )
    # the one name that is both an index substance and a class label
    assert report.dual_names == ["INSULINE"]
    assert th.kind_of("insuline") == "class"
    assert "INSULINE" in {r.a for r in th.rules_for_substance("insuline")} | {
        r.b for r in th.rules_for_substance("insuline")
    }
    assert th.rules_for_substance("insuline glargine")


def test_rule_ids_follow_the_documented_formula(th: ThesaurusEdition) -> None:
    for r in th.rules:
        assert r.rule_id == make_rule_id(r.a, r.b) == make_rule_id(r.b, r.a)
        assert r.rule_id == f"ansm:{r.a_key}+{r.b_key}" and r.a_key < r.b_key
        assert r.edition == "2020-10"


# --------------------------------------------------------------------------------- parser artefacts


def test_level_artefacts_become_a_prendre_en_compte(th: ThesaurusEdition, report: ImportReport) -> None:
    assert report.level_artefacts == [
        "ANTICHOLINESTÉRASIQUES + MEDICAMENTS ATROPINIQUES",
        "ANTICHOLINESTÉRASIQUES + AUTRES MEDICAMENTS ANTICHOLINESTERASIQUES",
    ]
    atropinic = rule(th, "ANTICHOLINESTÉRASIQUES", "MÉDICAMENTS ATROPINIQUES")
    assert len(atropinic.directions) == 3
    assert [e.level for e in atropinic.levels] == ["a-prendre-en-compte"]
    assert atropinic.levels[0].condition.startswith("Il convient de prendre en compte le risque")
    assert "moindre efficacité" in atropinic.mechanism
    same_class = rule(th, "ANTICHOLINESTÉRASIQUES", "AUTRES MEDICAMENTS ANTICHOLINESTERASIQUES")
    assert same_class.levels[0].condition.endswith("notamment digestifs.")  # member list not kept


def test_direction_disagreements_are_recorded(th: ThesaurusEdition, report: ImportReport) -> None:
    assert report.disagreements == {
        "ansm:anticholinesterasiques+medicaments atropiniques": ("conditions", "mechanism")
    }
    assert [r.rule_id for r in th.rules if r.disagreements] == list(report.disagreements)


def test_texts_are_cleaned_but_kept(th: ThesaurusEdition, report: ImportReport) -> None:
    for r in th.rules:
        for entry in r.levels:
            assert not entry.condition.startswith(":"), r.rule_id
            assert not entry.condition.endswith("nécessitant une"), r.rule_id
            assert entry.condition == entry.condition.strip()
    assert report.header_fragments_removed == 2  # AINS + METHOTREXATE, both directions
    ains_mtx = rule(th, "METHOTREXATE", "ANTI-INFLAMMATOIRES NON STÉROÏDIENS")
    assert ains_mtx.level_codes == ("association-deconseillee", "precaution-emploi")


def test_manual_fixes_are_already_in_the_shipped_json(report: ImportReport) -> None:
    assert report.manual_fixes_matched == 16
    assert report.manual_fixes_changed == 0
    # wordings of other editions (one with a phénylbutazone CI the 2020 PDF no longer has)
    assert len(report.manual_fixes_unmatched) == 4
    assert report.alt_labels_added == 0


def test_see_also_is_split_and_resolved(th: ThesaurusEdition, report: ImportReport) -> None:
    assert report.see_also_unresolved == []
    amiodarone = th.heading("amiodarone")
    assert amiodarone is not None
    assert amiodarone.see_also == (
        "antiarythmiques",
        "bradycardisants",
        "substances susceptibles de donner des torsades de pointes",
        "torsadogènes (sauf arsénieux, antiparasitaires, neuroleptiques, méthadone...)",
    )
    clomipramine = th.heading("CLOMIPRAMINE")
    assert clomipramine is not None
    assert "médicaments mixtes adrénergiques-sérotoninergiques" in clomipramine.see_also
    anticholinesterasiques = th.heading("ANTICHOLINESTÉRASIQUES")
    assert anticholinesterasiques is not None and anticholinesterasiques.see_also == ("bradycardisants",)
    cyp3a4 = th.heading("INHIBITEURS PUISSANTS DU CYP3A4")
    assert cyp3a4 is not None and cyp3a4.note.startswith("Certains médicaments possèdent")
    assert "(clarithromycine, cobicistat" not in cyp3a4.note
    assert rule(th, "SIMVASTATINE", "INHIBITEURS PUISSANTS DU CYP3A4").see_also == (
        "inhibiteurs de l'HMG-CoA réductase (statines)",
        "substrats à risque du CYP3A4",
    )


# --------------------------------------------------------------------------------- editions, determinism


def test_2019_edition_loads() -> None:
    th2019, report2019 = import_edition(SOURCES, "2019-09")
    assert th2019.edition == "2019-09"
    assert report2019.source_entries == 3035
    assert len(th2019.rules) == 1532
    assert len(report2019.one_direction) == 30
    assert report2019.collisions == [
        ("déméclocycline", "demeclocycline"),
        ("évérolimus", "everolimus"),
        ("pipéracilline", "piperacilline"),
    ]
    assert len(report2019.other_sides) == 7
    assert rule(th2019, "SIMVASTATINE", "INHIBITEURS PUISSANTS DU CYP3A4").level_codes == (
        "contre-indication",
    )


def test_loading_is_deterministic(th: ThesaurusEdition) -> None:
    again = load_edition(SOURCES, "2020-10")
    assert again == th
    assert again.model_dump() == th.model_dump()


def test_edition_hash() -> None:
    digest = edition_sha256(SOURCES, "2020-10")
    assert len(digest) == 64 and digest == edition_sha256(SOURCES / "ansm_thesaurus", "2020-10")
    assert digest != edition_sha256(SOURCES, "2019-09")


def test_unknown_edition_or_missing_files(tmp_path: Path) -> None:
    with pytest.raises(SourceError):
        load_edition(SOURCES, "2024-01")
    with pytest.raises(SourceError):
        load_edition(tmp_path, "2020-10")
    with pytest.raises(SourceError):
        edition_sha256(tmp_path, "2020-10")
