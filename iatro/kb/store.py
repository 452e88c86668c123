"""The compiled knowledge base, loaded: one object owns the tables, public objects are light views.

Artefacts (written by ``knowledge_base.builder.compile``):

- ``tables.json``: substances, products, presentations, ATC names, ANSM links, scales (orjson);
- ``product_substances.indptr.npy`` / ``.indices.npy``: products -> substance ids, CSR;
- ``manifest.json``: schema version, sources with editions and hashes, artefact hashes.

Everything the hot path needs is an integer id or a numpy array; strings stay for display.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from iatro.errors import KnowledgeBaseCorrupt
from iatro.kb.manifest import Manifest, read_manifest
from iatro.kb.qualifications import Qualification, load_qualifications
from iatro.kb.thesaurus import ThesaurusEdition
from iatro.settings import get_settings
from iatro.text import fold

TABLES = "tables.json"
QUALIFICATIONS = "ansm_qualifications.yaml"
ACTIVE_EDITION = "2020-10"
THESAURUS_EDITIONS = ("2020-10", "2019-09")


def thesaurus_artefact(edition: str) -> str:
    return f"thesaurus-{edition}.json"


PS_INDPTR = "product_substances.indptr.npy"
PS_INDICES = "product_substances.indices.npy"


@dataclass(frozen=True, slots=True)
class SubstanceInfo:
    id: int
    name: str  # French DCI, lower case (ANSM spelling when linked) or the WHO INN for WHO-only entries
    key: str
    atc: tuple[str, ...]
    name_en: str | None
    ansm: tuple[str, ...]  # ANSM index entries whose rules apply to this substance
    origin: str  # bdpm | ansm | who
    homeopathic: bool


@dataclass(frozen=True, slots=True)
class ComponentInfo:
    substance_id: int
    dosage: str
    reference: str
    mg: float | None  # dosage in mg per reference unit, when the dosage is a mass
    source: str


@dataclass(frozen=True, slots=True)
class ProductInfo:
    id: int
    cis: str
    name: str
    form: str
    routes: tuple[str, ...]
    marketed: bool
    atc: str | None
    atc_basis: str | None
    generic_group: str | None
    homeopathic: bool
    components: tuple[ComponentInfo, ...]
    stem: str  # folded name before the strength ("laroxyl", "amlodipine biogaran")

    @property
    def substance_ids(self) -> tuple[int, ...]:
        return tuple(c.substance_id for c in self.components)


@dataclass(frozen=True, slots=True)
class PresentationInfo:
    cip13: str
    cip7: str
    product_id: int
    label: str
    marketed: bool


class KnowledgeBase:
    """The loaded KB. Build it with :func:`load_kb`; it is read-only once built."""

    def __init__(
        self,
        manifest: Manifest,
        tables: dict[str, Any],
        indptr: npt.NDArray[np.int32],
        indices: npt.NDArray[np.int32],
        directory: Path | None = None,
    ) -> None:
        self.directory = directory
        self.manifest = manifest
        self.raw = tables
        self.substances: tuple[SubstanceInfo, ...] = tuple(
            SubstanceInfo(
                i,
                s["name"],
                s["key"],
                tuple(s["atc"]),
                s.get("name_en"),
                tuple(s.get("ansm", ())),
                s["origin"],
                bool(s.get("homeopathic")),
            )
            for i, s in enumerate(tables["substances"])
        )
        self.products: tuple[ProductInfo, ...] = tuple(
            ProductInfo(
                i,
                p["cis"],
                p["name"],
                p["form"],
                tuple(p["routes"]),
                p["marketed"],
                p.get("atc"),
                p.get("atc_basis"),
                p.get("generic_group"),
                bool(p.get("homeopathic")),
                tuple(ComponentInfo(*c) for c in p["components"]),
                p["stem"],
            )
            for i, p in enumerate(tables["products"])
        )
        self.presentations: tuple[PresentationInfo, ...] = tuple(
            PresentationInfo(*row) for row in tables["presentations"]
        )
        self.atc_names: dict[str, str] = tables["atc_names"]
        self.product_substances_indptr = indptr
        self.product_substances_indices = indices
        self.by_cis = {p.cis: p for p in self.products}
        self.by_cip13 = {p.cip13: p for p in self.presentations}
        self.by_cip7 = {p.cip7: p for p in self.presentations}
        synonyms: dict[str, list[int]] = defaultdict(list)
        for s, syns in zip(self.substances, tables["substance_synonyms"], strict=True):
            for syn in (s.key, *syns):
                if s.id not in synonyms[syn]:
                    synonyms[syn].append(s.id)
        self.substance_ids_by_name: dict[str, tuple[int, ...]] = {k: tuple(v) for k, v in synonyms.items()}
        self.ansm_index: dict[str, dict[str, Any]] = tables["ansm_index"]

    def thesaurus(self, edition: str | None = None) -> ThesaurusEdition:
        """An ANSM thesaurus edition compiled into this KB (the active one by default)."""
        wanted = edition or self.raw.get("ansm_active_edition", ACTIVE_EDITION)
        if self.directory is None or not (self.directory / thesaurus_artefact(wanted)).exists():
            raise KnowledgeBaseCorrupt(f"thesaurus edition {wanted} is not compiled into this knowledge base")
        return ThesaurusEdition.model_validate_json(
            (self.directory / thesaurus_artefact(wanted)).read_bytes()
        )

    def qualifications(self) -> dict[str, Qualification]:
        """Curated qualification data, minus the entries the build flagged for review."""
        if self.directory is None or not (self.directory / QUALIFICATIONS).exists():
            return {}
        stale = set(self.raw.get("ansm_stale_qualifications", ()))
        loaded = load_qualifications(self.directory / QUALIFICATIONS)
        return {rule_id: q for rule_id, q in loaded.items() if rule_id not in stale}

    @property
    def version(self) -> str:
        return self.manifest.kb_version

    def substance(self, substance_id: int) -> SubstanceInfo:
        return self.substances[substance_id]

    def find_substances(self, name: str) -> tuple[SubstanceInfo, ...]:
        return tuple(self.substances[i] for i in self.substance_ids_by_name.get(fold(name), ()))

    def substances_of_product(self, product_id: int) -> npt.NDArray[np.int32]:
        lo, hi = self.product_substances_indptr[product_id], self.product_substances_indptr[product_id + 1]
        return self.product_substances_indices[lo:hi]


def load_kb(kb_dir: Path | None = None, verify: bool = True) -> KnowledgeBase:
    """Load the compiled KB from ``kb_dir`` (default: the settings' ``kb_dir``), checking the manifest."""
    directory = kb_dir or get_settings().kb_dir
    manifest = read_manifest(directory, verify=verify)
    try:
        tables = orjson.loads((directory / TABLES).read_bytes())
        indptr = np.load(directory / PS_INDPTR, mmap_mode="r")
        indices = np.load(directory / PS_INDICES, mmap_mode="r")
    except (OSError, ValueError, orjson.JSONDecodeError) as exc:
        raise KnowledgeBaseCorrupt(f"cannot read the knowledge base in {directory}: {exc}") from exc
    return KnowledgeBase(manifest, tables, indptr, indices, directory)
