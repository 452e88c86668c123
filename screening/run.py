"""What ``iatro screen`` does: pick the engine, show progress on a terminal, write the outputs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from iatro.errors import FieldError
from iatro.kb.store import load_kb
from screening.options import ScreeningOptions

EngineName = Literal["local", "spark"]


def run(
    source: Path,
    out: Path,
    kb_dir: Path,
    options: ScreeningOptions,
    engine: str = "local",
    master: str | None = None,
    chunk_patients: int = 20_000,
) -> dict[str, object]:
    if chunk_patients < 1:
        raise FieldError("--chunk-patients", "must be at least 1")
    if engine == "spark":
        from screening.spark import screen_spark

        return screen_spark(source, out, kb_dir, options, master=master, chunk_patients=chunk_patients)
    if engine != "local":
        raise FieldError("--engine", f"unknown engine {engine!r}: local or spark")
    if master is not None:
        raise FieldError("--master", "only used with --engine spark")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from iatro.analysis import Engine
    from screening.local import screen_local

    engine_ = Engine(load_kb(kb_dir))
    with Progress(
        TextColumn("screening"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("patients"),
        TimeElapsedColumn(),
        disable=not sys.stderr.isatty(),
        transient=True,
    ) as progress:
        task = progress.add_task("screen", total=None)
        return screen_local(
            source, out, engine_, options, chunk_patients, progress=lambda n: progress.advance(task, n)
        )
