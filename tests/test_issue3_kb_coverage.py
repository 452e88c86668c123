"""Issue 3: the compiled KB's coverage figures, computed from the real sources."""

from __future__ import annotations

from iatro.kb.stats import coverage


def test_marketed_products_resolve_to_a_substance(kb):
    stats = coverage(kb)["products"]
    assert stats["marketed"] > 13000
    assert stats["marketed_with_substance_ratio"] >= 0.99


def test_single_substance_products_carry_atc5(kb):
    stats = coverage(kb)["atc"]
    # Homeopathic strains have no WHO ATC code at all; they are counted apart (see kb stats).
    assert stats["with_atc5_ratio"] >= 0.97


def test_every_ansm_substance_is_linked_or_explained(kb):
    stats = coverage(kb)["ansm_index"]
    assert stats["substances"] == 1084
    assert stats["unexplained"] == []
    assert stats["linked_to_bdpm"] + stats["ansm_only_with_reason"] == stats["substances"]


def test_anticholinergic_table_maps(kb):
    stats = coverage(kb)["anticholinergic_table"]
    assert stats["single_drug_entries_mapped_ratio"] >= 0.95
    assert stats["mapped_ratio"] >= 0.90


def test_substance_identity_spot_checks(kb):
    amitriptyline = kb.find_substances("amitriptyline")
    assert len(amitriptyline) == 1
    assert amitriptyline[0].atc[0] == "N06AA09"
    # BDPM writes the salt, the ANSM index the moiety: one KB substance, linked to its ANSM entry.
    amiodarone = kb.find_substances("chlorhydrate d'amiodarone")
    assert [s.name for s in amiodarone] == ["amiodarone"]
    assert "amiodarone" in amiodarone[0].ansm
    assert "C01BD01" in amiodarone[0].atc
    # A prodrug ester links to the ANSM entry of its moiety.
    assert "dabigatran" in kb.find_substances("dabigatran etexilate")[0].ansm
    # The ACB scale's US names and misspellings map through reviewed rows only.
    acb = {row["name"]: row for row in kb.raw["acb"]}
    assert kb.substances[acb["acetaminophen"]["substances"][0]].key == "paracetamol"
    assert acb["histidine"]["how"] != "name+spelling:histamine"


def test_timolol_eye_drops_get_the_ophthalmic_atc(kb):
    eye = [p for p in kb.products if p.marketed and p.name.startswith("TIMOPTOL") and "collyre" in p.name]
    assert eye and all(p.atc and p.atc.startswith("S01") for p in eye)
