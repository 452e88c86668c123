"""Salt stripping and English INN candidates used to unify substances across sources."""

from __future__ import annotations

import pytest

from knowledge_base.builder.naming import english_candidates, moiety_name, strip_english_salts


@pytest.mark.parametrize(
    ("bdpm", "moiety"),
    [
        ("CHLORHYDRATE D'AMIODARONE", "amiodarone"),
        ("AMLODIPINE (BÉSILATE D')", "amlodipine"),
        ("PANTOPRAZOLE SODIQUE SESQUIHYDRATÉ", "pantoprazole"),
        ("CHLORURE DE POTASSIUM", "potassium"),
        ("MÉTOPROLOL (SUCCINATE DE)", "métoprolol"),
        ("ACIDE ZOLÉDRONIQUE MONOHYDRATÉ", "acide zolédronique"),
        ("LÉVOTHYROXINE SODIQUE", "lévothyroxine"),
        ("CROMOGLICATE DE SODIUM", "cromoglicate"),
        ("ACÉTYLSALICYLIQUE (ACIDE)", "acide acétylsalicylique"),
        # A parenthesis that says more than the salt is part of the name.
        ("ABCIXIMAB (C 7E3B FAB)", "abciximab (c 7e3b fab)"),
    ],
)
def test_moiety_name(bdpm, moiety):
    assert moiety_name(bdpm) == moiety


def test_english_candidates():
    assert "metformin" in english_candidates("metformine")
    assert "valproic acid" in english_candidates("acide valproïque")
    assert "follitropin beta" in english_candidates("follitropine beta")
    assert english_candidates("amiodarone")[0] == "amiodarone"


def test_strip_english_salts():
    assert strip_english_salts("levothyroxine sodium") == "levothyroxine"
    assert strip_english_salts("methyldopa (levorotatory)") == "methyldopa"
