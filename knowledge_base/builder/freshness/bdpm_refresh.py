"""``iatro kb refresh-bdpm DIR``: rebuild the KB from a newer BDPM download, and say what changed.

``build`` takes its sources directory as an argument but reads the file names from
``knowledge_base/sources.yaml`` (``load_registry()`` with no path), so other BDPM files cannot be
named to it. This wrapper gives it a temporary sources directory instead: every shipped source file
is symlinked under its usual relative name, and the five BDPM files of the registry are replaced by
the new download's, xz-compressed where the registry name ends in ``.xz`` (the reader decompresses
by suffix; encodings and CRLF are left to ``files.read_text`` as for the shipped files). The hook
that would avoid the copy is ``build(..., registry=...)`` in ``compile.py``.

``compositions_previous`` is where the build takes the rows of every product the compositions
file lacks (the shipped files mix download dates). For a refresh it holds the rows the shipped
sources give (their two compositions files, newest first) for every CIS the new compositions file
lacks, so that a download identical to the shipped one rebuilds the same KB. A product the new
download withdraws leaves the product table, but its substances stay known through those rows: a
line naming a withdrawn drug still resolves to its substance and meets its ANSM rules, as in the
shipped KB. The ANSM entries whose substances are then in no product of the new download are
reported (``ansm_without_product``). The fill is always taken from the shipped sources, so
successive refreshes do not chain.

Before building, the ANSM index is linked to the new substance table the way ``build`` links it.
An ANSM entry that linked to a BDPM substance before and links to none now (a substance renamed in
the new compositions, for example) is reported. Unless ``curated/ansm_unmapped.csv`` lists it, the
build would refuse it; a curated link whose target substance is gone would crash the build (a
KeyError in ``link_ansm``). In both cases the refresh stops before building and the KB is left as
it was, so that a person decides what the entry maps to now.
"""

from __future__ import annotations

import datetime as dt
import lzma
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from iatro.errors import FieldError
from iatro.kb.manifest import MANIFEST, Manifest, SourceEntry, read_manifest, sha256_path
from iatro.kb.store import load_kb
from knowledge_base.builder.ansm_links import link_ansm
from knowledge_base.builder.atc import read_atc
from knowledge_base.builder.bdpm import read_bdpm, read_compositions, read_products
from knowledge_base.builder.compile import _ansm_index, _curated_csv, build
from knowledge_base.builder.files import (
    CURATED_DIR,
    SOURCES_DIR,
    SourceInfo,
    load_registry,
    read_bytes,
    read_text,
)
from knowledge_base.builder.substances import build_substances

Log = Callable[[str], None]

#: Registry key of each BDPM file -> its name in an ANSM download.
DOWNLOAD_FILES = {
    "products": "CIS_bdpm.txt",
    "presentations": "CIS_CIP_bdpm.txt",
    "compositions": "CIS_COMPO_bdpm.txt",
    "generics": "CIS_GENER_bdpm.txt",
    "atc_mitm": "CIS_MITM.txt",
}
FILL_KEY = "compositions_previous"


@dataclass(frozen=True)
class ProductChange:
    cis: str
    name: str
    marketed_before: bool | None  # None: not in the previous KB
    marketed_now: bool | None  # None: not in the new download


