"""Issue 8, PPP: the French PDF, parsed back with pdfplumber."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

import pdfplumber
import pytest

from iatro.errors import FieldError, IatroError
from rcp_workflow.ppp import labels
from rcp_workflow.ppp.pdf import render_pdf
from tests.rcp_workflow.ppp_examples import ITEMS, KB_VERSION, STOP_LAROXYL, iatroprev_plan, long_plan

DECISION_HEADER = ["Action", "Médicament", "Avant → après", "Motif", "Décision", "Responsable", "Act-IP"]


def _flat(text: str | None) -> str:
    return " ".join((text or "").split())


class Parsed:
    def __init__(self, data: bytes) -> None:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            self.metadata = dict(pdf.metadata)
            self.pages = [page.extract_text() or "" for page in pdf.pages]
            # Tables per page, each cell's wrapped lines joined back into one line.
            self.tables = [
                [[[_flat(cell) for cell in row] for row in table] for table in page.extract_tables()]
                for page in pdf.pages
            ]
        self.text = "\n".join(self.pages)
        self.flat = _flat(self.text)

    def decision_rows(self) -> list[list[str]]:
        return [
            row
            for page in self.tables
            for table in page
            if table and table[0] == DECISION_HEADER
            for row in table[1:]
        ]


@pytest.fixture(scope="module")
def plan_pdf() -> Parsed:
    return Parsed(render_pdf(iatroprev_plan()))


def test_header_names_the_plan_the_pseudonym_and_the_kb(plan_pdf: Parsed) -> None:
    first = _flat(plan_pdf.pages[0])
    assert "Plan pharmaceutique personnalisé" in first
    assert "PAT-7F3K2Q — 84 ans, femme" in first
    assert "Parcours Iatroprev — dossier IPV-2026-0042" in first
    assert "Date de la RCP 12/11/2026" in first
    assert "Émis le 14/11/2026 à 10:30 (UTC) par Julien Morel (Pharmacien hospitalier" in first
    assert "Version du plan 1" in first
    assert f"Base de connaissances {KB_VERSION}" in first


def test_every_decision_is_a_row_with_its_french_action_and_decision(plan_pdf: Parsed) -> None:
    rows = {row[1]: row for row in plan_pdf.decision_rows()}
    assert len(rows) == len(ITEMS)
    for item in ITEMS:
        row = rows[item.drug]
        assert row[0] == labels.ACTION_LABELS[item.action]
        assert row[4].startswith(labels.DECISION_LABELS[item.decision])
        assert item.reason in row[3]
        assert row[5] == labels.role_label(item.responsible_role)
        if item.comment:
            assert item.comment in row[4]
        if item.actip_problem:
            assert f"P {item.actip_problem}" in row[6]
        if item.actip_intervention:
            assert f"I {item.actip_intervention}" in row[6]
    assert rows["SERESTA 10 mg, comprimé"][2] == "1 cp le soir → arrêt"
    assert (
        rows["INEXIUM 40 mg, comprimé gastro-résistant"][2]
        == "40 mg, 1 cp le matin → INEXIUM 20 mg, 1 cp le matin"
    )
    assert {labels.ACTION_LABELS[i.action] for i in ITEMS} == {
        "Arrêter",
        "Débuter",
        "Modifier",
        "Poursuivre",
        "Surveiller",
    }


def test_medication_list_monitoring_follow_ups_participants_and_signatures(plan_pdf: Parsed) -> None:
    text = plan_pdf.flat
    for section in ("Liste des médicaments après le plan", "Surveillance", "Suivi", "Participants à la RCP"):
        assert section in text
    tables = [row for page in plan_pdf.tables for table in page for row in table]
    assert [
        "INEXIUM 20 mg, comprimé gastro-résistant",
        "1 cp le matin",
        "Modifié",
        "CIS 64578892 · ATC A02BC05",
    ] in tables
    assert [
        "UVEDOSE 100 000 UI, solution buvable en ampoule",
        "selon le RCP du produit",
        "Nouveau",
        "CIS 63489259 · ATC A11CC05",
    ] in tables
    assert [
        "kaliémie et créatininémie (µmol/L)",
        "1 fois par semaine pendant le premier mois, puis 1 fois par mois",
        "Médecin traitant",
    ] in tables
    assert ["Suivi J45", "27/12/2026"] in tables and ["Suivi J90", "10/02/2027"] in tables
    assert ["Éloïse Bérard", "Pharmacien d'officine", "Pharmacie du Marché"] in tables
    # One signature box per professional: name, role, date, signature.
    assert len(re.findall(r"Signature :", plan_pdf.text)) == 4
    for name in ("Dr Claire Vasseur", "Julien Morel", "Dr Hélène Garçon", "Éloïse Bérard"):
        assert f"Nom : {name}" in text


def test_every_page_has_its_number_and_the_footer(plan_pdf: Parsed) -> None:
    total = len(plan_pdf.pages)
    for number, page in enumerate(plan_pdf.pages, start=1):
        flat = _flat(page)
        assert f"page {number} / {total}" in flat
        assert f"Document généré par Iatro — base de connaissances {KB_VERSION}" in flat
        assert "ne contient aucune identité du patient" in flat


def test_the_renderer_prints_only_the_decisions_it_is_given() -> None:
    # A refused recommendation never reaches PPPDocument.items: drop one as the workflow would.
    kept = tuple(item for item in ITEMS if item is not STOP_LAROXYL)
    parsed = Parsed(render_pdf(replace(iatroprev_plan(), items=kept)))
    assert "LAROXYL" not in parsed.text
    assert len(parsed.decision_rows()) == len(kept)


def test_a_plan_without_decision_says_so() -> None:
    parsed = Parsed(render_pdf(replace(iatroprev_plan(), items=())))
    assert "Aucune décision retenue par la RCP." in parsed.flat
    assert parsed.decision_rows() == []


def test_sixty_items_span_pages_with_the_header_repeated() -> None:
    doc = long_plan(60)
    parsed = Parsed(render_pdf(doc))
    assert len(parsed.pages) > 3
    pages_with_decisions = [
        n for n, page in enumerate(parsed.tables) if any(t and t[0] == DECISION_HEADER for t in page)
    ]
    assert len(pages_with_decisions) >= 3  # the table split, and each part starts with its header row
    rows = parsed.decision_rows()
    assert [row[1] for row in rows] == [item.drug for item in doc.items]
    total = len(parsed.pages)
    assert all(f"page {n} / {total}" in _flat(p) for n, p in enumerate(parsed.pages, start=1))


def test_accented_and_typographic_characters_survive() -> None:
    comment = "Réévaluer à J45 : œdèmes, façon de prendre, créatininémie en µmol/L, DFG ≥ 30 ; Élodie."
    reason = "Kaliémie > 5 mmol/L & DFG < 30 mL/min : <b>pas</b> de balisage"
    item = replace(ITEMS[0], comment=comment, reason=reason)
    parsed = Parsed(render_pdf(replace(iatroprev_plan(), items=(item,))))
    [row] = parsed.decision_rows()
    assert comment in row[4]
    assert reason in row[3]  # free text is printed as written, never read as markup


def test_same_plan_same_bytes_and_metadata_from_the_plan() -> None:
    first, second = render_pdf(iatroprev_plan()), render_pdf(iatroprev_plan())
    assert first == second
    metadata = Parsed(first).metadata
    assert metadata["CreationDate"] == "D:20261114103000"
    assert metadata["Title"] == "Plan pharmaceutique personnalisé — PAT-7F3K2Q"
    assert render_pdf(replace(iatroprev_plan(), version=2)) != first


def test_an_unknown_actip_code_is_refused_naming_the_field() -> None:
    bad = replace(ITEMS[0], actip_problem="6.9")
    with pytest.raises(FieldError) as caught:
        render_pdf(replace(iatroprev_plan(), items=(ITEMS[1], bad)))
    assert caught.value.field == "items.1.actip_problem"


def test_a_missing_font_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IatroError, match="fonts-dejavu-core"):
        render_pdf(iatroprev_plan(), font_dir=tmp_path)
