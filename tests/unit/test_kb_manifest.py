"""The manifest guards the KB: a tampered artefact, another schema or no KB at all is refused."""

from __future__ import annotations

import json

import pytest

from iatro.errors import KnowledgeBaseCorrupt, KnowledgeBaseMissing
from iatro.kb.manifest import SCHEMA_VERSION
from iatro.kb.store import TABLES, load_kb
from iatro.model.prescription import LineInput
from iatro.resolve.lines import Resolver
from tests.tiny_kb import write_tiny_kb


def test_tiny_kb_loads_and_resolves(tmp_path):
    kb = load_kb(write_tiny_kb(tmp_path / "kb"))
    assert kb.manifest.schema_version == SCHEMA_VERSION
    assert set(kb.manifest.editions()) >= {"bdpm", "ansm_thesaurus", "who_atc"}
    report = Resolver(kb).resolve(LineInput(text="laroxyl 25mg, 1 le soir"))
    assert report.status == "resolved" and report.substances[0].name == "amitriptyline"
    assert kb.find_substances("CHLORHYDRATE D'AMITRIPTYLINE")[0].name == "amitriptyline"


def test_tampered_artefact_is_refused(tmp_path):
    directory = write_tiny_kb(tmp_path / "kb")
    tables = directory / TABLES
    tables.write_bytes(tables.read_bytes().replace(b"LAROXYL", b"LAROXIL"))
    with pytest.raises(KnowledgeBaseCorrupt, match="does not match"):
        load_kb(directory)


def test_other_schema_is_refused(tmp_path):
    directory = write_tiny_kb(tmp_path / "kb")
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["schema_version"] = SCHEMA_VERSION + 1
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(KnowledgeBaseCorrupt, match="schema"):
        load_kb(directory)


def test_missing_kb_says_how_to_build(tmp_path):
    with pytest.raises(KnowledgeBaseMissing, match="kb build"):
        load_kb(tmp_path / "nothing")
