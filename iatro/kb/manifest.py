"""The manifest of a compiled knowledge base: schema version, sources and artefact hashes.

Loading refuses a KB whose schema version differs from this code's, or whose artefacts do not hash
to what the manifest says: an engine must never run on a half-written or hand-edited KB.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from iatro.errors import KnowledgeBaseCorrupt, KnowledgeBaseMissing

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"


class SourceEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    title: str
    edition: str
    licence: str
    files: dict[str, str]  # path relative to knowledge_base/sources -> sha256


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_version: int
    kb_version: str
    built_at: str
    sources: dict[str, SourceEntry]
    artefacts: dict[str, str]  # file name -> sha256

    def editions(self) -> dict[str, str]:
        return {key: src.edition for key, src in self.sources.items()}


def sha256_path(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(kb_dir: Path, verify: bool = True) -> Manifest:
    path = kb_dir / MANIFEST
    if not path.exists():
        raise KnowledgeBaseMissing(f"no compiled knowledge base in {kb_dir} (run `iatro kb build`)")
    manifest = Manifest.model_validate_json(path.read_bytes())
    if manifest.schema_version != SCHEMA_VERSION:
        raise KnowledgeBaseCorrupt(
            f"knowledge base schema {manifest.schema_version} in {kb_dir}, this engine reads schema "
            f"{SCHEMA_VERSION}: rebuild with `iatro kb build`"
        )
    if verify:
        for name, expected in manifest.artefacts.items():
            artefact = kb_dir / name
            if not artefact.exists():
                raise KnowledgeBaseCorrupt(f"artefact {name} listed in the manifest is missing")
            if sha256_path(artefact) != expected:
                raise KnowledgeBaseCorrupt(f"artefact {name} does not match its manifest hash")
    return manifest
