"""An ANSM thesaurus edition named on the command line: compiled into the KB, or an edition JSON file.

``iatro kb diff OLD NEW`` takes either form for each side, so that an edition imported from a new
PDF (``iatro kb import-ansm … --out FILE.json``) can be compared with what the KB runs before it is
compiled in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from iatro.errors import FieldError, KnowledgeBaseCorrupt
from iatro.kb.manifest import read_manifest
from iatro.kb.store import thesaurus_artefact
from iatro.kb.thesaurus import ThesaurusEdition

EDITION_NAME = re.compile(r"^\d{4}-\d{2}$")


@dataclass(frozen=True)
class LoadedEdition:
    """An edition and where it came from: ``compiled`` (a KB artefact) or ``file``."""

    edition: ThesaurusEdition
    origin: str  # "compiled" | "file"
    location: str  # the edition name for a compiled one, the path for a file

    @property
    def label(self) -> str:
        return f"{self.edition.edition} ({self.origin}: {self.location})"


def read_edition_file(path: Path, field: str = "FILE") -> ThesaurusEdition:
    """A :class:`ThesaurusEdition` written by ``model_dump_json`` (``iatro kb import-ansm --out``)."""
    try:
        return ThesaurusEdition.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise FieldError(field, f"cannot read {path}: {exc.strerror}") from None
    except ValidationError as exc:
        raise FieldError(field, f"{path} is not a thesaurus edition JSON: {exc.errors()[0]['msg']}") from None


def compiled_editions(kb_dir: Path) -> list[str]:
    """Edition names compiled into the KB at ``kb_dir``, newest first."""
    names = (p.name.removeprefix("thesaurus-").removesuffix(".json") for p in kb_dir.glob("thesaurus-*.json"))
    return sorted((n for n in names if EDITION_NAME.match(n)), reverse=True)


def load_edition_spec(spec: str, kb_dir: Path, field: str) -> LoadedEdition:
    """``spec`` is an edition compiled into the KB ("2019-09") or the path of an edition JSON file.

    A compiled edition is read only after the manifest's hashes are checked, as ``load_kb`` does:
    a diff of a hand-edited artefact would report changes ANSM never made. The full KB is not
    loaded, since a diff needs only the two thesaurus artefacts.
    """
    path = Path(spec)
    if path.is_file():
        return LoadedEdition(read_edition_file(path, field), "file", str(path))
    if not EDITION_NAME.match(spec):
        raise FieldError(field, f"{spec!r} is neither a file nor an edition name (YYYY-MM)")
    manifest = read_manifest(kb_dir, verify=True)
    artefact = thesaurus_artefact(spec)
    if artefact not in manifest.artefacts:
        known = ", ".join(compiled_editions(kb_dir)) or "none"
        raise FieldError(field, f"edition {spec} is not compiled into {kb_dir} (compiled: {known})")
    try:
        edition = ThesaurusEdition.model_validate_json((kb_dir / artefact).read_bytes())
    except (OSError, ValidationError) as exc:
        raise KnowledgeBaseCorrupt(f"{artefact} in {kb_dir} cannot be read: {exc}") from exc
    return LoadedEdition(edition, "compiled", spec)