@dataclass
class RefreshReport:
    download: str
    base_kb: str
    products_before: int = 0
    products_now: int = 0
    added: list[ProductChange] = field(default_factory=list)
    withdrawn: list[ProductChange] = field(default_factory=list)
    marketed_changed: list[ProductChange] = field(default_factory=list)
    compositions_filled: int = 0  # listed products whose rows come from the shipped files
    compositions_kept: int = 0  # CIS not listed any more whose rows keep their substances known
    without_composition: int = 0
    #: ANSM entries linked to a BDPM substance before and to none now.
    ansm_unlinked: list[str] = field(default_factory=list)
    #: ANSM entries still linked but no longer to these substance keys.
    ansm_links_lost: dict[str, list[str]] = field(default_factory=dict)
    ansm_newly_linked: list[str] = field(default_factory=list)
    #: ANSM entries linked to substances of some product before, and now of no listed product.
    ansm_without_product: list[str] = field(default_factory=list)
    #: curated/ansm_links.csv rows whose substance no longer exists (name -> key).
    curated_links_broken: dict[str, str] = field(default_factory=dict)
    blocking: list[str] = field(default_factory=list)
    built: bool = False
    kb_dir: str | None = None
    kb_version: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "products_before": self.products_before,
            "products_now": self.products_now,
            "added": len(self.added),
            "withdrawn": len(self.withdrawn),
            "marketed_changed": len(self.marketed_changed),
            "compositions_filled": self.compositions_filled,
            "compositions_kept": self.compositions_kept,
            "without_composition": self.without_composition,
            "ansm_unlinked": len(self.ansm_unlinked),
            "ansm_links_lost": len(self.ansm_links_lost),
            "ansm_newly_linked": len(self.ansm_newly_linked),
            "ansm_without_product": len(self.ansm_without_product),
            "curated_links_broken": len(self.curated_links_broken),
            "built": self.built,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "download": self.download,
            "base_kb": self.base_kb,
            "summary": self.summary(),
            "added": [vars(c) for c in self.added],
            "withdrawn": [vars(c) for c in self.withdrawn],
            "marketed_changed": [vars(c) for c in self.marketed_changed],
            "ansm_unlinked": self.ansm_unlinked,
            "ansm_links_lost": self.ansm_links_lost,
            "ansm_newly_linked": self.ansm_newly_linked,
            "ansm_without_product": self.ansm_without_product,
            "curated_links_broken": self.curated_links_broken,
            "blocking": self.blocking,
            "built": self.built,
            "kb_dir": self.kb_dir,
            "kb_version": self.kb_version,
        }


def find_downloads(directory: Path) -> dict[str, Path]:
    """The five BDPM files in ``directory``, each as downloaded (``.txt``) or xz-compressed."""
    if not directory.is_dir():
        raise FieldError("DIR", f"not a directory: {directory}")
    found: dict[str, Path] = {}
    missing = []
    for key, name in DOWNLOAD_FILES.items():
        for candidate in (directory / name, directory / f"{name}.xz"):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            missing.append(name)
    if missing:
        raise FieldError("DIR", f"{directory} lacks {', '.join(missing)} (plain or .xz)")
    return found


def _place(source: Path, target: Path) -> None:
    """``source`` at ``target`` in the form the registry name implies (xz or not)."""
    target.unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    if (source.suffix == ".xz") == (target.suffix == ".xz"):
        target.symlink_to(source.resolve())
    elif target.suffix == ".xz":
        # preset 0: the file lives as long as the build; compression ratio is irrelevant here.
        target.write_bytes(lzma.compress(source.read_bytes(), preset=0))
    else:
        target.write_bytes(read_bytes(source))


def prepare_sources(
    downloads: dict[str, Path], work: Path, registry: dict[str, SourceInfo]
) -> tuple[Path, int, int]:
    """A sources directory for ``build``: the shipped sources with the BDPM files replaced.

    Returns the directory, the number of listed products whose compositions were filled from the
    shipped files, and the number of unlisted CIS whose rows were kept.
    """
    sources = work / "sources"
    for path in SOURCES_DIR.rglob("*"):
        if path.is_file():
            link = sources / path.relative_to(SOURCES_DIR)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path.resolve())
    files = registry["bdpm"].files
    for key, download in downloads.items():
        _place(download, sources / files[key])
    covered = set(read_compositions(downloads["compositions"]))
    # Raw lines, so that the build parses the fill exactly as it parses the shipped files.
    rows: dict[str, list[str]] = {}
    for key in ("compositions", FILL_KEY):
        taken: dict[str, list[str]] = {}
        for line in read_text(SOURCES_DIR / files[key]).split("\n"):
            cis = line.split("\t", 1)[0].strip()
            if line.strip() and cis not in covered and cis not in rows:
                taken.setdefault(cis, []).append(line)
        rows.update(taken)
    fill = "".join(line + "\n" for cis in sorted(rows) for line in rows[cis]).encode("utf-8")
    target = sources / files[FILL_KEY]
    target.unlink()
    target.write_bytes(lzma.compress(fill, preset=0) if target.suffix == ".xz" else fill)
    listed = set(read_products(downloads["products"]))
    return sources, len(rows.keys() & listed), len(rows.keys() - listed)


