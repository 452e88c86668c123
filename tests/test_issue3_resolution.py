"""Issue 3: prescription lines resolved to products and substances, on real BDPM names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iatro.model.prescription import LineInput

LINES = Path(__file__).parent / "data" / "free_text_lines.jsonl"


def _expected_sets(kb, row):
    return {
        frozenset(kb.substances[i].name for i in kb.by_cis[cis].substance_ids) for cis in row["accept_cis"]
    }


def test_free_text_set_resolves_to_the_right_substances(kb, engine):
    rows = [json.loads(line) for line in LINES.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 300
    right = wrong = 0
    wrong_lines = []
    for row in rows:
        report = engine.resolver.resolve(LineInput(text=row["text"]))
        if report.status != "resolved":
            continue
        if frozenset(s.name for s in report.substances) in _expected_sets(kb, row):
            right += 1
        else:
            wrong += 1
            wrong_lines.append(row["text"])
    rate = right / len(rows)
    print(f"free-text lines: {right}/{len(rows)} = {rate:.4f} right, {wrong} wrong")
    assert rate >= 0.97
    assert wrong == 0, wrong_lines


@pytest.mark.parametrize(
    ("text", "substances", "product_prefix"),
    [
        ("LAROXYL 25 mg cp, 1 le soir", ["amitriptyline"], "LAROXYL 25 mg"),
        ("kardégic 160mg 1 sach/j", ["acide acetylsalicylique"], "KARDEGIC 160 mg"),
        ("DOLIPRANE 1000", ["paracetamol"], "DOLIPRANE 1000 mg"),
        ("AMIODARONE ARROW LAB 200 mg", ["amiodarone"], "AMIODARONE ARROW LAB 200 mg"),
        ("PREVISCAN 20 mg, 3/4 cp le soir", ["fluindione"], "PREVISCAN 20 mg"),
        ("eliquis 2.5 mg comprimé pelliculé", ["apixaban"], "ELIQUIS 2,5 mg"),
        ("seresta 10mg cp", ["oxazepam"], "SERESTA 10 mg"),
    ],
)
def test_reference_lines(engine, text, substances, product_prefix):
    report = engine.resolver.resolve(LineInput(text=text))
    assert report.status == "resolved"
    assert [s.name for s in report.substances] == substances
    assert report.product is not None and report.product.name.startswith(product_prefix)


@pytest.mark.parametrize("text", ["Amlodipine 5mg", "amiodarone 200", "INDAPAMIDE LP 1,5 mg"])
def test_dci_lines_resolve_to_the_substance(engine, text):
    report = engine.resolver.resolve(LineInput(text=text))
    assert report.status == "resolved"
    assert len(report.substances) == 1


def test_typo_is_corrected_and_said(engine):
    report = engine.resolver.resolve(LineInput(text="ROSUVASTALINE 5 comprimé pelliculé"))
    assert report.status == "resolved"
    assert [s.name for s in report.substances] == ["rosuvastatine"]
    assert report.match is not None and "spelling" in report.match


def test_unknown_name_is_unresolved_not_dropped(engine):
    report = engine.resolver.resolve(LineInput(text="MIRACLOR 5 mg"), index=3)
    assert report.status == "unresolved"
    assert report.index == 3
    assert report.reason


def test_same_name_different_substances_is_ambiguous(engine):
    # Two BDPM products share this name but not their compositions: never pick one silently.
    report = engine.resolver.resolve(
        LineInput(text="ACIDE ALENDRONIQUE/CHOLECLCIFEROL (VITAMINE D3) 70 mg/5600 UI comprime")
    )
    assert report.status in ("ambiguous", "resolved")
    if report.status == "ambiguous":
        assert len({c.substances for c in report.candidates}) > 1


def test_codes(kb, engine):
    pres = next(p for p in kb.presentations if kb.products[p.product_id].name.startswith("LAROXYL 25 mg"))
    by_cip = engine.resolver.resolve(LineInput(cip13=pres.cip13))
    assert by_cip.status == "resolved" and by_cip.match == "cip13"
    by_cis = engine.resolver.resolve(LineInput(cis=kb.products[pres.product_id].cis))
    assert by_cis.product == by_cip.product.model_copy(update={"cip13": None})
    unknown = engine.resolver.resolve(LineInput(cip13="3400000000000"))
    assert unknown.status == "unresolved" and "CIP13" in (unknown.reason or "")


def test_substance_line(engine):
    report = engine.resolver.resolve(LineInput(substance="amiodarone"))
    assert report.status == "resolved"
    assert report.substances[0].atc == "C01BD01"


def test_microgram_dose_is_not_read_as_grams(engine):
    # Regression (golden reports, issue 4): "µ" was dropped with the accents, 75 µg read as 75 g.
    report = engine.resolver.resolve(LineInput(text="LEVOTHYROX 75 µg 1 cp le matin"))
    assert report.product is not None and "75 microgrammes" in report.product.name
    assert report.posology is not None and report.posology.mg_per_day is not None
    assert report.posology.mg_per_day < 0.1


@pytest.mark.parametrize(
    ("text", "form"),
    [
        ("ZECLAR 500 mg, 1 cp matin et soir", "comprimé"),  # not the IV powder of the same name
        ("DOLIPRANE 500 mg, 2 gél 3 fois par jour", "gélule"),
        ("TERALITHE LP 400 mg 1 cp le soir", "libération prolongée"),
    ],
)
def test_written_form_chooses_the_product(engine, text, form):
    report = engine.resolver.resolve(LineInput(text=text))
    assert report.product is not None and form in report.product.name
