"""Seeded synthetic dispensation claims (one row per dispensed box), as in French health-data extracts.

Patients aged 65–100 take 3–25 chronic drugs refilled monthly (some by three-month boxes) over a
6-month extract, plus occasional acute boxes. Drugs are real marketed BDPM presentations of the
knowledge base: mostly the common geriatric drugs of :mod:`benchmarks.generator` (their weights),
plus a long tail of other marketed oral presentations. Weights, condition frequencies and refill
patterns are rough choices for realism, not clinical or epidemiological data.

Columns: ``patient_id`` (pseudonymous), ``date``, ``cip13`` / ``cis`` / ``atc`` (which ones depends on
``codes``), ``quantity``, ``age``, ``sex``, ``ald`` (affection de longue durée), ``cim10`` (CIM-10
codes separated by ``;``). Rows are sorted by patient then date. Generation is vectorised per chunk
of patients and streamed to Parquet or CSV, so any size fits in bounded memory::

    .venv/bin/python -m benchmarks.claims_generator out.parquet --patients 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from benchmarks.generator import COMMON
from iatro.kb.store import KnowledgeBase

Codes = Literal["cip13", "cis", "atc", "mixed"]

START = dt.date(2026, 1, 1)
DAYS = 182  # the extract covers 2026-01-01 .. 2026-07-01 (as_of = last day)
END = START + dt.timedelta(days=DAYS - 1)

# Frequent chronic conditions of older patients (CIM-10 categories) with a rough prevalence.
CONDITIONS = (
    ("I10", 0.55), ("E11", 0.2), ("I48", 0.12), ("I50", 0.1), ("I25", 0.12), ("N18", 0.12),
    ("F03", 0.07), ("G30", 0.05), ("J44", 0.08), ("M81", 0.1), ("K21", 0.1), ("F32", 0.1),
    ("G20", 0.03), ("M15", 0.2), ("E78", 0.3), ("K25", 0.02), ("I63", 0.05), ("N40", 0.1),
)  # fmt: skip
ACUTE = (
    "ibuprofene", "clarithromycine", "fluconazole", "ciprofloxacine", "tramadol", "codeine",
    "prednisolone", "paracetamol", "hydroxyzine", "colchicine",
)  # fmt: skip
LONG_TAIL_SHARE = 0.12  # share of the chronic drugs drawn outside the common geriatric list
UNKNOWN_CIP13 = "3400999999990"  # not a BDPM presentation: exercises the unresolved-code path


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Presentations a patient can receive, with their codes and draw weights."""

    cip13: tuple[str, ...]
    cis: tuple[str, ...]
    atc: tuple[str | None, ...]
    weights: np.ndarray  # chronic draw weights (sum 1)
    acute: np.ndarray  # indices of acute-use presentations


def build_catalogue(kb: KnowledgeBase, long_tail: int = 400, seed: int = 7) -> Catalogue:
    """Marketed presentations of single-substance products: the common geriatric drugs and a long tail."""
    rng = np.random.default_rng(seed)
    marketed = [c for c in kb.presentations if c.marketed]
    by_product: dict[int, list[str]] = {}
    for c in marketed:
        by_product.setdefault(c.product_id, []).append(c.cip13)
    cip13: list[str] = []
    cis: list[str] = []
    atc: list[str | None] = []
    weights: list[float] = []
    acute: list[int] = []
    used: set[int] = set()
    for name, weight in COMMON:
        if weight <= 0:
            continue
        ids = {s.id for s in kb.find_substances(name)}
        products = [
            p
            for p in kb.products
            if p.id in by_product
            and len(p.components) == 1
            and p.components[0].substance_id in ids
            and "orale" in p.routes
        ]
        products.sort(key=lambda p: p.cis)
        for p in products[:6]:  # a few brands and generics of each drug
            used.add(p.id)
            cip13.append(by_product[p.id][0])
            cis.append(p.cis)
            atc.append(p.atc)
            weights.append(weight / min(len(products), 6))
            if name in ACUTE:
                acute.append(len(cip13) - 1)
    common_total = sum(weights)
    tail = [
        p
        for p in kb.products
        if p.id in by_product and p.id not in used and len(p.components) == 1 and p.routes == ("orale",)
    ]
    tail.sort(key=lambda p: p.cis)
    picked = rng.choice(len(tail), size=min(long_tail, len(tail)), replace=False)
    tail_weight = common_total * LONG_TAIL_SHARE / (1 - LONG_TAIL_SHARE) / max(len(picked), 1)
    for k in sorted(picked):
        p = tail[int(k)]
        cip13.append(by_product[p.id][0])
        cis.append(p.cis)
        atc.append(p.atc)
        weights.append(tail_weight)
    w = np.asarray(weights, dtype=np.float64)
    return Catalogue(tuple(cip13), tuple(cis), tuple(atc), w / w.sum(), np.asarray(acute, dtype=np.int64))