def _old_links(tables: dict[str, Any]) -> tuple[dict[str, set[str]], set[str]]:
    """ANSM name -> keys of the BDPM substances it linked to in a compiled KB; keys in a product."""
    substances = tables["substances"]
    links: dict[str, set[str]] = {}
    for name, entry in tables["ansm_index"].items():
        links[name] = {substances[i]["key"] for i in entry["substances"] if substances[i]["origin"] == "bdpm"}
    in_products = {substances[c[0]]["key"] for p in tables["products"] for c in p["components"]}
    return links, in_products


def _new_links(
    sources: Path, registry: dict[str, SourceInfo], report: RefreshReport
) -> tuple[dict[str, set[str]], set[str]]:
    """:func:`_old_links` for the new files: the build's first steps, without writing a KB."""
    bdpm = read_bdpm(sources, registry["bdpm"].files)
    report.without_composition = sum(1 for cis in bdpm.products if cis not in bdpm.compositions)
    atc = read_atc(sources / registry["who_atc"].files["atc"])
    routes = yaml.safe_load((CURATED_DIR / "route_atc.yaml").read_text(encoding="utf-8"))
    curated_atc = {r["substance_key"]: r["atc_codes"].split(";") for r in _curated_csv("substance_atc.csv")}
    subs = build_substances(bdpm, atc, routes["local_routes"], routes["local_groups"], curated_atc)
    table = subs.substances
    curated = {row["ansm_name"]: row["substance_key"] for row in _curated_csv("ansm_links.csv")}
    report.curated_links_broken = {name: key for name, key in curated.items() if key not in table}
    usable = {name: key for name, key in curated.items() if name not in report.curated_links_broken}
    names = [entry["substance"] for entry in _ansm_index(sources, registry["ansm_thesaurus"])]
    link_ansm(names, table, atc, usable)
    links: dict[str, set[str]] = {name: set() for name in names}
    for sub in table.values():
        for name in sub.ansm:
            links[name].add(sub.key)
    in_products = {c.substance for cis in bdpm.products for c in subs.components.get(cis, [])}
    return links, in_products


def _patch_manifest(kb_dir: Path, downloads: dict[str, Path], fill: Path, label: str) -> Manifest:
    """Record what the BDPM entry was really built from.

    ``build`` wrote the registry's edition and file names, which name the shipped download: the
    entry now names the new files with their own hashes and the edition label, and ``kb_version``
    the label, so that reports do not claim the shipped BDPM edition.
    """
    manifest = read_manifest(kb_dir, verify=False)
    old = manifest.sources["bdpm"]
    files = {str(path.resolve()): sha256_path(path) for path in downloads.values()}
    fill_name = f"{FILL_KEY} (rows of the shipped compositions files for CIS the download lacks)"
    files[fill_name] = sha256_path(fill)
    entry = SourceEntry(
        title=f"{old.title}; refreshed download", edition=label, licence=old.licence, files=files
    )
    patched = manifest.model_copy(
        update={
            "sources": {**manifest.sources, "bdpm": entry},
            "kb_version": manifest.kb_version.replace(f"+bdpm-{old.edition}+", f"+bdpm-{label}+"),
        }
    )
    tmp = kb_dir / f".{MANIFEST}.tmp"
    tmp.write_text(patched.model_dump_json(indent=2), encoding="utf-8")
    os.replace(tmp, kb_dir / MANIFEST)
    return patched


