"""The `iatro` command: the composition root that wires the core, the KB build, the API and OCR."""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path
from typing import Annotated

import click
import typer

from iatro.errors import IatroError, InputError, KnowledgeBaseError
from iatro.settings import get_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Iatro medication-safety engine")
kb_app = typer.Typer(no_args_is_help=True, help="Build and inspect the compiled knowledge base")
app.add_typer(kb_app, name="kb")


def _err(message: str) -> None:
    typer.echo(message, err=True)


def _kb_dir(kb_dir: Path | None) -> Path:
    return kb_dir or get_settings().kb_dir


KbDir = Annotated[Path | None, typer.Option("--kb-dir", help="Compiled KB directory (default: IATRO_KB_DIR)")]


@kb_app.command("build")
def kb_build(kb_dir: KbDir = None) -> None:
    """Compile knowledge_base/sources into the KB directory."""
    from knowledge_base.builder.compile import build

    start = time.perf_counter()
    build(_kb_dir(kb_dir), log=lambda m: typer.echo(m, err=True))
    typer.echo(f"built in {time.perf_counter() - start:.1f} s", err=True)


@kb_app.command("info")
def kb_info(kb_dir: KbDir = None) -> None:
    """Version, sources and editions of the compiled KB."""
    from iatro.kb.manifest import read_manifest

    manifest = read_manifest(_kb_dir(kb_dir))
    typer.echo(f"kb_version: {manifest.kb_version}")
    typer.echo(f"built_at:   {manifest.built_at}")
    typer.echo(f"schema:     {manifest.schema_version}")
    for key, src in manifest.sources.items():
        typer.echo(f"  {key:16} {src.edition:22} {src.title} [{src.licence}]")


