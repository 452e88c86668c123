"""`iatro kb build`: every source compiled into one artefact directory with its manifest."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import yaml
from pydantic import TypeAdapter

from iatro.checks.cyp import PARAMETERS as CYP_PARAMETERS
from iatro.checks.cyp import ROLES_KEY as CYP_ROLES_KEY
from iatro.checks.vaccines import VACCINE_RULES, VaccineRule
from iatro.errors import SourceError
from iatro.kb.criteria import CriteriaList, Threshold, load_criteria_dir
from iatro.kb.manifest import MANIFEST, SCHEMA_VERSION, Manifest, SourceEntry, sha256_path
from iatro.kb.qualifications import check_against, load_qualifications
from iatro.kb.store import (
    ACTIVE_EDITION,
    PS_INDICES,
    PS_INDPTR,
    QUALIFICATIONS,
    TABLES,
    THESAURUS_EDITIONS,
    SubstanceInfo,
    thesaurus_artefact,
)
from iatro.resolve.index import product_head
from iatro.text import fold, fold_words
from knowledge_base.builder.ansm import load_edition
from knowledge_base.builder.ansm_links import link_ansm
from knowledge_base.builder.atc import AtcIndex, read_atc
from knowledge_base.builder.bdpm import Product, read_bdpm
from knowledge_base.builder.cyp import build_cyp_roles
from knowledge_base.builder.english_names import EnglishNames
from knowledge_base.builder.files import CURATED_DIR, SOURCES_DIR, SourceInfo, load_registry, read_text
from knowledge_base.builder.naming import english_candidates
from knowledge_base.builder.stoppstart import load_stoppstart
from knowledge_base.builder.substances import Substance, build_substances
from knowledge_base.builder.vaccines import load_vaccine_rules

Log = Callable[[str], None]

COMPILED_TABLES = (
    "ansm_route_sides.yaml",
    "ansm_class_conditions.yaml",
    "qt_tisdale.yaml",
    "renal_thresholds.yaml",
    "narrow_therapeutic_index.yaml",
    "duplicate_classes.yaml",
)

ACB_SCALES = (
    "Boustani2008",
    "ACBcalc",
    "Rudolph2008",
    "Carnahan2006",
    "Ancelin2006",
    "Ehrt2010",
    "Sittironnarit2011",
    "Bishara2020",
    "MajVote",
    "KieselVote",
)


def _curated_csv(name: str) -> list[dict[str, str]]:
    with (CURATED_DIR / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _stem(product: Product) -> str:
    head = product_head(product.name)
    words = []
    for word in head.split():
        if word[:1].isdigit():
            break
        words.append(word)
    return fold_words(" ".join(words)) or fold_words(head)


def _who_substance(table: dict[str, Substance], atc: AtcIndex, codes: list[str]) -> Substance:
    name = atc.names[codes[0]].lower()
    key = fold(name)
    sub = table.get(key)
    if sub is None:
        sub = table[key] = Substance(key=key, name=name, origin="who", atc_who=list(codes), name_en=key)
        sub.synonyms.add(key)
    return sub


def _ansm_index(sources: Path, info: SourceInfo) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(read_text(sources / info.files["index"]))
    return data


def _link_index(
    index: list[dict[str, Any]], table: dict[str, Substance], atc: AtcIndex, log: Log
) -> dict[str, dict[str, Any]]:
    curated = {row["ansm_name"]: row["substance_key"] for row in _curated_csv("ansm_links.csv")}
    unlinked = link_ansm([e["substance"] for e in index], table, atc, curated)
    exceptions = {row["ansm_name"]: row["reason"] for row in _curated_csv("ansm_unmapped.csv")}
    missing = [name for name in unlinked if name not in exceptions]
    if missing:
        raise SourceError(
            f"{len(missing)} ANSM index substances map to no BDPM substance and are not in "
            f"curated/ansm_unmapped.csv: {missing[:20]}"
        )
    stale = sorted(set(exceptions) - set(unlinked))
    if stale:
        log(f"warning: curated/ansm_unmapped.csv lists names that now map: {stale}")
    for name in unlinked:
        # An ANSM-only substance keeps its rules reachable from lines that name it.
        key = fold(name)
        sub = table.get(key)
        if sub is None:
            sub = table[key] = Substance(key=key, name=name, origin="ansm")
            sub.synonyms.add(key)
            for candidate in english_candidates(name):
                if atc.level5_for(candidate):
                    sub.atc_who, sub.name_en = list(atc.level5_for(candidate)), candidate
                    break
        sub.ansm.setdefault(name, "self")
    classes: dict[str, list[str]] = {}
    for entry in index:
        classes.setdefault(entry["substance"], [])
        classes[entry["substance"]] = sorted(set(classes[entry["substance"]]) | set(entry["drug_classes"]))
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(classes):
        out[name] = {
            "classes": classes[name],
            "exception": exceptions.get(name) if name in unlinked else None,
        }
    return out


def _acb(
    sources: Path, info: SourceInfo, table: dict[str, Substance], atc: AtcIndex, english: EnglishNames
) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, int]] = {}
    text = read_text(sources / info.files["table"])
    for row in csv.DictReader(io.StringIO(text)):
        # The source holds duplicate rows whose name has a trailing space (Bishara merge): merge them.
        name = row["Name"].strip().lower()
        scores = rows.setdefault(name, {})
        for scale in ACB_SCALES:
            if row.get(scale, "").strip() and scale not in scores:
                scores[scale] = int(float(row[scale]))
    by_en: dict[str, list[str]] = {}
    by_code: dict[str, list[str]] = {}
    for sub in table.values():
        if sub.name_en:
            by_en.setdefault(sub.name_en, []).append(sub.key)
        for code in sub.atc_votes or sub.atc_who:
            by_code.setdefault(code, []).append(sub.key)

    def lookup(name: str) -> list[str]:
        if name in by_en:
            return by_en[name]
        # Many INNs are spelt the same in French, or with a final "e" (cilastatin / cilastatine).
        for french in (name, name + "e"):
            if french in table and not table[french].homeopathic:
                return [french]
        codes = atc.level5_for(name)
        if not codes:
            return []
        holders = sorted({key for code in codes for key in by_code.get(code, [])})
        return holders or [_who_substance(table, atc, codes).key]

    corrections = {row["acb_name"]: row["maps_to"] for row in _curated_csv("acb_names.csv")}
    not_single = {row["acb_name"]: row["reason"] for row in _curated_csv("acb_not_single_drug.csv")}
    out = []
    for name, scores in sorted(rows.items()):
        base, route = _acb_route(name)
        keys: list[str] = []
        how = "unmapped"
        for candidate, rule in _acb_candidates(base):
            keys, how = english.resolve(candidate, lookup)
            if keys:
                how = how if rule == "as written" else f"{how}+{rule}"
                break
        if not keys and base in corrections:
            # The scale misspells some names or uses US names WHO does not: a curated, reviewed
            # correction (never an automatic fuzzy match, which joined histidine to histamine).
            keys, how = english.resolve(corrections[base], lookup)
            how = f"{how}+curated" if keys else "unmapped"
        out.append(
            {
                "name": name,
                "route": route,
                "scores": scores,
                "substances": sorted(set(keys)),
                "how": how,
                "not_single_drug": not_single.get(name),
            }
        )
    return out


_ACB_ROUTE = re.compile(r"-(topical|ophthalmic|opthalmic|nasal|auricular \(otic\)|not ?\(.*\))$")


def _acb_route(name: str) -> tuple[str, str | None]:
    """ "dexamethasone-ophthalmic" -> ("dexamethasone", "ophthalmic"): the route stays with the row."""
    match = _ACB_ROUTE.search(name)
    return (name[: match.start()].strip(), match.group(1)) if match else (name, None)


def _acb_candidates(name: str) -> list[tuple[str, str]]:
    out = [(name, "as written")]
    if name.endswith("ic"):
        out.append((name + " acid", "acid"))
    if name.endswith("ate"):
        out.append((name[:-3] + "ic acid", "acid salt"))
    return out


def _with_overrides(criteria: CriteriaList) -> CriteriaList:
    """Apply the reviewed rows of curated/stoppstart_overrides.yaml; an unknown id is an error.

    A row either marks a criterion not computable (with its reason) or sets the duration every drug
    condition of the criterion requires (with the criterion's own words as quote).
    """
    raw = yaml.safe_load((CURATED_DIR / "stoppstart_overrides.yaml").read_text(encoding="utf-8"))
    overrides = {row["criterion_id"]: row for row in raw["overrides"]}
    unknown = set(overrides) - {c.criterion_id for c in criteria.criteria}
    if unknown:
        raise SourceError(f"stoppstart_overrides.yaml names unknown criteria: {sorted(unknown)}")
    updated = []
    for criterion in criteria.criteria:
        row = overrides.get(criterion.criterion_id)
        if row is None:
            updated.append(criterion)
        elif "duration_days" in row:
            if row["quote"] not in criterion.description:
                raise SourceError(
                    f"stoppstart_overrides.yaml: {criterion.criterion_id}: quote not in the text"
                )
            threshold = Threshold.model_validate(row["duration_days"])
            alternatives = tuple(
                m.model_copy(
                    update={
                        "drugs": tuple(d.model_copy(update={"duration_days": threshold}) for d in m.drugs)
                    }
                )
                for m in criterion.any_of
            )
            updated.append(criterion.model_copy(update={"any_of": alternatives}))
        else:
            reason = " ".join(row["reason"].split())
            updated.append(
                criterion.model_copy(
                    update={"computable": row["computable"], "not_computable_reason": reason}
                )
            )
    return criteria.model_copy(update={"criteria": tuple(updated)})


def build(out_dir: Path, sources: Path = SOURCES_DIR, log: Log = print) -> Manifest:
    """Compile the KB into ``out_dir`` (replaced atomically) and return its manifest."""
    registry = load_registry()
    log("reading BDPM, WHO ATC …")
    bdpm = read_bdpm(sources, registry["bdpm"].files)
    atc = read_atc(sources / registry["who_atc"].files["atc"])
    routes = yaml.safe_load((CURATED_DIR / "route_atc.yaml").read_text(encoding="utf-8"))
    curated_atc = {r["substance_key"]: r["atc_codes"].split(";") for r in _curated_csv("substance_atc.csv")}
    subs = build_substances(bdpm, atc, routes["local_routes"], routes["local_groups"], curated_atc)
    table = subs.substances
    log("linking the ANSM index …")
    ansm_index = _ansm_index(sources, registry["ansm_thesaurus"])
    ansm_links = _link_index(ansm_index, table, atc, log)
    log("mapping the anticholinergic scales (RDKit structures for salts) …")
    english = EnglishNames(
        sources / registry["dner"].files["variants"], sources / registry["dner"].files["structures"]
    )
    acb = _acb(sources, registry["acb"], table, atc, english)

    keys = sorted(table)
    ids = {key: i for i, key in enumerate(keys)}
    for name, entry in ansm_links.items():
        entry["substances"] = sorted(ids[s.key] for s in table.values() if name in s.ansm)
        entry["how"] = sorted({table[keys[i]].ansm[name] for i in entry["substances"]})
    for row in acb:
        row["substances"] = [ids[k] for k in row["substances"]]

    substances_out: list[dict[str, Any]] = []
    synonyms_out = []
    for key in keys:
        sub = table[key]
        # The ANSM spelling is the contract's display name when the link is an identity.
        exact = [n for n, how in sub.ansm.items() if how in ("exact", "salt", "self") and fold(n) == key]
        # Else an ANSM spelling of the same moiety with its salt ("oxybate de sodium"), as the
        # contract shows names as the ANSM index writes them.
        exact = exact or sorted(n for n, how in sub.ansm.items() if how == "salt" and "(" not in n)
        substances_out.append(
            {
                "name": exact[0] if exact else sub.name,
                "key": key,
                "atc": list(dict.fromkeys(sub.atc + sub.atc_who)),
                "name_en": sub.name_en,
                "ansm": sorted(sub.ansm),
                "origin": sub.origin,
                "homeopathic": sub.homeopathic,
            }
        )
        synonyms_out.append(sorted(sub.synonyms - {key}))

    products_out: list[dict[str, Any]] = []
    indptr = [0]
    indices: list[int] = []
    presentations = []
    for cis in sorted(bdpm.products):
        product = bdpm.products[cis]
        comps = subs.components.get(cis, [])
        code, basis = subs.product_atc.get(cis, (None, None))
        pid = len(products_out)
        components = []
        for comp in comps:
            components.append([ids[comp.substance], comp.dosage, comp.reference, comp.mg, comp.source])
            indices.append(ids[comp.substance])
        indptr.append(len(indices))
        homeopathic = product.homeopathic or (
            bool(comps) and all(table[c.substance].homeopathic for c in comps)
        )
        products_out.append(
            {
                "cis": cis,
                "name": product.name,
                "form": product.form,
                "routes": list(product.routes),
                "marketed": product.marketed,
                "atc": code,
                "atc_basis": basis,
                "generic_group": product.generic_group,
                "homeopathic": homeopathic,
                "components": components,
                "stem": _stem(product),
            }
        )
        for pres in product.presentations:
            presentations.append([pres.cip13, pres.cip7, pid, pres.label, pres.marketed])

    log("importing the ANSM thesaurus editions and their qualification data …")
    editions = {edition: load_edition(sources, edition) for edition in THESAURUS_EDITIONS}
    qualifications_path = CURATED_DIR / "ansm_qualifications.yaml"
    stale = check_against(load_qualifications(qualifications_path), editions[ACTIVE_EDITION])
    if stale:
        # Curation written for another text of the rule is not reused: the engine falls back to the
        # rule's worst level for these until a pharmacist reviews them.
        log(f"warning: {len(stale)} curated qualifications need review: {stale[:5]}")
    extra = {thesaurus_artefact(e): ed.model_dump_json().encode() for e, ed in editions.items()}
    extra[QUALIFICATIONS] = qualifications_path.read_bytes()
    log("mapping the FDA CYP table …")
    infos = [
        SubstanceInfo(
            i,
            row["name"],
            row["key"],
            tuple(row["atc"]),
            row["name_en"],
            tuple(row["ansm"]),
            row["origin"],
            row["homeopathic"],
        )
        for i, row in enumerate(substances_out)
    ]
    cyp_roles = build_cyp_roles(sources, infos, english)
    extra[CYP_PARAMETERS] = (CURATED_DIR / "cyp_parameters.yaml").read_bytes()
    # Curated tables the checks read at run time travel inside the compiled KB (hashed in the
    # manifest), so the engine never reads knowledge_base/ itself.
    for curated_table in COMPILED_TABLES:
        extra[curated_table] = (CURATED_DIR / curated_table).read_bytes()
    # Explicit-criteria lists: STOPP/START v2 from its XML, and every list a pharmacist drops in
    # curated/criteria/ (example lists excluded); compiled as JSON, named in tables.json.
    criteria_lists = [_with_overrides(load_stoppstart(sources)), *load_criteria_dir(CURATED_DIR / "criteria")]
    criteria_names = []
    for criteria_list in criteria_lists:
        name = f"criteria-{criteria_list.list_id}.json"
        extra[name] = criteria_list.model_dump_json().encode()
        criteria_names.append(name)
    extra[VACCINE_RULES] = TypeAdapter(list[VaccineRule]).dump_json(
        load_vaccine_rules(sources / registry["vaccines"].files["rules"])
    )

    tables = {
        "ansm_active_edition": ACTIVE_EDITION,
        "ansm_stale_qualifications": stale,
        CYP_ROLES_KEY: cyp_roles,
        "criteria_lists": criteria_names,
        "substances": substances_out,
        "substance_synonyms": synonyms_out,
        "products": products_out,
        "presentations": presentations,
        "atc_names": atc.names,
        "ansm_index": ansm_links,
        "acb": acb,
        "atc_ddd": {code: rows for code, rows in atc.ddd.items()},
    }
    return _write(
        out_dir,
        tables,
        np.asarray(indptr, dtype=np.int32),
        np.asarray(indices, dtype=np.int32),
        registry,
        sources,
        log,
        extra,
    )


def _write(
    out_dir: Path,
    tables: dict[str, Any],
    indptr: np.ndarray[Any, Any],
    indices: np.ndarray[Any, Any],
    registry: dict[str, SourceInfo],
    sources: Path,
    log: Log,
    extra: dict[str, bytes] | None = None,
) -> Manifest:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".kb-", dir=out_dir.parent))
    (tmp / TABLES).write_bytes(orjson.dumps(tables, option=orjson.OPT_SORT_KEYS))
    np.save(tmp / PS_INDPTR, indptr)
    np.save(tmp / PS_INDICES, indices)
    for name, data in (extra or {}).items():
        (tmp / name).write_bytes(data)
    names = (TABLES, PS_INDPTR, PS_INDICES, *sorted(extra or {}))
    artefacts = {name: sha256_path(tmp / name) for name in names}
    source_entries = {
        key: SourceEntry(
            title=info.title,
            edition=info.edition,
            licence=info.licence,
            files={path: sha256_path(sources / path) for path in info.files.values()},
        )
        for key, info in registry.items()
    }
    editions = registry
    kb_version = (
        f"ansm-{editions['ansm_thesaurus'].edition}+bdpm-{editions['bdpm'].edition}"
        f"+atc-{editions['who_atc'].edition}+{artefacts[TABLES][:8]}"
    )
    manifest = Manifest(
        schema_version=SCHEMA_VERSION,
        kb_version=kb_version,
        built_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        sources=source_entries,
        artefacts=artefacts,
    )
    (tmp / MANIFEST).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
    # Swap directories so that a reader never sees a half-written KB.
    if out_dir.exists():
        old = out_dir.with_name(out_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out_dir)
    log(f"knowledge base {kb_version} written to {out_dir}")
    return manifest