def refresh_bdpm(
    download_dir: Path,
    out_dir: Path,
    base_kb: Path,
    edition: str | None = None,
    log: Log = print,
    dry_run: bool = False,
) -> RefreshReport:
    """Compare the download with the KB at ``base_kb`` and, unless an ANSM link broke, build ``out_dir``.

    ``edition`` labels the BDPM source in the manifest (default: the date of the newest download
    file). ``dry_run``: report only, build nothing.
    """
    downloads = find_downloads(download_dir)
    registry = load_registry()
    report = RefreshReport(str(download_dir), str(base_kb))
    old = load_kb(base_kb).raw
    old_products = {p["cis"]: p for p in old["products"]}
    new_products = read_products(downloads["products"])
    report.products_before, report.products_now = len(old_products), len(new_products)
    for cis in sorted(set(new_products) - set(old_products)):
        report.added.append(ProductChange(cis, new_products[cis].name, None, new_products[cis].marketed))
    for cis in sorted(set(old_products) - set(new_products)):
        report.withdrawn.append(
            ProductChange(cis, old_products[cis]["name"], old_products[cis]["marketed"], None)
        )
    for cis in sorted(set(old_products) & set(new_products)):
        before, now = bool(old_products[cis]["marketed"]), new_products[cis].marketed
        if before != now:
            report.marketed_changed.append(ProductChange(cis, new_products[cis].name, before, now))

    with tempfile.TemporaryDirectory(prefix="iatro-bdpm-") as work:
        log("preparing the sources with the new BDPM files …")
        sources, report.compositions_filled, report.compositions_kept = prepare_sources(
            downloads, Path(work), registry
        )
        log("linking the ANSM index to the new substances …")
        before_links, before_products = _old_links(old)
        now_links, now_products = _new_links(sources, registry, report)
        exceptions = {row["ansm_name"] for row in _curated_csv("ansm_unmapped.csv")}
        for name in sorted(now_links):
            linked_before, linked_now = before_links.get(name, set()), now_links[name]
            if linked_before and not linked_now:
                report.ansm_unlinked.append(name)
            elif linked_before - linked_now:
                report.ansm_links_lost[name] = sorted(linked_before - linked_now)
            elif linked_now and not linked_before:
                report.ansm_newly_linked.append(name)
            if linked_before & before_products and linked_now and not linked_now & now_products:
                report.ansm_without_product.append(name)
        report.blocking = [
            *(
                f"ANSM entry {n!r} no longer links to any BDPM substance and is not in "
                "curated/ansm_unmapped.csv"
                for n in report.ansm_unlinked
                if n not in exceptions
            ),
            *(
                f"curated/ansm_links.csv maps {n!r} to {k!r}, which the new BDPM no longer contains"
                for n, k in report.curated_links_broken.items()
            ),
        ]
        if report.blocking:
            log(f"not built: {len(report.blocking)} ANSM link(s) need a curator's decision")
            return report
        if dry_run:
            return report
        build(out_dir, sources=sources, log=log)
        label = (
            edition or dt.date.fromtimestamp(max(p.stat().st_mtime for p in downloads.values())).isoformat()
        )
        fill = sources / registry["bdpm"].files[FILL_KEY]
        # The fill file is in the temporary directory: it is hashed before the directory goes.
        manifest = _patch_manifest(out_dir, downloads, fill, label)
    report.built, report.kb_dir, report.kb_version = True, str(out_dir), manifest.kb_version
    return report


def render_refresh(report: RefreshReport) -> str:
    s = report.summary()
    lines = [
        f"BDPM download {report.download} vs the KB in {report.base_kb}",
        f"products: {s['products_before']} -> {s['products_now']}; added {s['added']}, withdrawn "
        f"{s['withdrawn']}, marketed status changed {s['marketed_changed']}",
        f"compositions from the shipped files: {s['compositions_filled']} listed products, "
        f"{s['compositions_kept']} unlisted CIS kept; products without composition: "
        f"{s['without_composition']}",
        f"ANSM index: {s['ansm_unlinked']} entries unlinked, {s['ansm_links_lost']} lost some links, "
        f"{s['ansm_newly_linked']} newly linked, {s['ansm_without_product']} now in no listed product; "
        f"curated links broken: {s['curated_links_broken']}",
    ]
    for title, rows in (("added", report.added), ("withdrawn", report.withdrawn)):
        lines += [f"  {title}: {c.cis} {c.name}" for c in rows]
    for c in report.marketed_changed:
        status = "marketed" if c.marketed_now else "no longer marketed"
        lines.append(f"  now {status}: {c.cis} {c.name}")
    lines += [f"  ANSM entry unlinked: {name}" for name in report.ansm_unlinked]
    lines += [f"  ANSM entry {name} lost: {', '.join(keys)}" for name, keys in report.ansm_links_lost.items()]
    lines += [f"  ANSM entry newly linked: {name}" for name in report.ansm_newly_linked]
    lines += [f"  ANSM entry in no listed product now: {name}" for name in report.ansm_without_product]
    if report.blocking:
        lines.append("NOT BUILT (the KB is unchanged):")
        lines += [f"  {reason}" for reason in report.blocking]
    elif not report.built:
        lines.append("dry run: nothing built")
    else:
        lines.append(f"built {report.kb_version} in {report.kb_dir}")
    return "\n".join(lines)


def default_output(kb_dir: Path | None, configured: Path) -> tuple[Path, Path]:
    """(where to build, which KB to compare with): the KB being replaced, else the configured one."""
    out = kb_dir or configured
    base = out if (out / MANIFEST).exists() else configured
    return out, base