@kb_app.command("stats")
def kb_stats(kb_dir: KbDir = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Coverage figures (products with substances, ATC, ANSM index, anticholinergic table)."""
    from iatro.kb.stats import coverage
    from iatro.kb.store import load_kb

    stats = coverage(load_kb(_kb_dir(kb_dir)))
    if as_json:
        typer.echo(json.dumps(stats, ensure_ascii=False, indent=2))
        return
    for section, values in stats.items():
        if isinstance(values, dict):
            typer.echo(section)
            for key, value in values.items():
                if not isinstance(value, list | dict):
                    typer.echo(f"  {key}: {value}")
        else:
            typer.echo(f"{section}: {values}")


def _engine(kb_dir: Path | None):  # type: ignore[no-untyped-def]
    from iatro.analysis import Engine
    from iatro.kb.store import load_kb

    return Engine(load_kb(_kb_dir(kb_dir)))


@app.command("resolve")
def resolve(line: str, kb_dir: KbDir = None) -> None:
    """Resolve one free-text line ("LAROXYL 25 mg cp, 1 le soir") and print it as JSON."""
    from iatro.model.prescription import LineInput

    report = _engine(kb_dir).resolver.resolve(LineInput(text=line))
    typer.echo(report.model_dump_json(indent=2, exclude_none=True))


@app.command("analyze")
def analyze(
    file: Annotated[
        Path,
        typer.Argument(
            help="Prescription JSON (the analysis contract), JSONL with --batch, or a scanned or "
            "photographed ordonnance (PDF, JPEG, PNG, TIFF, HEIC): read by OCR, then analysed"
        ),
    ],
    fmt: Annotated[str, typer.Option("--format", help="json or text")] = "text",
    batch: Annotated[
        bool, typer.Option("--batch", help="One prescription per line in, one report per line out")
    ] = False,
    checks: Annotated[
        str | None, typer.Option("--checks", help="Comma-separated checks to run (default: all)")
    ] = None,
    kb_dir: KbDir = None,
) -> None:
    """Analyse a prescription file; the report goes to standard output."""
    from iatro.analysis import CHECKS, parse_prescription
    from iatro.errors import FieldError
    from iatro.render import render_text

    if fmt not in ("json", "text"):
        raise FieldError("--format", "must be json or text")
    selected = None
    if checks is not None:
        selected = frozenset(c.strip() for c in checks.split(",") if c.strip())
        unknown = sorted(selected - set(CHECKS))
        if unknown:
            raise FieldError("--checks", f"unknown check(s) {unknown}; known: {', '.join(CHECKS)}")
    if batch:
        _analyze_batch(file, selected, kb_dir)
        return
    try:
        document = file.read_bytes()
    except OSError as exc:
        raise FieldError("FILE", f"cannot read {file}: {exc.strerror}") from None
    if _is_ordonnance_file(file, document):
        _analyze_ordonnance(document, fmt, selected, kb_dir)
        return
    prescription = parse_prescription(document)
    report = _engine(kb_dir).analyze(prescription, checks=selected)
    if fmt == "json":
        typer.echo(report.model_dump_json(indent=2, exclude_none=True))
    else:
        typer.echo(render_text(report))


_ORDONNANCE_SUFFIXES = frozenset({".pdf", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".heic", ".heif"})


def _is_ordonnance_file(file: Path, document: bytes) -> bool:
    """A scan or a photograph: by its bytes, or by its name (a damaged image still goes to the OCR,
    which says what is wrong with it rather than calling it bad JSON)."""
    from ocr.pipeline import sniff

    return sniff(document) is not None or file.suffix.lower() in _ORDONNANCE_SUFFIXES


def _analyze_ordonnance(
    document: bytes, fmt: str, checks: frozenset[str] | None, kb_dir: Path | None
) -> None:
    """OCR, then the analysis of the lines read; the report says which lines came from the OCR, with
    which confidence, and which must be checked (``ocr`` in JSON, a section of its own in text)."""
    from iatro.errors import FieldError
    from iatro.render import render_text
    from ocr.pipeline import OcrPipeline
    from ocr.report import provenance, render_notes

    engine = _engine(kb_dir)
    result = OcrPipeline(engine, page_timeout=get_settings().ocr_page_timeout_s).read_bytes(document)
    for warning in result.warnings:
        _err(f"warning: {warning}")
    if not result.lines:
        raise FieldError("FILE", "no drug line was found in the document: nothing to analyse")
    report = engine.analyze(result.to_prescription(), checks=checks)
    if fmt == "json":
        body = report.model_dump(mode="json", exclude_none=True)
        body["ocr"] = provenance(result).model_dump(mode="json", exclude_none=True)
        typer.echo(json.dumps(body, ensure_ascii=False, indent=2))
    else:
        typer.echo(render_text(report))
        typer.echo("\n" + render_notes(result))


def _analyze_batch(file: Path, checks: frozenset[str] | None, kb_dir: Path | None) -> None:
    """Stream JSONL: a report per input line, or an error record naming the line and the field.

    Every line is processed; the exit code is 2 when any line was invalid, so that a pipeline
    notices without losing the other reports.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from iatro.analysis import parse_prescription
    from iatro.errors import FieldError

    try:
        handle = file.open("rb")
    except OSError as exc:
        raise FieldError("FILE", f"cannot read {file}: {exc.strerror}") from None
    engine = _engine(kb_dir)
    # The loaded KB is some 400,000 long-lived objects: freezing them keeps the cyclic collector from
    # rescanning them in the middle of a batch (the API measured p99 233 ms -> 65 ms with this).
    gc.collect()
    gc.freeze()
    invalid = 0
    out = sys.stdout
    show = sys.stderr.isatty()
    total = file.stat().st_size
    with (
        handle,
        Progress(
            TextColumn("analysing"), BarColumn(), TimeRemainingColumn(), disable=not show, transient=True
        ) as progress,
    ):
        task = progress.add_task("batch", total=total)
        for number, raw in enumerate(handle, start=1):
            progress.advance(task, len(raw))
            if not raw.strip():
                continue
            try:
                prescription = parse_prescription(raw)
            except FieldError as exc:
                invalid += 1
                out.write(
                    json.dumps({"error": {"line": number, "field": exc.field, "reason": exc.reason}}) + "\n"
                )
                continue
            out.write(engine.analyze(prescription, checks=checks).model_dump_json(exclude_none=True) + "\n")
    out.flush()
    if invalid:
        _err(f"{invalid} invalid line(s); their error records are in the output")
        sys.exit(2)


@app.command("screen")
def screen(
    source: Annotated[Path, typer.Argument(help="Dispensation claims: Parquet file/directory or CSV")],
    out: Annotated[Path, typer.Option("--out", help="Output directory (patients/ Parquet, summary)")],
    window_days: Annotated[
        int, typer.Option("--window-days", help="Current list: boxes of the last N days")
    ] = 90,
    chronic_days: Annotated[
        int, typer.Option("--chronic-days", help="Chronic: dispensed over the last N days")
    ] = 180,
    chronic_min: Annotated[
        int, typer.Option("--chronic-min", help="Chronic: at least this many dispensation days")
    ] = 3,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Reference date (default: last date)")] = None,
    engine: Annotated[str, typer.Option("--engine", help="local or spark")] = "local",
    master: Annotated[str | None, typer.Option("--master", help="Spark master URL (--engine spark)")] = None,
    chunk_patients: Annotated[int, typer.Option("--chunk-patients", help="Patients per chunk")] = 20_000,
    kb_dir: KbDir = None,
) -> None:
    """Population screening: one row per patient (counts, ACB, QT, eligibility, risk rank) and a summary."""
    import datetime as dt

    from iatro.errors import FieldError
    from screening.options import ScreeningOptions
    from screening.run import run

    try:
        reference = dt.date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise FieldError("--as-of", f"not a date (YYYY-MM-DD): {as_of!r}") from None
    options = ScreeningOptions(window_days, chronic_days, chronic_min, reference)
    summary = run(source, out, _kb_dir(kb_dir), options, engine, master, chunk_patients)
    typer.echo(f"{summary['patients']} patients screened -> {out}", err=True)


@app.command("ocr")
def ocr_command(
    file: Annotated[
        Path, typer.Argument(help="Ordonnance as a PDF, JPEG, PNG, TIFF or HEIC (scan or photograph)")
    ],
    fmt: Annotated[str, typer.Option("--format", help="json or text")] = "text",
    kb_dir: KbDir = None,
) -> None:
    """Read a scanned or photographed ordonnance: its lines, each with what a pharmacist must check."""
    from iatro.errors import FieldError
    from ocr.pipeline import OcrPipeline

    if fmt not in ("json", "text"):
        raise FieldError("--format", "must be json or text")
    result = OcrPipeline(_engine(kb_dir), page_timeout=get_settings().ocr_page_timeout_s).read_file(file)
    for warning in result.warnings:
        _err(f"warning: {warning}")
    if fmt == "json":
        typer.echo(result.model_dump_json(indent=2, exclude_none=True))
        return
    hints = result.header_hints
    found = {
        "RPPS": hints.prescriber_rpps,
        "date": hints.date,
        "âge": hints.patient_age,
        "poids (kg)": hints.patient_weight_kg,
    }
    typer.echo("  ".join(f"{k}: {v}" for k, v in found.items() if v is not None) or "no header hint")
    for line in result.lines:
        mark = "À VÉRIFIER" if line.needs_review else "ok"
        what = line.product.name if line.product else ", ".join(s.name for s in line.substances) or "?"
        zone = f" [{line.zone}]" if line.zone else ""
        typer.echo(f"p{line.page} {line.index + 1:>2}. [{mark}] {line.input}{zone}")
        typer.echo(f"       -> {line.status}: {what} (confiance {line.confidence:.0%})")
        for reason in line.reasons:
            typer.echo(f"          - {reason}")


@kb_app.command("qualification-report")
def kb_qualification_report(
    kb_dir: KbDir = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    lowered: Annotated[
        bool, typer.Option("--lowered", help="List every lowered pair with its reason")
    ] = False,
) -> None:
    """Naive worst-level engine vs qualified levels, over all pairs of the ANSM index."""
    from iatro.checks.interactions import InteractionIndex
    from iatro.checks.qualification_report import compare
    from iatro.kb.store import load_kb

    report = compare(InteractionIndex(load_kb(_kb_dir(kb_dir))))
    summary = report.summary()
    if lowered:
        summary["lowered_pairs"] = [
            {
                "pair": [low.first, low.second],
                "naive": low.naive,
                "qualified": low.qualified,
                "rule_id": low.rule_id,
                "why": low.why,
            }
            for low in report.lowered
        ]
    typer.echo(json.dumps(summary, ensure_ascii=False, indent=2 if as_json or lowered else None))


@kb_app.command("import-ansm")
def kb_import_ansm(
    thesaurus_pdf: Annotated[Path, typer.Argument(help="The ANSM thesaurus PDF")],
    edition: Annotated[str, typer.Option("--edition", help="ANSM edition, YYYY-MM")],
    index: Annotated[
        Path | None, typer.Option("--index", help="The 'index des substances' PDF (else no index)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Edition JSON to write (default ./thesaurus-EDITION.json)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Read a thesaurus edition from the ANSM PDFs into edition JSON (for `kb diff`), with a summary."""
    from knowledge_base.builder.freshness.ansm_import import import_ansm, render_import

    result = import_ansm(thesaurus_pdf, index, edition, out)
    typer.echo(
        json.dumps(result.summary(), ensure_ascii=False, indent=2) if as_json else render_import(result)
    )


@kb_app.command("diff")
def kb_diff(
    old: Annotated[str, typer.Argument(help="Edition compiled into the KB (2019-09) or edition JSON file")],
    new: Annotated[str, typer.Argument(help="Edition compiled into the KB (2020-10) or edition JSON file")],
    impact_file: Annotated[
        Path | None,
        typer.Option(
            "--impact", help="Contract prescriptions (JSONL): interaction alerts under both editions"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    kb_dir: KbDir = None,
) -> None:
    """Rules added, removed, renamed, with changed levels or texts, between two ANSM editions."""
    from iatro.kb.qualifications import load_qualifications
    from knowledge_base.builder.freshness.ansm_import import QUALIFICATIONS_PATH
    from knowledge_base.builder.freshness.diff import diff_editions, render_text
    from knowledge_base.builder.freshness.editions import load_edition_spec

    directory = _kb_dir(kb_dir)
    before, after = load_edition_spec(old, directory, "OLD"), load_edition_spec(new, directory, "NEW")
    diff = diff_editions(before.edition, after.edition, load_qualifications(QUALIFICATIONS_PATH))
    report = None
    if impact_file is not None:
        from iatro.kb.store import load_kb
        from knowledge_base.builder.freshness.impact import impact, render_impact

        report = impact(load_kb(directory), before, after, impact_file)
    if as_json:
        document = {"old": before.label, "new": after.label, "diff": diff.to_json()}
        if report is not None:
            document["impact"] = report.to_json()
        typer.echo(json.dumps(document, ensure_ascii=False, indent=2))
        return
    typer.echo(render_text(diff, before.label, after.label))
    if report is not None:
        typer.echo("\n" + render_impact(report))


@kb_app.command("refresh-bdpm")
def kb_refresh_bdpm(
    directory: Annotated[
        Path, typer.Argument(help="Newer BDPM download (CIS_bdpm.txt, CIS_CIP_bdpm.txt, …)")
    ],
    kb_dir: KbDir = None,
    bdpm_edition: Annotated[
        str | None, typer.Option("--bdpm-edition", help="Edition label (default: newest file's date)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report the changes, build nothing")] = False,
) -> None:
    """Rebuild the KB with newer BDPM files; report products added, withdrawn, and broken ANSM links.

    Exit 1 without building when an ANSM entry lost its last BDPM substance: a curator decides first.
    """
    from knowledge_base.builder.freshness.bdpm_refresh import default_output, refresh_bdpm, render_refresh

    out, base = default_output(kb_dir, get_settings().kb_dir)
    report = refresh_bdpm(
        directory, out, base, bdpm_edition, log=lambda m: typer.echo(m, err=True), dry_run=dry_run
    )
    typer.echo(
        json.dumps(report.to_json(), ensure_ascii=False, indent=2) if as_json else render_refresh(report)
    )
    if report.blocking:
        raise typer.Exit(1)


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option("--host", help="Interface (default: IATRO_HOST)")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default: IATRO_PORT)")] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Processes; each loads its own KB (~200 MB)")
    ] = 1,
    demo: Annotated[
        bool | None,
        typer.Option(
            "--demo/--no-demo",
            help="Seed the demo organisation and users (published passwords). Default: IATRO_DEMO_SEED, "
            "else on when serving on a loopback address only",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs, CDS Hooks at /cds-services, FHIR at /fhir) and the
    RCP workflow's pages (http://127.0.0.1:8000/, in French)."""
    import logging
    import os

    from api.server import LOG_FORMAT
    from api.server import serve as run_server

    settings = get_settings()
    bound = host or settings.host
    if demo is None and "IATRO_DEMO_SEED" not in os.environ:
        # A local run gets a walkable demo; a server reachable from the network never gets known passwords
        # unless asked for explicitly.
        demo = bound in ("127.0.0.1", "localhost", "::1")
    if demo is not None:
        # The app is built by uvicorn from the environment (factory): the choice travels through it.
        os.environ["IATRO_DEMO_SEED"] = "1" if demo else "0"
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    if workers > 1:
        # Workers preparing a fresh database at once race (two CREATE TABLEs: one worker dies). Prepared
        # once here, each worker's own migration and demo seeding find it done (both are idempotent).
        from api.state import open_workflow

        open_workflow(get_settings()).db.dispose()
    # uvicorn's access log prints query strings; the app logs each request itself without them.
    run_server(
        "api.app:create_app",
        factory=True,
        host=bound,
        port=port if port is not None else settings.port,
        workers=workers,
        access_log=False,
        log_level="info",
    )


def main() -> None:
    try:
        app(standalone_mode=False)
    except click.exceptions.UsageError as exc:
        _err(exc.format_message())
        sys.exit(2)
    except click.exceptions.Abort:
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except InputError as exc:
        _err(f"invalid input: {exc}")
        sys.exit(2)
    except KnowledgeBaseError as exc:
        _err(f"knowledge base error: {exc}")
        sys.exit(1)
    except IatroError as exc:
        _err(f"error: {exc}")
        sys.exit(1)
    except Exception as exc:  # the contract's exit 1: an internal error, reported without a traceback
        _err(f"internal error: {type(exc).__name__}: {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
