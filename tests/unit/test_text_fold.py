"""Folding names into keys: the fast paths give what the plain definition gives, on any text."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from iatro.kb.yaml_tables import read_yaml
from iatro.text import fold, strip_accents

ROOT = Path(__file__).resolve().parents[2]


def _plain_strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@given(st.text(alphabet=st.characters(exclude_categories=("Cs",))))
def test_strip_accents_drops_exactly_the_combining_marks(text: str) -> None:
    assert strip_accents(text) == _plain_strip_accents(text)


@given(st.text(alphabet=st.sampled_from("aeÉÈêëçÇœŒµμ’' -.,%/+0123456789ÀÎôÛÿ\u0301\u0327ǅﬁ")))
def test_strip_accents_on_french_drug_names(text: str) -> None:
    assert strip_accents(text) == _plain_strip_accents(text)


def test_strip_accents_on_every_code_point() -> None:
    # Both decompose the same way; what is dropped is compared for every character Unicode knows.
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    assert strip_accents(every) == _plain_strip_accents(every)


def test_fold_keeps_its_documented_keys() -> None:
    assert fold("Acide ACÉTYLSALICYLIQUE") == "acide acetylsalicylique"
    assert fold("LÉVOTHYROX 75 µg, comprimé sécable") == "levothyrox 75 ug, comprime secable"
    assert fold("CŒUR  d’ŒDÈME") == "coeur d oedeme"


def test_the_c_yaml_reader_reads_the_curated_tables_as_the_python_one() -> None:
    paths = sorted(ROOT.glob("knowledge_base/**/*.yaml"))
    assert len(paths) >= 10  # the curated tables and the compiled KB's copies
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert read_yaml(text) == yaml.safe_load(text), path
