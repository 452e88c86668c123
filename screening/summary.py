"""The population summary: counts per risk level, top interacting pairs, top criteria, eligibility.

Both engines fill the same :class:`Aggregates` (the local engine chunk by chunk, Spark with group-bys)
and :func:`summarise` turns them into the JSON and text reports, so the two summaries are identical.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from iatro.kb.store import KnowledgeBase
from screening.options import ScreeningOptions
from screening.risk import BANDS, DISCLAIMER, FORMULA, WEIGHTS

FLAGS = ("town_door", "iatroprev", "optimedoc", "bilan_partage_medication")
TOTALS = (
    "n_lines",
    "unresolved_codes",
    "invalid_conditions",
    "contraindications",
    "deconseillees",
    "precautions",
    "a_prendre_en_compte",
    "stopp",
    "start",
)
LISTS = {"pairs": "interaction_pairs", "stopp": "stopp_criteria", "start": "start_criteria"}
TOP = 20


@dataclass
class Aggregates:
    patients: int = 0
    risk_levels: Counter[str] = field(default_factory=Counter)
    qt_levels: Counter[str] = field(default_factory=Counter)
    flags: dict[str, Counter[str]] = field(default_factory=lambda: {f: Counter() for f in FLAGS})
    totals: Counter[str] = field(default_factory=Counter)
    lists: dict[str, Counter[str]] = field(default_factory=lambda: {k: Counter() for k in LISTS})

    def add(self, other: Aggregates) -> None:
        self.patients += other.patients
        self.risk_levels.update(other.risk_levels)
        self.qt_levels.update(other.qt_levels)
        for f in FLAGS:
            self.flags[f].update(other.flags[f])
        self.totals.update(other.totals)
        for k in LISTS:
            self.lists[k].update(other.lists[k])


def _counts(values: pa.Array | pa.ChunkedArray) -> Counter[str]:
    out: Counter[str] = Counter()
    found = pc.value_counts(values)
    # The two fields as lists: a list of {"values", "counts"} dicts costs more than the counting.
    for value, count in zip(
        found.field("values").to_pylist(), found.field("counts").to_pylist(), strict=True
    ):
        out[_key(value)] += count
    return out


def _key(value: object) -> str:
    return "unknown" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def aggregate(table: pa.Table) -> Aggregates:
    """The aggregates of a table of output rows (any subset of the population)."""
    agg = Aggregates(patients=table.num_rows)
    if not table.num_rows:
        return agg
    agg.risk_levels = _counts(table["risk_level"])
    agg.qt_levels = _counts(table["qt_level"])
    for f in FLAGS:
        agg.flags[f] = _counts(table[f])
    for column in TOTALS:
        agg.totals[column] = int(pc.sum(table[column]).as_py() or 0)
    for key, column in LISTS.items():
        flat = pc.list_flatten(table[column])
        agg.lists[key] = _counts(flat) if len(flat) else Counter()
    return agg


def _top(counter: Counter[str]) -> list[dict[str, object]]:
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:TOP]
    return [{"name": name, "patients": count} for name, count in ranked]


def metadata(kb: KnowledgeBase, options: ScreeningOptions) -> dict[str, object]:
    return {
        "kb_version": kb.version,
        "editions": kb.manifest.editions(),
        "options": {
            "as_of": options.as_of.isoformat() if options.as_of else None,
            "window_days": options.window_days,
            "chronic_days": options.chronic_days,
            "chronic_min_dispensations": options.chronic_min_dispensations,
        },
        "risk_score": {
            "formula": FORMULA,
            "weights": dict(WEIGHTS),
            "bands": {name: f">= {minimum}" for name, minimum in BANDS},
            "note": DISCLAIMER,
        },
    }


def summarise(agg: Aggregates, meta: dict[str, object]) -> dict[str, object]:
    return {
        "patients": agg.patients,
        "risk_levels": {name: agg.risk_levels.get(name, 0) for name, _ in BANDS},
        "qt_levels": dict(sorted(agg.qt_levels.items())),
        "eligibility": {f: dict(sorted(agg.flags[f].items())) for f in FLAGS},
        "totals": {c: agg.totals.get(c, 0) for c in TOTALS},
        "top_interacting_pairs": _top(agg.lists["pairs"]),
        "top_stopp_criteria": _top(agg.lists["stopp"]),
        "top_start_criteria": _top(agg.lists["start"]),
        "metadata": meta,
    }


def text(summary: dict[str, object]) -> str:
    meta = summary["metadata"]
    assert isinstance(meta, dict)
    lines = [
        f"Iatro population screening — {summary['patients']} patients",
        f"KB {meta['kb_version']}",
        f"Options: {json.dumps(meta['options'], ensure_ascii=False)}",
        "",
        "Patients per risk level (ranking bands, not a clinical grading):",
    ]
    for name, count in summary["risk_levels"].items():  # type: ignore[attr-defined]
        lines.append(f"  {name:10} {count}")
    lines += ["", "Eligibility (true / false / unknown):"]
    for flag, counts in summary["eligibility"].items():  # type: ignore[attr-defined]
        lines.append(
            f"  {flag:26} {counts.get('true', 0)} / {counts.get('false', 0)} / {counts.get('unknown', 0)}"
        )
    for title, key in (
        ("Top interacting pairs (patients)", "top_interacting_pairs"),
        ("Top STOPP criteria (patients)", "top_stopp_criteria"),
        ("Top START criteria (patients)", "top_start_criteria"),
    ):
        lines += ["", title + ":"]
        lines += [f"  {item['patients']:>8}  {item['name']}" for item in summary[key]]  # type: ignore[attr-defined]
    risk = meta["risk_score"]
    lines += ["", f"Risk score: {risk['formula']}", risk["note"]]
    return "\n".join(lines) + "\n"


def write(out: Path, summary: dict[str, object]) -> None:
    (out / "summary.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    (out / "summary.txt").write_text(text(summary), encoding="utf-8")
