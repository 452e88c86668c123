"""BDPM download files parsed into plain records (column layout: the official format note of 2014)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from iatro.errors import SourceError
from knowledge_base.builder.files import read_tsv


@dataclass
class Product:
    cis: str
    name: str
    form: str
    routes: tuple[str, ...]
    procedure: str
    marketed: bool
    holder: str
    presentations: list[Presentation] = field(default_factory=list)
    generic_group: str | None = None
    generic_type: str | None = None  # 0 princeps, 1 générique, 2 complémentarité posologique, 4 substituable
    atc_mitm: str | None = None

    @property
    def homeopathic(self) -> bool:
        return "homéo" in self.procedure.lower()


@dataclass(frozen=True)
class Presentation:
    cis: str
    cip7: str
    cip13: str
    label: str
    marketed: bool


@dataclass(frozen=True)
class CompositionRow:
    cis: str
    element: str
    code: str
    name: str
    dosage: str
    reference: str
    nature: str  # SA (substance active) or FT (fraction thérapeutique)
    link: str  # liaison number tying an SA to its FT


@dataclass
class Bdpm:
    products: dict[str, Product]
    compositions: dict[str, list[CompositionRow]]
    composition_edition: dict[str, str]  # cis -> which compositions file gave its rows


def _expect(row: list[str], n: int, path: Path) -> None:
    if len(row) < n:
        raise SourceError(f"{path.name}: expected {n} columns, got {len(row)}: {row[:3]}")


def read_products(path: Path) -> dict[str, Product]:
    products = {}
    for row in read_tsv(path):
        _expect(row, 11, path)
        products[row[0]] = Product(
            cis=row[0],
            name=row[1],
            form=row[2],
            routes=tuple(r.strip() for r in row[3].split(";") if r.strip()),
            procedure=row[5],
            marketed=row[6] == "Commercialisée",
            holder=row[10].strip(),
        )
    return products


def read_presentations(path: Path) -> list[Presentation]:
    out = []
    for row in read_tsv(path):
        _expect(row, 7, path)
        out.append(Presentation(row[0], row[1], row[6], row[2], row[4].startswith("Déclaration de commerc")))
    return out


def read_compositions(path: Path) -> dict[str, list[CompositionRow]]:
    out: dict[str, list[CompositionRow]] = defaultdict(list)
    for row in read_tsv(path):
        _expect(row, 8, path)
        out[row[0]].append(CompositionRow(*row[:8]))
    return dict(out)


def read_bdpm(sources_dir: Path, files: dict[str, str]) -> Bdpm:
    products = read_products(sources_dir / files["products"])
    for pres in read_presentations(sources_dir / files["presentations"]):
        if pres.cis in products:
            products[pres.cis].presentations.append(pres)
    for row in read_tsv(sources_dir / files["generics"]):
        if row[2] in products:
            products[row[2]].generic_group = row[0]
            products[row[2]].generic_type = row[3]
    for row in read_tsv(sources_dir / files["atc_mitm"]):
        if row[0] in products and len(row) > 1:
            products[row[0]].atc_mitm = row[1].strip()
    # The newest compositions file misses products authorised after it was taken; the previous
    # file fills those it knows, and the origin of each product's rows is recorded.
    compositions = read_compositions(sources_dir / files["compositions"])
    origin = dict.fromkeys(compositions, "compositions")
    for cis, rows in read_compositions(sources_dir / files["compositions_previous"]).items():
        if cis not in compositions:
            compositions[cis] = rows
            origin[cis] = "compositions_previous"
    return Bdpm(products, compositions, origin)
