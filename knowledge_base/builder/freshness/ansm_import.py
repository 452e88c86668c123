"""``iatro kb import-ansm``: a thesaurus edition read from ANSM's PDFs, written as edition JSON.

The JSON is what ``iatro kb diff`` reads as OLD or NEW, so a new ANSM publication can be compared
with the compiled edition, and its effect on prescriptions measured, before anyone compiles it in.

The curated qualifications (``knowledge_base/curated/ansm_qualifications.yaml``) are checked
against the imported texts: a qualification whose rule is gone or whose condition text changed is
listed for review. It is never carried over silently, since it reads words the new edition may no
longer print.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iatro.errors import FieldError
from iatro.kb.qualifications import check_against, load_qualifications
from iatro.kb.thesaurus import LEVELS, ThesaurusEdition
from knowledge_base.builder.ansm_pdf import PdfImportReport, import_pdf_with_report
from knowledge_base.builder.files import CURATED_DIR
from knowledge_base.builder.freshness.editions import EDITION_NAME

QUALIFICATIONS_PATH = CURATED_DIR / "ansm_qualifications.yaml"


@dataclass(frozen=True)
class AnsmImport:
    edition: ThesaurusEdition
    report: PdfImportReport
    output: Path
    qualifications: int  # curated entries checked
    stale: list[str]  # their rule ids to review before use with this edition

    def summary(self) -> dict[str, Any]:
        rules = self.edition.rules
        entries = Counter(entry.level for rule in rules for entry in rule.levels)
        worst = Counter(rule.worst for rule in rules)
        return {
            "edition": self.edition.edition,
            "output": str(self.output),
            "rules": len(rules),
            "multi_level_rules": sum(1 for rule in rules if len(rule.level_codes) > 1),
            "level_entries": {level: entries[level] for level in LEVELS},
            "worst_level": {level: worst[level] for level in LEVELS},
            "index_substances": len(self.edition.substance_classes),
            "class_labels": len(self.edition.class_labels),
            "pages": self.report.pages,
            "index_pages": self.report.index_pages,
            "entries_without_level": self.report.entries_without_level,
            "layout_notes": len(self.report.layout_notes),
            "index_problems": len(self.report.index_problems),
            "seconds": round(self.report.seconds_total, 1),
            "curated_qualifications": self.qualifications,
            "curated_qualifications_to_review": self.stale,
        }


def _write_atomically(path: Path, data: bytes) -> None:
    # A half-written edition file would fail validation later with a confusing message.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def import_ansm(
    thesaurus_pdf: Path,
    index_pdf: Path | None,
    edition: str,
    out: Path | None = None,
    qualifications_path: Path = QUALIFICATIONS_PATH,
) -> AnsmImport:
    """Read the PDFs, write the edition JSON to ``out`` (default ``./thesaurus-<edition>.json``)."""
    if not EDITION_NAME.match(edition):
        raise FieldError("--edition", f"{edition!r} is not YYYY-MM")
    for name, path in (("THESAURUS", thesaurus_pdf), ("--index", index_pdf)):
        if path is not None and not path.is_file():
            raise FieldError(name, f"no such file: {path}")
    thesaurus, report = import_pdf_with_report(thesaurus_pdf, index_pdf, edition)
    output = out or Path(f"thesaurus-{edition}.json")
    _write_atomically(output, thesaurus.model_dump_json().encode())
    curated = load_qualifications(qualifications_path)
    return AnsmImport(thesaurus, report, output, len(curated), check_against(curated, thesaurus))


def render_import(result: AnsmImport) -> str:
    s = result.summary()
    lines = [
        f"ANSM thesaurus {s['edition']} imported from PDF in {s['seconds']} s -> {s['output']}",
        f"rules: {s['rules']} ({s['multi_level_rules']} with several levels); "
        f"index: {s['index_substances']} substances, {s['class_labels']} class labels",
        "level entries: " + ", ".join(f"{level} {n}" for level, n in s["level_entries"].items()),
        "worst level:   " + ", ".join(f"{level} {n}" for level, n in s["worst_level"].items()),
        f"layout notes {s['layout_notes']}, entries without level {s['entries_without_level']}, "
        f"index problems {s['index_problems']}",
    ]
    if not s["index_substances"]:
        lines.append("warning: no substance index (--index): the engine cannot match substances to rules")
    stale = s["curated_qualifications_to_review"]
    lines.append(
        f"curated qualifications: {len(stale)} of {s['curated_qualifications']} must be reviewed "
        f"for this edition (rule gone or condition text changed): not to be applied until then"
    )
    lines += [f"  {rule_id}" for rule_id in stale]
    return "\n".join(lines)
