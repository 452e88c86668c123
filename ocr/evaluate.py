"""Accuracy of the OCR pipeline on generated ordonnances: the figures the tests and the benchmark share.

A truth item is matched to the first unused resolved line of its page with the same substances (the
substance level); the line is then compared field by field with what the resolver returns for the
item's clean text. A *silent wrong strength* is a matched line whose strength differs from the truth
(or is missing) and that is not flagged for review: the figure that must stay at zero.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from iatro.text import fold
from ocr.generator import HANDWRITING, LAYOUTS, VARIANTS, DrugPool, GeneratedPage, Variant, generate_page
from ocr.model import OcrLine, OcrResult
from ocr.pipeline import OcrPipeline
from ocr.workers import pool_map

POSOLOGY_FIELDS = (
    "dose_per_intake", "unit", "intakes_per_day", "as_needed", "max_intakes_per_day", "duration_days",
    "moments",
)  # fmt: skip


_COUNTS = (
    "pages", "truth", "resolved", "other", "matched", "cis_expected", "cis_ok", "strength_ok",
    "silent_wrong_strength", "full_ok", "zone_total", "zone_ok", "flagged", "lines", "header_total",
    "header_ok",
)  # fmt: skip


@dataclass
class Metrics:
    pages: int = 0
    truth: int = 0
    resolved: int = 0  # lines the pipeline returned resolved
    other: int = 0  # ambiguous or unresolved lines returned
    matched: int = 0
    cis_expected: int = 0
    cis_ok: int = 0
    strength_ok: int = 0
    silent_wrong_strength: int = 0
    posology_ok: dict[str, int] = field(default_factory=lambda: dict.fromkeys(POSOLOGY_FIELDS, 0))
    full_ok: int = 0
    zone_total: int = 0
    zone_ok: int = 0
    flagged: int = 0
    lines: int = 0
    header_total: int = 0
    header_ok: int = 0
    seconds: float = 0.0  # each page's reading, summed: the latency a user waits per page
    wall_seconds: float = 0.0  # the whole corpus of the variant, pages side by side: the throughput
    workers: int = 1
    failures: list[str] = field(default_factory=list)

    def add(self, other: Metrics) -> None:
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for key in POSOLOGY_FIELDS:
            self.posology_ok[key] += other.posology_ok[key]
        self.seconds += other.seconds
        self.failures.extend(other.failures)

    @staticmethod
    def _ratio(a: int, b: int) -> float:
        return a / b if b else 1.0

    @property
    def recall(self) -> float:
        return self._ratio(self.matched, self.truth)

    @property
    def precision(self) -> float:
        return self._ratio(self.matched, self.resolved)

    @property
    def strength_accuracy(self) -> float:
        return self._ratio(self.strength_ok, self.matched)

    @property
    def full_line_accuracy(self) -> float:
        return self._ratio(self.full_ok, self.truth)

    @property
    def zone_accuracy(self) -> float:
        return self._ratio(self.zone_ok, self.zone_total)

    @property
    def review_rate(self) -> float:
        return self._ratio(self.flagged, self.lines)

    @property
    def seconds_per_page(self) -> float:
        return self.seconds / self.pages if self.pages else 0.0

    def posology_accuracy(self, name: str) -> float:
        return self._ratio(self.posology_ok[name], self.matched)

    def summary(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {
            "pages": self.pages,
            "items": self.truth,
            "recall": round(self.recall, 4),
            "precision": round(self.precision, 4),
            "cis_accuracy": round(self._ratio(self.cis_ok, self.cis_expected), 4),
            "strength_accuracy": round(self.strength_accuracy, 4),
            "silent_wrong_strengths": self.silent_wrong_strength,
            "full_line_accuracy": round(self.full_line_accuracy, 4),
            "ald_zone_accuracy": round(self.zone_accuracy, 4),
            "review_flag_rate": round(self.review_rate, 4),
            "header_accuracy": round(self._ratio(self.header_ok, self.header_total), 4),
            "seconds_per_page": round(self.seconds_per_page, 3),
        }
        if self.wall_seconds:
            out["workers"] = self.workers
            out["wall_seconds_per_page"] = round(self.wall_seconds / self.pages, 3)
        for name in POSOLOGY_FIELDS:
            out[f"posology.{name}"] = round(self.posology_accuracy(name), 4)
        return out


def _substances(line: OcrLine | object) -> tuple[str, ...]:
    subs = getattr(line, "substances", ())
    return tuple(sorted(s.name for s in subs))


def score_page(page: GeneratedPage, result: OcrResult, seconds: float) -> Metrics:
    m = Metrics(pages=1, truth=len(page.items), seconds=seconds, lines=len(result.lines))
    m.flagged = sum(line.needs_review for line in result.lines)
    m.resolved = sum(line.status == "resolved" for line in result.lines)
    m.other = len(result.lines) - m.resolved
    used: set[int] = set()
    where = f"{page.variant}/{page.layout}/seed {page.seed}"
    # An item is paired with a resolved line of the same substances. Of two lines of one substance
    # (CRESTOR 5 mg and ROSUVASTATINE 10 mg on one page), the pairs are chosen best first: the same
    # strength, then the most similar words, then the nearest place on the page, so that a flagged
    # misreading of one is not scored against the other's correct line.
    candidates = []
    for number, item in enumerate(page.items):
        want = _substances(item.expected)
        for candidate in result.lines:
            if candidate.status == "resolved" and _substances(candidate) == want:
                similar = fuzz.token_set_ratio(fold(item.drug_text), fold(candidate.input))
                candidates.append(
                    (
                        candidate.strength != item.strength,
                        -similar,
                        abs(candidate.index - number),
                        number,
                        candidate,
                    )
                )
    pairs: dict[int, OcrLine] = {}
    for _, _, _, number, paired in sorted(candidates, key=lambda c: c[:4]):
        if number not in pairs and paired.index not in used:
            pairs[number] = paired
            used.add(paired.index)
    for number, item in enumerate(page.items):
        line = pairs.get(number)
        if line is None:
            m.failures.append(f"{where}: missed '{item.drug_text}'")
            continue
        m.matched += 1
        ok = True
        if item.expected.product is not None:
            m.cis_expected += 1
            if line.product is not None and line.product.cis == item.expected.product.cis:
                m.cis_ok += 1
            else:
                ok = False
        if line.strength == item.strength:
            m.strength_ok += 1
        else:
            ok = False
            if not line.needs_review:
                m.silent_wrong_strength += 1
                m.failures.append(f"{where}: SILENT wrong strength {line.strength} for '{item.drug_text}'")
        expected, got = item.expected.posology, line.posology
        for name in POSOLOGY_FIELDS:
            if expected is not None and got is not None and getattr(expected, name) == getattr(got, name):
                m.posology_ok[name] += 1
            else:
                ok = False
        if item.zone is not None or page.layout == "bizone":
            m.zone_total += 1
            m.zone_ok += line.zone == item.zone
        if ok:
            m.full_ok += 1
        else:
            m.failures.append(
                f"{where}: wrong '{item.drug_text} | {item.posology_text}' -> '{line.input}' "
                f"strength {line.strength} review={line.needs_review} {list(line.reasons)}"
            )
    for line in result.lines:
        if line.index not in used and line.status == "resolved":
            m.failures.append(f"{where}: extra line '{line.ocr_text}' -> {line.input}")
    hints, truth = result.header_hints, page.header
    checks = [
        (truth.rpps, hints.prescriber_rpps),
        (truth.date, hints.date),
        (truth.patient_age, hints.patient_age),
        (truth.patient_weight_kg, hints.patient_weight_kg),
    ]
    for want_value, got_value in checks:
        if want_value is not None:
            m.header_total += 1
            m.header_ok += want_value == got_value
            if want_value != got_value:
                m.failures.append(f"{where}: header {want_value!r} read as {got_value!r}")
    return m


def run(pipeline: OcrPipeline, pages: Iterable[GeneratedPage]) -> dict[str, Metrics]:
    """Metrics per variant; each page read alone, timed from its bytes to its result."""
    out: dict[str, Metrics] = {}
    for page in pages:
        start = time.perf_counter()
        result = pipeline.read_bytes(page.data)
        seconds = time.perf_counter() - start
        out.setdefault(page.variant, Metrics()).add(score_page(page, result, seconds))
    return out


@dataclass(frozen=True)
class _Scorer:
    """Generates, reads and scores one page: what a worker of :func:`run_corpus` does."""

    pipeline: OcrPipeline
    pool: DrugPool

    def __call__(self, spec: tuple[int, str, str]) -> tuple[Metrics, bool]:
        seed, layout, variant = spec
        page = generate_page(self.pool, seed, layout, variant)  # type: ignore[arg-type]
        start = time.perf_counter()
        result = self.pipeline.read_bytes(page.data)
        return score_page(page, result, time.perf_counter() - start), page.family == HANDWRITING


def run_corpus(
    pipeline: OcrPipeline,
    pool: DrugPool,
    per_variant: int,
    seed: int,
    variants: Iterable[Variant] = VARIANTS,
    workers: int = 1,
) -> dict[str, Metrics]:
    """The corpus of :func:`ocr.generator.corpus`, pages generated and read side by side in
    ``workers`` forked processes; each variant timed as a whole (``wall_seconds``) and page by page.
    The pages printed in the handwriting-like face are also counted apart (``"handwriting"``, every
    variant together): a small share of the corpus whose figures the totals would hide."""
    out: dict[str, Metrics] = {}
    handwriting = Metrics()
    for variant in variants:
        specs = [(seed + i, LAYOUTS[i % len(LAYOUTS)], variant) for i in range(per_variant)]
        start = time.perf_counter()
        scored = pool_map(_Scorer(pipeline, pool), specs, workers, "process")
        total = Metrics(workers=workers)
        for metrics, handwritten in scored:
            total.add(metrics)
            if handwritten:
                handwriting.add(metrics)
        total.wall_seconds = time.perf_counter() - start
        out[variant] = total
    if handwriting.pages:
        out["handwriting"] = handwriting
    return out


def table(metrics: dict[str, Metrics]) -> str:
    """The metric table, one column per variant."""
    variants = list(metrics)
    summaries = [metrics[v].summary() for v in variants]
    keys = list(dict.fromkeys(key for summary in summaries for key in summary))
    rows = [(key, [summary.get(key, "-") for summary in summaries]) for key in keys]
    width = max(len(k) for k, _ in rows)
    lines = [f"{'metric':<{width}}  " + "  ".join(f"{v:>9}" for v in variants)]
    for key, values in rows:
        lines.append(f"{key:<{width}}  " + "  ".join(f"{value:>9}" for value in values))
    return "\n".join(lines)
