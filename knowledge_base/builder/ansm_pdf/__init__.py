"""The ANSM interaction thesaurus read from its official PDFs (issue 9).

ANSM publishes the thesaurus as PDF only. This package reads the thesaurus PDF and the "index des
substances" PDF with pdfplumber and builds the same :class:`~iatro.kb.thesaurus.ThesaurusEdition`
as the JSON import (``knowledge_base/builder/ansm.py``), so the engine can use either; ``compare``
sets the two side by side. Decisions and figures: ``knowledge_base/builder/ANSM_PDF_IMPORT.md``.

* :mod:`.words` — pdfplumber words (text, box, font) and lines; pages read by worker processes.
* :mod:`.thesaurus_layout` / :mod:`.index_layout` — the layouts of the two PDFs.
* :mod:`.importer` — the runtime model, with the JSON import's merge decisions.
* :mod:`.compare` — PDF edition vs JSON edition, each difference categorised.
"""

from __future__ import annotations

from knowledge_base.builder.ansm_pdf.compare import (
    CATEGORIES,
    Category,
    Comparison,
    Difference,
    JsonProvenance,
    compare,
    json_provenance,
)
from knowledge_base.builder.ansm_pdf.importer import (
    DEFAULT_ALT_CLASS_LABELS,
    PdfImportReport,
    build_edition,
    import_pdf,
    import_pdf_with_report,
)

__all__ = [
    "CATEGORIES",
    "DEFAULT_ALT_CLASS_LABELS",
    "Category",
    "Comparison",
    "Difference",
    "JsonProvenance",
    "PdfImportReport",
    "build_edition",
    "compare",
    "import_pdf",
    "import_pdf_with_report",
    "json_provenance",
]
