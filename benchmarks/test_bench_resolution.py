"""Issue 3 timings: KB load, one free-text line, a 20-line prescription.

Each case has a baseline measured in the same run, so figures read as ratios on a noisy machine:
KB load vs a bare orjson parse of the same tables file; free-text resolution vs resolution by CIS
(a dictionary lookup through the same code path). Run: `.venv/bin/pytest benchmarks --benchmark-only`.
"""

from __future__ import annotations

import orjson

from iatro.analysis import Engine
from iatro.kb.store import TABLES, load_kb
from iatro.model.prescription import LineInput, Prescription
from iatro.settings import get_settings

LINES_20 = [
    "PREVISCAN 20 mg, 3/4 cp le soir",
    "kardégic 160mg 1 sach/j",
    "LAROXYL 25 mg cp, 1 le soir",
    "amiodarone 200",
    "DOLIPRANE 1000, si douleur, max 3/j",
    "Amlodipine 5mg 1 cp le matin",
    "ELIQUIS 2,5 mg cp 1-0-1",
    "SERESTA 10 mg, 1 cp au coucher",
    "furosemide 40 mg 1 cp le matin",
    "BISOPROLOL 2,5 mg 1 cp/j",
    "RAMIPRIL 5 mg 1 gélule le matin",
    "METFORMINE 850 mg 1 cp matin et soir",
    "ATORVASTATINE 20 mg 1 cp le soir",
    "OMEPRAZOLE 20 mg 1 gél le matin",
    "levothyrox 75 µg 1 cp le matin",
    "ZOPICLONE 7,5 mg 1 cp au coucher",
    "escitalopram 10 mg 1 cp/j",
    "TRAMADOL 50 mg gél si douleur",
    "DIFFU K 600 mg gél 1 matin et soir",
    "INDAPAMIDE LP 1,5 mg 1 cp le matin",
]


def test_kb_load(benchmark):
    benchmark.group = "kb load"
    benchmark(load_kb)


def test_kb_load_baseline_orjson_parse(benchmark):
    benchmark.group = "kb load"
    data = (get_settings().kb_dir / TABLES).read_bytes()
    benchmark(orjson.loads, data)


def test_resolve_one_free_text_line(benchmark, engine: Engine):
    benchmark.group = "one line"
    line = LineInput(text="LAROXYL 25 mg cp, 1 le soir")
    benchmark(engine.resolver.resolve, line)


def test_resolve_one_line_baseline_by_cis(benchmark, engine: Engine):
    benchmark.group = "one line"
    line = LineInput(cis=engine.resolver.resolve(LineInput(text="LAROXYL 25 mg")).product.cis)  # type: ignore[union-attr]
    benchmark(engine.resolver.resolve, line)


def test_analyze_20_lines(benchmark, engine: Engine):
    benchmark.group = "20-line prescription"
    prescription = Prescription(lines=tuple(LineInput(text=t) for t in LINES_20))
    report = benchmark(engine.analyze, prescription)
    assert sum(line.status == "resolved" for line in report.lines) >= 19


def test_analyze_20_lines_baseline_by_cis(benchmark, engine: Engine):
    benchmark.group = "20-line prescription"
    reports = [engine.resolver.resolve(LineInput(text=t)) for t in LINES_20]
    cis = [r.product.cis for r in reports if r.product is not None]
    prescription = Prescription(lines=tuple(LineInput(cis=c) for c in cis))
    benchmark(engine.analyze, prescription)


# Posology parsing and ANSM qualification: these timings lived in unit tests; they are benchmarks.
# Baseline for posology: splitting the same strings into words (the least any parser does).
POSOLOGIES = ["3/4 cp le soir", "1 sach/j", "1 cp matin et soir", "1-0-1", "si douleur, max 3/j"]


def test_parse_posology(benchmark):
    from iatro.resolve.posology import parse_posology

    benchmark(lambda: [parse_posology(text) for text in POSOLOGIES])


def test_parse_posology_baseline_split(benchmark):
    benchmark(lambda: [text.split() for text in POSOLOGIES])