def _chunk(
    catalogue: Catalogue, first: int, count: int, rng: np.random.Generator, codes: Codes, unknown_rate: float
) -> pa.Table:
    n_cat = len(catalogue.cip13)
    ages = np.minimum(65 + rng.gamma(2.2, 6.0, size=count).astype(np.int64), 100)
    sexes = np.where(rng.random(count) < 0.58, "F", "M")
    ald = rng.random(count) < 0.6
    cond_names = np.array([c for c, _ in CONDITIONS])
    has = rng.random((count, len(CONDITIONS))) < np.array([p for _, p in CONDITIONS])
    cim10 = np.array([";".join(cond_names[row]) for row in has], dtype=object)
    n_drugs = np.clip(np.rint(rng.triangular(3, 8, 25, size=count)), 3, 25).astype(np.int64)
    # Gumbel top-k: distinct drugs per patient drawn by weight, vectorised over the chunk.
    keys = np.log(catalogue.weights)[None, :] + rng.gumbel(size=(count, n_cat))
    order = np.argsort(-keys, axis=1)
    take = np.arange(n_cat)[None, :] < n_drugs[:, None]
    patient_of = np.repeat(np.arange(count), n_drugs)
    drug = order[take]
    # Refills: monthly (28–31 days) or three-monthly boxes; some drugs start late or stop early.
    k = len(drug)
    quarterly = rng.random(k) < 0.1
    interval = np.where(quarterly, 90, rng.integers(28, 32, size=k))
    start = np.where(rng.random(k) < 0.85, rng.integers(0, 25, size=k), rng.integers(25, 150, size=k))
    stop = np.where(rng.random(k) < 0.07, rng.integers(60, 120, size=k), DAYS)
    n_fills = np.maximum((stop - start - 1) // interval + 1, 1)
    fill_of = np.repeat(np.arange(k), n_fills)
    step = np.arange(len(fill_of)) - np.repeat(np.cumsum(n_fills) - n_fills, n_fills)
    day = start[fill_of] + step * interval[fill_of] + rng.integers(-2, 3, size=len(fill_of))
    day = np.clip(day, 0, DAYS - 1)
    rows_patient = patient_of[fill_of]
    rows_drug = drug[fill_of]
    # Occasional acute boxes.
    n_acute = rng.poisson(0.8, size=count)
    acute_patient = np.repeat(np.arange(count), n_acute)
    acute_drug = catalogue.acute[rng.integers(0, len(catalogue.acute), size=len(acute_patient))]
    acute_day = rng.integers(0, DAYS, size=len(acute_patient))
    rows_patient = np.concatenate([rows_patient, acute_patient])
    rows_drug = np.concatenate([rows_drug, acute_drug])
    day = np.concatenate([day, acute_day])
    quantity = np.where(rng.random(len(day)) < 0.05, 2, 1).astype(np.int16)
    order_rows = np.lexsort((rows_drug, day, rows_patient))
    rows_patient, rows_drug, day, quantity = (
        rows_patient[order_rows],
        rows_drug[order_rows],
        day[order_rows],
        quantity[order_rows],
    )
    ids = np.array([f"P{first + i:09d}" for i in range(count)], dtype=object)
    cip13 = np.asarray(catalogue.cip13, dtype=object)[rows_drug]
    if unknown_rate > 0:
        cip13[rng.random(len(cip13)) < unknown_rate] = UNKNOWN_CIP13
    dates = (np.datetime64(START) + day.astype("timedelta64[D]")).astype("datetime64[D]")
    columns: dict[str, pa.Array] = {
        "patient_id": pa.array(ids[rows_patient], pa.string()),
        "date": pa.array(dates, pa.date32()),
    }
    cis = np.asarray(catalogue.cis, dtype=object)[rows_drug]
    atc = np.asarray(catalogue.atc, dtype=object)[rows_drug]
    if codes == "cip13":
        columns["cip13"] = pa.array(cip13, pa.string())
    elif codes == "cis":
        columns["cis"] = pa.array(cis, pa.string())
    elif codes == "atc":
        columns["atc"] = pa.array(atc, pa.string())
    else:  # mixed: each row carries one kind of code, the others null (ATC only where the product has one)
        kind = rng.integers(0, 3, size=len(day))
        has_atc = np.array([a is not None for a in atc], dtype=bool)
        kind = np.where((kind == 2) & ~has_atc, 1, kind)
        for name, values, wanted in (("cip13", cip13, 0), ("cis", cis, 1), ("atc", atc, 2)):
            kept = values.copy()
            kept[kind != wanted] = None
            columns[name] = pa.array(kept, pa.string())
    columns["quantity"] = pa.array(quantity, pa.int16())
    columns["age"] = pa.array(ages[rows_patient].astype(np.int16), pa.int16())
    columns["sex"] = pa.array(sexes[rows_patient], pa.string())
    columns["ald"] = pa.array(ald[rows_patient], pa.bool_())
    columns["cim10"] = pa.array(cim10[rows_patient], pa.string())
    return pa.table(columns)


def claims(
    kb: KnowledgeBase,
    patients: int,
    seed: int = 20261124,
    chunk_patients: int = 20_000,
    codes: Codes = "cip13",
    unknown_rate: float = 0.0,
) -> Iterator[pa.Table]:
    """Tables of dispensation rows, ``chunk_patients`` patients at a time, sorted by patient and date."""
    catalogue = build_catalogue(kb)
    rng = np.random.default_rng(seed)
    for first in range(0, patients, chunk_patients):
        yield _chunk(catalogue, first, min(chunk_patients, patients - first), rng, codes, unknown_rate)


def write_claims(
    kb: KnowledgeBase,
    path: Path,
    patients: int,
    seed: int = 20261124,
    codes: Codes = "cip13",
    unknown_rate: float = 0.0,
    chunk_patients: int = 20_000,
) -> int:
    """Write an extract as Parquet (``.parquet``) or CSV (``.csv``); returns the number of rows."""
    rows = 0
    writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
    try:
        for table in claims(kb, patients, seed, chunk_patients, codes, unknown_rate):
            if writer is None:
                writer = (
                    pacsv.CSVWriter(str(path), table.schema)
                    if path.suffix == ".csv"
                    else pq.ParquetWriter(str(path), table.schema)
                )
            writer.write_table(table)
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows


def main() -> None:
    from iatro.kb.store import load_kb

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--codes", choices=["cip13", "cis", "atc", "mixed"], default="cip13")
    parser.add_argument("--unknown-rate", type=float, default=0.0)
    args = parser.parse_args()
    rows = write_claims(load_kb(), args.out, args.patients, args.seed, args.codes, args.unknown_rate)
    print(f"{rows} rows for {args.patients} patients -> {args.out}")


if __name__ == "__main__":
    main()
