"""Scanned or photographed ordonnances -> the analysis contract's lines, each with what to check.

    pipeline = OcrPipeline(Engine(load_kb()))
    result = pipeline.read_file(Path("ordonnance.jpg"))     # OcrResult

Steps, per page: the PDF text layer when there is one, else the image cleaned (``ocr.clean``) and read
by Tesseract (``ocr.tesseract``); words grouped into rows (``ocr.layout``); a row whose head the
resolver recognises as a drug starts an item, the posology rows under it (or the table cells at its
right) complete it; OCR confusions are undone first (``ocr.correct``). Each item is resolved by the
engine's resolver, its strength checked against the strengths BDPM has for the product
(``ocr.strength``): a strength that does not exist is snapped to the nearest one that does, and every
snapped or uncertain value sets ``needs_review`` with a reason: a wrong strength never passes silently.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import time
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from iatro.analysis import Engine
from iatro.errors import FieldError
from iatro.kb.strength import Strength
from iatro.model.prescription import LineInput
from iatro.model.report import LineReport
from iatro.resolve.lines import FORM_WORDS, Resolver, split_line
from iatro.resolve.posology import parse_posology
from iatro.text import fold, fold_words
from ocr import strength as strength_check
from ocr.clean import TARGET_WIDTH, clean, keep_tall_marks
from ocr.correct import (
    BULLET_TOKEN,
    GLUED,
    NAME_NUMBER,
    POSOLOGY_WORDS,
    Fix,
    NameFixer,
    as_number,
    fix_posology,
    fix_strengths,
    strip_bullet,
    unit_of,
)
from ocr.layout import (
    Columns,
    Row,
    column_labels,
    columns_from,
    group_rows,
    is_footer,
    is_table_header,
    zone_heading,
)
from ocr.model import BBox, HeaderHints, Layout, OcrLine, OcrPage, OcrResult, PageSource, Zone
from ocr.tesseract import PAGE_TIMEOUT_S, PageTimeout, Word, read_words
from ocr.workers import PoolKind, cores, pool_map

MAX_PAGES = 30
MAX_BYTES = 60 * 1024 * 1024
# Word confidences (Tesseract, 0-100) under which a value is not trusted without a look. Chosen on the
# generated corpus (benchmarks/test_bench_ocr.py): every misread strength seen there scored below.
STRENGTH_CONFIDENCE = 80.0
CONFUSABLE_CONFIDENCE = 93.0
NAME_CONFIDENCE = 60.0
POSOLOGY_CONFIDENCE = 75.0
# Below this a word is flagged even when a second reading gave the same text.
CONFIRMED_CONFIDENCE = 30.0
# A drug line's first word that is a header's word: such a line is never a drug ("Docteur", "Poids").
_NOT_A_DRUG_TEXT = """
docteur dr pr professeur medecin rpps tel tel. telephone n no mme m madame monsieur mr mlle ne nee
poids date service centre hopital chu unite ordonnance prescriptions patient age adresse le la en
traitement a signature cachet am finess
"""
_NOT_A_DRUG = frozenset(_NOT_A_DRUG_TEXT.split())
_MASS_UNITS = {"mg", "g", "µg", "ng", "ui", "ml", "%", "mmol"}
_CELL_VALUES = {"1": "1", "2": "2", "3": "3", "4": "4", "1/2": "1/2", "½": "1/2", "0,5": "1/2", "0.5": "1/2",
                "1/4": "1/4", "3/4": "3/4", "0": "0", "-": "0", "—": "0", "l": "1", "I": "1", "|": "1",
                "]": "1", "!": "1", "Il": "1", "O": "0", "o": "0", "Z": "2", "l/2": "1/2", "1/Z": "1/2",
                "I/2": "1/2"}  # fmt: skip
# Readings of a cell that are no cell value but one glyph away from one: a half whose slash was lost
# (no cell holds twelve tablets), a "1" with a speck on it read as a letter. Taken, and flagged.
_LOOKALIKE_CELLS = {
    **dict.fromkeys(("12", "1.2", "1,2", "1:2", "l2", "I2"), "1/2"),
    **dict.fromkeys(("i", "ï", "î", "í", "ì", "j", "t", "1'", "'1", "Ï", "Î"), "1"),
}
_UNREAD_INK = 0.012
# A matin-midi-soir(-coucher) matrix: "1-0-1", "1/2-0-0-1".
_MATRIX = re.compile(
    r"(?<![\d/-])(\d+(?:/\d)?(?:-\d+(?:/\d)?){2,3})(?![\d/-])"
)  # share of dark pixels in an empty-read cell that says something is printed there


@dataclass
class _Budget:
    """The time one page may still take; ``cut`` once a reading was stopped by it."""

    deadline: float
    limit: float
    cut: bool = False


# The budget of the page the current thread (or worker process) is reading: set by _read_page, read
# by every Tesseract call of that page however deep, without threading it through each helper.
_BUDGET: ContextVar[_Budget | None] = ContextVar("ocr_page_budget", default=None)


def _ocr(grey: npt.NDArray[np.uint8], **options: object) -> list[Word]:
    """``read_words`` within the page's time budget: PageTimeout once it is spent."""
    budget = _BUDGET.get()
    if budget is None:
        return read_words(grey, **options)  # type: ignore[arg-type]
    left = budget.deadline - time.perf_counter()
    if left <= 0.05:
        budget.cut = True
        raise PageTimeout(f"the page took more than {budget.limit:g} s")
    try:
        return read_words(grey, timeout=left, **options)  # type: ignore[arg-type]
    except PageTimeout:
        budget.cut = True
        raise PageTimeout(f"the page took more than {budget.limit:g} s") from None


@dataclass
class _TextPage:
    words: list[Word]
    width: float
    height: float


@dataclass
class _ImagePage:
    image: Image.Image


@dataclass
class _Item:
    rows: list[Row]
    drug_words: list[Word]
    drug_text: str  # corrected, posology cut off
    inline_posology: str | None
    zone: Zone | None
    fixes: list[Fix]
    name_words: list[Word] = field(default_factory=list)
    posology_words: list[Word] = field(default_factory=list)
    posology_parts: list[str] = field(default_factory=list)
    table_cells: str | None = None
    first_cells: str | None = None  # the cells as the page's first reading saw them, to compare
    reasons: list[str] = field(default_factory=list)
    cells_left: float | None = None  # in a table, where the cells begin
    confirmed: bool = False  # a second reading of the line gave the same text
    second_reading: str | None = None  # what the second reading gave, when it differed


@dataclass
class _PageRead:
    page: OcrPage
    items: list[_Item]
    header: list[Row]
    all_rows: list[Row]
    width: float
    height: float


def sniff(data: bytes) -> str | None:
    """The file's kind from its first bytes: the name of a file says nothing reliable."""
    if data.startswith(b"%PDF") or data[:1024].find(b"%PDF-") >= 0:
        return "pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if data.startswith(b"BM"):
        return "bmp"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "heic"  # an iPhone's photograph
    return None


_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})


@cache
def _open_heif() -> bool:
    """Teach Pillow HEIC, once, when the first HEIC file comes; False without pillow-heif (its wheels
    bundle libheif and x265: a deployment may leave it out, and HEIC files are then refused)."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def _size(limit: int) -> str:
    return f"{limit / 1e6:g} MB" if limit >= 1_000_000 else f"{limit} bytes"


class OcrPipeline:
    """Owns the resolver's name vocabulary; ``read_*`` may be called from several threads.

    ``workers``: pages of one document read side by side (default: the cores), in forked processes
    (``pool="process"``, for a command) or threads (``pool="thread"``, for a server: see
    ``ocr.workers``). ``page_timeout``: seconds one page may take, clean-up and every reading
    included; a page over it is cut short, said so, and its lines flagged. ``max_bytes``: the largest
    file accepted.
    """

    def __init__(
        self,
        engine: Engine,
        workers: int | None = None,
        page_timeout: float = PAGE_TIMEOUT_S,
        pool: PoolKind = "process",
        max_bytes: int = MAX_BYTES,
    ):
        self.engine = engine
        self.resolver: Resolver = engine.resolver
        self.fixer = NameFixer(self.resolver.index)
        self.workers = workers
        self.page_timeout = page_timeout
        self.pool: PoolKind = pool
        self.max_bytes = max_bytes

    # -- input ----------------------------------------------------------------------------------
    def read_file(self, path: Path, field_name: str = "FILE") -> OcrResult:
        try:
            if path.stat().st_size > self.max_bytes:
                raise FieldError(field_name, f"{path} is larger than {_size(self.max_bytes)}")
            data = path.read_bytes()
        except IsADirectoryError:
            raise FieldError(field_name, f"{path} is a directory, not a file") from None
        except OSError as exc:
            raise FieldError(field_name, f"cannot read {path}: {exc.strerror}") from None
        return self.read_bytes(data, field_name)

    def read_bytes(self, data: bytes, field_name: str = "FILE") -> OcrResult:
        pages = self._pages(data, field_name)
        reads = pool_map(
            self._read_numbered, list(enumerate(pages, start=1)), self.workers or cores(), self.pool
        )
        return self._result(reads)

    def _read_numbered(self, numbered: tuple[int, _TextPage | _ImagePage]) -> _PageRead:
        return self._read_page(*numbered)

    def _pages(self, data: bytes, field_name: str) -> list[_TextPage | _ImagePage]:
        if not data:
            raise FieldError(field_name, "the file is empty")
        if len(data) > self.max_bytes:
            raise FieldError(field_name, f"the file is larger than {_size(self.max_bytes)}")
        kind = sniff(data)
        if kind is None:
            raise FieldError(field_name, "not an image (JPEG, PNG, TIFF, HEIC) or a PDF")
        if kind == "pdf":
            return self._pdf_pages(data, field_name)
        if kind == "heic" and not _open_heif():
            raise FieldError(field_name, "a HEIC image, and pillow-heif is not installed: send a JPEG or PNG")
        try:
            image = Image.open(io.BytesIO(data))
            frames = []
            for frame in ImageSequence.Iterator(image):
                frame.load()
                frames.append(_ImagePage(ImageOps.exif_transpose(frame.copy())))
                if len(frames) > MAX_PAGES:
                    raise FieldError(field_name, f"more than {MAX_PAGES} pages")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise FieldError(field_name, f"the {kind.upper()} image cannot be decoded: {exc}") from None
        except Image.DecompressionBombError as exc:
            raise FieldError(field_name, f"the image is too large: {exc}") from None
        return list(frames)

    def _pdf_pages(self, data: bytes, field_name: str) -> list[_TextPage | _ImagePage]:
        import pdfplumber
        from pdfminer.pdfparser import PDFSyntaxError

        pages: list[_TextPage | _ImagePage] = []
        try:
            with pdfplumber.open(io.BytesIO(data)) as pdf:
                if len(pdf.pages) > MAX_PAGES:
                    raise FieldError(field_name, f"the PDF has {len(pdf.pages)} pages (at most {MAX_PAGES})")
                if not pdf.pages:
                    raise FieldError(field_name, "the PDF has no page")
                for page in pdf.pages:
                    words = page.extract_words(keep_blank_chars=False, use_text_flow=False)
                    if sum(any(ch.isalpha() for ch in w["text"]) for w in words) >= 3:
                        pages.append(
                            _TextPage(_pdf_words(words), float(page.width) * 4, float(page.height) * 4)
                        )
                    else:
                        # A scan saved as PDF: its page is an image, read like one, rendered at the
                        # width the clean-up brings every page to.
                        dpi = min(400.0, max(150.0, 72.0 * TARGET_WIDTH / float(page.width or 595)))
                        pages.append(_ImagePage(page.to_image(resolution=dpi).original.copy()))
        except FieldError:
            raise
        except (PDFSyntaxError, ValueError, KeyError, TypeError, OSError) as exc:
            raise FieldError(field_name, f"the PDF cannot be read: {type(exc).__name__}: {exc}") from None
        except Exception as exc:  # pdfminer raises many ad-hoc errors on damaged files
            if type(exc).__module__.startswith(("pdfminer", "pdfplumber", "pypdfium2")):
                raise FieldError(field_name, f"the PDF cannot be read: {exc}") from None
            raise
        return pages

    # -- one page -------------------------------------------------------------------------------
    def _read_page(self, number: int, page: _TextPage | _ImagePage) -> _PageRead:
        start = time.perf_counter()
        budget = _Budget(start + self.page_timeout, self.page_timeout)
        token = _BUDGET.set(budget)
        try:
            return self._read_page_within(number, page, start, budget)
        finally:
            _BUDGET.reset(token)

    def _read_page_within(
        self, number: int, page: _TextPage | _ImagePage, start: float, budget: _Budget
    ) -> _PageRead:
        warnings: list[str] = []
        grey: npt.NDArray[np.uint8] | None = None
        source: PageSource
        if isinstance(page, _TextPage):
            words, width, height, source = page.words, page.width, page.height, "text-layer"
        else:
            source = "ocr"
            cleaned = clean(page.image)
            grey = cleaned.grey
            height, width = float(grey.shape[0]), float(grey.shape[1])
            try:
                words = _ocr(grey)
            except PageTimeout as exc:
                words = []
                warnings.append(f"page {number}: {exc}; the page was not read")
        rows = group_rows(words)
        items, header, layout = self._items(rows, grey, warnings, number)
        if grey is not None:
            for item in items:
                if _uncertain(item) and not budget.cut:
                    self._confirm(item, grey)
        if budget.cut and words:
            # Stopped part-way (a table's cells, a second reading): what was read is kept, and said
            # to be incomplete on the page and on every line of it.
            warnings.append(
                f"page {number}: the reading was stopped at the {budget.limit:g} s limit; "
                "lines may be missing or incomplete"
            )
            for item in items:
                item.reasons.append(f"page {number} was not read to the end (time limit)")
        if not items and not any("not read" in w for w in warnings):
            warnings.append(f"page {number}: no drug line found")
        record = OcrPage(
            number=number,
            source=source,
            layout=layout,
            width=int(width),
            height=int(height),
            text_lines=len(rows),
            drug_lines=len(items),
            seconds=round(time.perf_counter() - start, 3),
            warnings=tuple(warnings),
        )
        return _PageRead(record, items, header, rows, width, height)

    def _items(
        self, rows: list[Row], grey: npt.NDArray[np.uint8] | None, warnings: list[str], number: int
    ) -> tuple[list[_Item], list[Row], Layout]:
        zone: Zone | None = None
        layout: Layout = "ordonnance"
        items: list[_Item] = []
        header: list[Row] = []
        current: _Item | None = None
        columns: Columns | None = None
        cells: list[Word] = []
        for row in rows:
            heading = zone_heading(row.text)
            if heading is not None:
                zone = "ald" if heading == "ald" else "hors_ald"
                layout, current = "bizone", None
                continue
            if columns is None and is_table_header(row):
                columns, cells = self._table(row, grey)
                if columns is not None:
                    layout, current = "table", None
                    continue
            item = self._drug(row, columns)
            if item is not None:
                item.zone = zone
                if columns is not None:
                    self._cells(item, row, columns, cells, grey)
                items.append(item)
                current = item
                continue
            if current is not None and columns is None and self._posology_row(row, current, grey):
                continue
            if not items:
                header.append(row)
            current = None
        return items, header, layout

    # -- drug lines -----------------------------------------------------------------------------
    def _drug(self, row: Row, columns: Columns | None) -> _Item | None:
        words = [w for w in row.words if columns is None or w.x1 <= columns.left + 0.1 * columns.width]
        while words and (
            BULLET_TOKEN.fullmatch(words[0].text)
            or (re.fullmatch(r"\d{1,2}", words[0].text) and len(words) > 1 and _name_like(words[1].text))
        ):
            words = words[1:]  # an item number ("1)", or "1" before a name in capitals) or a bullet
        if not words:
            return None
        tokens = [w.text for w in words]
        tokens[0] = strip_bullet(tokens[0]) or tokens[0]
        first = fold(tokens[0]).strip(".:,")
        if not first or first in _NOT_A_DRUG or sum(ch.isalpha() for ch in first) < 2:
            return None
        head = fold_words(tokens[0]).split()
        if all(w in POSOLOGY_WORDS or w in FORM_WORDS or len(w) == 1 for w in head):
            return None  # "gél 3 fois par jour", "l'gélule": a posology whose first number was misread
        if first[0].isdigit() and sum(ch.isalpha() for ch in first) < len(first) / 2:
            return None  # a posology ("1 cp le matin"), an address ("25 rue ...")
        cut = _strength_cut(tokens)
        fixes: list[Fix] = []
        name = _unstop(self.fixer.fix_words(tokens[:cut], fixes), cut < len(tokens))
        rest = fix_strengths(tokens[cut:], fixes)
        text = " ".join(name + rest)
        parsed = split_line(text)
        if len(parsed.name.replace(" ", "")) < 3:
            return None
        report = self.resolver.resolve(LineInput(text=text))
        if report.status == "unresolved" and not _looks_like_drug(parsed.strengths, tokens):
            return None
        drug_text, inline = text, None
        if parsed.posology and _is_posology(parsed.posology):
            at = text.rfind(parsed.posology)
            if at > 0:
                # The rest of the form ("quadrisécable") may precede the posology on the line.
                tail = parsed.posology.split()
                start = next((i for i, t in enumerate(fix_posology(tail, [])) if _posology_word(t)), 0)
                qualifier = " ".join(tail[:start])
                drug_text = text[:at].rstrip(" ,;-") + (" " + qualifier.rstrip(",;") if qualifier else "")
                inline = " ".join(tail[start:])
        item = _Item([row], words, drug_text, None, None, fixes, name_words=words[: max(cut, 1)])
        if columns is not None:
            item.cells_left = columns.left + 0.1 * columns.width
        if inline:
            inline_words = inline.split()
            item.inline_posology = " ".join(fix_posology(inline_words, item.fixes))
            item.posology_words = (
                words[len(words) - len(inline_words) :] if len(inline_words) < len(words) else []
            )
        return item

    def _posology_row(self, row: Row, item: _Item, grey: npt.NDArray[np.uint8] | None) -> bool:
        last = item.rows[-1]
        if len(item.rows) >= 3 or row.y0 - last.y1 > 1.8 * max(row.height, 1.0) or is_footer(row.text):
            return False
        if not _posology_head(row.words):
            # The first glyph of a posology is often a lone "1" the OCR read as "+" or lost: when the
            # drug has no posology yet, the row right under it is read again before it is given up.
            if grey is None or item.inline_posology or item.posology_parts or len(row.words) > 8:
                return False
            again = self._reread(grey, row)
            if not again or not _posology_head(again):
                return False
            row = Row(again)
        item.rows.append(row)
        item.posology_parts.append(" ".join(fix_posology([w.text for w in row.words], item.fixes)))
        item.posology_words.extend(row.words)
        return True

    # -- tables ---------------------------------------------------------------------------------
    def _table(self, header: Row, grey: npt.NDArray[np.uint8] | None) -> tuple[Columns | None, list[Word]]:
        """Columns of a Matin/Midi/Soir/Coucher table and the words of its cells.

        Tesseract's single-column mode drops lone digits far from a line's text; the cells' area is
        read again as a block of text (mode 6), which keeps them, with the column labels.
        """
        columns = columns_from(column_labels(header))
        if grey is None:
            return columns, []
        w = grey.shape[1]
        left = int(columns.left - 0.3 * columns.width) if columns is not None else int(w * 0.5)
        left = max(0, min(left, int(w * 0.8)))
        top = max(0, header.y0 - int(header.height))
        # Cells hold digits and slashes: every mark under a third of a line's height is a speck.
        region = keep_tall_marks(grey[top:, left:], 0.3 * header.height)
        try:
            words = _ocr(region, psm=6, offset=(left, top))
        except PageTimeout:
            return columns, []
        # Labels the first reading missed are taken from this one, when their box is the size of
        # their letters (a box spanning two labels would move the column).
        labels = column_labels(header)
        for name, word in column_labels(
            Row([x for x in words if abs(x.cy - header.cy) < 1.5 * header.height])
        ).items():
            if name not in labels and word.x1 - word.x0 <= 0.9 * word.height * len(word.text):
                labels[name] = word
        columns = columns_from(labels) or columns
        if columns is None:
            return None, []
        return columns, [x for x in words if x.cx > columns.left and x.cy > header.y1]

    def _cells(
        self, item: _Item, row: Row, columns: Columns, cells: list[Word], grey: npt.NDArray[np.uint8] | None
    ) -> None:
        band = [w for w in row.words if w.cx > columns.left]
        item.first_cells = _cells_of(band, columns)
        if grey is not None:
            slack = 0.35 * row.height
            band = [w for w in cells if row.y0 - slack <= w.cy <= row.y1 + slack]
        values = ["0"] * 4
        seen = [False] * 4
        unread = [False] * 4  # a glyph is there that is no cell value: print, whatever the ink says
        for word in band:
            if not any(ch.isalnum() for ch in word.text) or word.height < 0.45 * row.height:
                continue  # a speck, a rule's fragment: not a printed value
            core = word.text.strip(".,;:'\"°")
            # A value glued to specks ("1..."): its glyphs are the left part of the box.
            share = len(core) / len(word.text) if core and word.text.startswith(core) else 1.0
            column = columns.nearest(word.x0 + (word.x1 - word.x0) * share / 2)
            if column is None:
                if core in _CELL_VALUES and core not in ("0", "-", "—"):
                    item.reasons.append(f"table value '{word.text}' lies between two columns: check it")
                continue
            value = _CELL_VALUES.get(core)
            if value is None and core in _LOOKALIKE_CELLS:
                value = _LOOKALIKE_CELLS[core]
                item.reasons.append(
                    f"table cell ({_COLUMN_NAMES[column]}) read '{word.text}', taken as {value}"
                )
            if value is None:
                item.reasons.append(f"table cell ({_COLUMN_NAMES[column]}) unreadable: '{word.text}'")
                unread[column] = True
                continue
            values[column], seen[column] = value, True
            item.posology_words.append(word)
        if grey is not None:
            for column in range(4):
                if seen[column]:
                    continue
                x0 = int(columns.centres[column] - 0.3 * columns.width)
                x1 = int(columns.centres[column] + 0.3 * columns.width)
                y0, y1 = int(row.y0 - 0.1 * row.height), int(row.y1 + 0.1 * row.height)
                box = keep_tall_marks(
                    grey[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)], 0.45 * row.height
                )
                if not unread[column] and (not box.size or float((box < 110).mean()) <= _UNREAD_INK):
                    continue
                first = (item.first_cells or "0-0-0-0").split("-")[column]
                if first != "0" and not unread[column]:
                    # The page's first reading saw this value and ink is there: take it; the line
                    # is confirmed or flagged with the others (the two readings differ).
                    values[column], seen[column] = first, True
                    continue
                # Something is printed there: read that cell alone, as digits.
                cell = self._read_cell(grey, columns, column, row)
                value = _CELL_VALUES.get(cell.text) if cell is not None else None
                if cell is not None and value is None and cell.text in _LOOKALIKE_CELLS:
                    value = _LOOKALIKE_CELLS[cell.text]
                    item.reasons.append(
                        f"table cell ({_COLUMN_NAMES[column]}) read '{cell.text}', taken as {value}"
                    )
                if (cell is None or value is None) and first != "0":
                    # Unreadable here, read by the page's first reading: taken, and flagged above.
                    values[column], seen[column] = first, True
                    continue
                if cell is None or value is None:
                    item.reasons.append(
                        f"table cell ({_COLUMN_NAMES[column]}) has print the OCR did not read"
                    )
                    continue
                values[column], seen[column] = value, True
                item.posology_words.append(cell)
        item.table_cells = "-".join(values)

    def _reread(self, grey: npt.NDArray[np.uint8], row: Row) -> list[Word]:
        """The row read again on its own, enlarged: a second, partly independent opinion."""
        h, w = grey.shape
        pad_y, pad_x = int(0.6 * row.height), int(1.0 * row.height)
        x0, x1 = max(0, row.x0 - pad_x), min(w, row.x1 + pad_x)
        y0, y1 = max(0, row.y0 - pad_y), min(h, row.y1 + pad_y)
        crop = grey[y0:y1, x0:x1]
        if crop.size == 0:
            return []
        zoom = 1.5
        big = np.asarray(
            cv2.resize(crop, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC), dtype=np.uint8
        )
        try:
            words = _ocr(big, psm=7)
        except PageTimeout:
            return []
        return [
            Word(
                x.text,
                x.conf,
                int(x.x0 / zoom) + x0,
                int(x.y0 / zoom) + y0,
                int(x.x1 / zoom) + x0,
                int(x.y1 / zoom) + y0,
                -1,
            )
            for x in words
            if not (not any(ch.isalnum() for ch in x.text) and x.conf < 60)
        ]

    def _confirm(self, item: _Item, grey: npt.NDArray[np.uint8]) -> None:
        """Read the item's rows again; the same corrected text twice confirms the uncertain words."""
        again = self._reread(grey, item.rows[0])
        first = [self._row_key(item.rows[0].words, True, item.cells_left)]
        second = [self._row_key(again, True, item.cells_left)]
        if first != second and again and item.inline_posology and item.table_cells is None:
            reread = self._drug(Row(again), None)
            if reread is not None and reread.inline_posology:
                _prefer_understood(item, -1, [], reread.inline_posology)
        if item.table_cells is None:
            for number, row in enumerate(item.rows[1:]):
                again = self._reread(grey, row)
                first.append(self._row_key(row.words, False, None))
                second.append(self._row_key(again, False, None))
                if first[-1] != second[-1] and again:
                    _prefer_understood(item, number, again)
        elif item.first_cells is not None and item.first_cells != item.table_cells:
            second.append(f"cells {item.first_cells}")
            first.append(f"cells {item.table_cells}")
        item.confirmed = first == second
        if not item.confirmed:
            item.second_reading = " / ".join(second)

    def _row_key(self, words: list[Word], drug: bool, cells_left: float | None) -> str:
        if cells_left is not None:
            words = [w for w in words if w.x1 <= cells_left]
        tokens = [w.text for w in words]
        if drug:
            while tokens and BULLET_TOKEN.fullmatch(tokens[0]):
                tokens = tokens[1:]
            cut = _strength_cut(tokens)
            tokens = _unstop(self.fixer.fix_words(tokens[:cut], []), cut < len(tokens)) + fix_strengths(
                tokens[cut:], []
            )
        else:
            tokens = fix_posology(tokens, [])
        return fold(" ".join(tokens))

    def _read_cell(self, grey: npt.NDArray[np.uint8], columns: Columns, column: int, row: Row) -> Word | None:
        h, w = grey.shape
        x0 = max(0, int(columns.centres[column] - 0.45 * columns.width))
        x1 = min(w, int(columns.centres[column] + 0.45 * columns.width))
        y0, y1 = max(0, int(row.y0 - 0.4 * row.height)), min(h, int(row.y1 + 0.4 * row.height))
        try:
            words = _ocr(
                keep_tall_marks(grey[y0:y1, x0:x1], 0.45 * row.height),
                psm=7,
                offset=(x0, y0),
                whitelist="0123456789/,",
            )
        except PageTimeout:
            return None
        words = [x for x in words if x.height >= 0.45 * row.height]
        return words[0] if len(words) == 1 else None

    # -- resolution and checks ------------------------------------------------------------------
    def _finish(self, item: _Item, index: int, page: int, width: float, height: float) -> OcrLine:
        reasons = list(item.reasons)
        if item.table_cells is not None:
            posology = item.table_cells
        else:
            parts = [p for p in (item.inline_posology, *item.posology_parts) if p]
            posology = " ".join(parts)
        text = item.drug_text
        report = self.resolver.resolve(LineInput(text=text, posology=posology or None), index)
        parsed = split_line(text)
        read = parsed.strengths
        kept: tuple[Strength, ...] | None = read or None
        strength_read: str | None = None
        entries = (
            strength_check.family(self.resolver, report, parsed) if report.status != "unresolved" else []
        )
        options = strength_check.strength_options(entries)
        strength_conf = _strength_confidence(item.drug_words)
        if read and options and not strength_check.exists(read, options):
            snapped = strength_check.nearest(read, options)
            if snapped is not None:
                text = strength_check.replace_strength(text, snapped)
                report = self.resolver.resolve(LineInput(text=text, posology=posology or None), index)
                kept = snapped
                strength_read = strength_check.format_strength(read)
                reasons.append(
                    f"strength read '{strength_read}' does not exist for this product in BDPM; "
                    f"snapped to {strength_check.format_strength(snapped)}"
                )
            else:
                kept = None
                reasons.append(
                    f"strength '{strength_check.format_strength(read)}' does not exist for this product "
                    "in BDPM and is not a likely misreading of one: check it"
                )
        elif read and options:
            # A second reading that gives the same line lowers the bar, never to nothing.
            low, confusable = (
                (CONFIRMED_CONFIDENCE, CONFIRMED_CONFIDENCE) if item.confirmed
                else (STRENGTH_CONFIDENCE, CONFUSABLE_CONFIDENCE)
            )  # fmt: skip
            if strength_conf < low:
                reasons.append(f"strength read with low confidence ({strength_conf:.0f} %)")
            else:
                near = strength_check.confusable(read, options)
                if near and strength_conf < confusable:
                    others = ", ".join(strength_check.format_strength(o) for o in near)
                    reasons.append(
                        f"strength {strength_check.format_strength(read)} could be a misreading of {others} "
                        f"(confidence {strength_conf:.0f} %)"
                    )
        elif not read and (len(options) > 1 or report.product is None):
            reasons.append(f"no strength read; BDPM has {len(options)} strength(s) for this drug")
        if report.product is not None:
            product_strength = self._product_strength(report)
            if product_strength is not None:
                kept = product_strength
        reasons.extend(self._review(report, item, posology))
        confidence = _confidence(item.drug_words + item.posology_words)
        rows = item.rows
        bbox = BBox(
            x0=_frac(min(r.x0 for r in rows), width),
            y0=_frac(min(r.y0 for r in rows), height),
            x1=_frac(max([r.x1 for r in rows] + [w.x1 for w in item.posology_words]), width),
            y1=_frac(max(r.y1 for r in rows), height),
        )
        ocr_text = " / ".join(r.text for r in rows)
        shown = f"{text}, {posology}" if posology else text
        base = report.model_dump()
        base.update(
            input=shown,
            substance_ids=report.substance_ids,
            confidence=round(confidence, 3),
            needs_review=bool(reasons),
            reasons=tuple(dict.fromkeys(reasons)),
            page=page,
            bbox=bbox,
            zone=item.zone,
            ocr_text=ocr_text,
            strength=strength_check.format_strength(kept) if kept else None,
            strength_read=strength_read,
        )
        return OcrLine.model_validate(base)

    def _product_strength(self, report: LineReport) -> tuple[Strength, ...] | None:
        assert report.product is not None
        product = self.resolver.kb.by_cis.get(report.product.cis)
        if product is None:
            return None
        for entry in self.resolver.index.stems.get(product.stem, ()):
            if entry.product.cis == product.cis:
                return entry.strengths or None
        return None

    def _review(self, report: LineReport, item: _Item, posology: str) -> list[str]:
        reasons = []
        if report.status == "ambiguous":
            reasons.append(f"ambiguous: {report.reason or 'several products fit'}")
        elif report.status == "unresolved":
            reasons.append(f"looks like a drug line but is not recognised: {report.reason}")
        if report.match and "spelling" in report.match:
            reasons.append("drug name recognised after a spelling correction")
        for fix in item.fixes:
            if fix.kind == "name":
                reasons.append(f"drug name corrected: '{fix.before}' read as '{fix.after}'")
            elif fix.kind == "matrix":
                reasons.append(f"posology read as '{fix.before}', taken as the matrix '{fix.after}'")
            elif fix.kind == "comma":
                reasons.append(
                    f"strength read as '{fix.before}', taken as '{fix.after}' (a lost decimal comma)"
                )
        floor = CONFIRMED_CONFIDENCE if item.confirmed else None
        if item.second_reading is not None:
            reasons.append(f"a second reading of the line differs: '{item.second_reading}'")
        name_conf = min(
            (w.conf for w in item.name_words if any(ch.isalpha() for ch in w.text)), default=100.0
        )
        if name_conf < (floor or NAME_CONFIDENCE):
            reasons.append(f"drug name read with low confidence ({name_conf:.0f} %)")
        if not posology:
            reasons.append("no posology found for this drug")
        elif report.posology is not None and not report.posology.parsed:
            reasons.append(f"posology not understood: {report.posology.note or posology}")
        elif report.posology is not None and report.posology.dose_per_intake is None:
            # A schedule without a dose ("comprimé matin et soir") is how a lost first digit reads.
            reasons.append("posology without a dose: the first number may have been lost")
        for matrix in _MATRIX.finditer(posology):
            high = _high_dose(matrix.group(1))
            if high:
                reasons.append(f"{high} units at one moment in '{matrix.group(1)}': check the reading")
        numbers = [w.conf for w in item.posology_words if any(ch.isdigit() for ch in w.text)]
        if numbers and min(numbers) < (floor or POSOLOGY_CONFIDENCE):
            reasons.append(f"a posology number was read with low confidence ({min(numbers):.0f} %)")
        return reasons

    # -- document -------------------------------------------------------------------------------
    def _result(self, reads: Sequence[_PageRead]) -> OcrResult:
        lines: list[OcrLine] = []
        warnings: list[str] = []
        for read in reads:
            warnings.extend(read.page.warnings)
            for item in read.items:
                lines.append(self._finish(item, len(lines), read.page.number, read.width, read.height))
        if not lines:
            warnings.append("no drug line found in the document")
        hints = header_hints(
            [r for read in reads for r in read.header], [r for read in reads for r in read.all_rows]
        )
        return OcrResult(
            kb_version=self.engine.kb.version,
            pages=tuple(read.page for read in reads),
            lines=tuple(lines),
            header_hints=hints,
            warnings=tuple(warnings),
        )


_COLUMN_NAMES = ("matin", "midi", "soir", "coucher")


def _strength_cut(tokens: list[str]) -> int:
    """Where the strength begins on a drug line (the name's words are before it). The first word
    itself when the name and the strength were read as one ("Levothyroxine-62,5 µg")."""
    if len(tokens) > 1 and NAME_NUMBER.match(tokens[0]) and unit_of(tokens[1]) is not None:
        return 0
    return next((i for i in range(1, len(tokens)) if _strength_start(tokens, i)), len(tokens))


def _strength_start(tokens: list[str], i: int) -> bool:
    token = tokens[i]
    if token[:1].isdigit():
        return True
    glued = GLUED.match(token)
    if glued and unit_of(glued.group(2)) is not None:
        return True
    following = tokens[i + 1] if i + 1 < len(tokens) else ""
    if NAME_NUMBER.match(token) and unit_of(following) is not None:
        return True
    return as_number(token) is not None and unit_of(following) is not None


def _unstop(name: list[str], strength_follows: bool) -> list[str]:
    """The name's words without a stop or comma glued to the last one when the strength follows: no
    drug is printed "VIATRIS, 500 mg", a speck read as a comma is (and the strength is then lost)."""
    if not strength_follows:
        return name
    name = list(name)
    while len(name) > 1 and name[-1] and all(ch in ".,;:" for ch in name[-1]):
        name.pop()  # "ACCORD , 50 mg": the speck read as a word of its own
    if name and len(name[-1]) > 1 and name[-1][-1] in ".,":
        name[-1] = name[-1][:-1]
    return name


def _looks_like_drug(strengths: tuple[Strength, ...], tokens: list[str]) -> bool:
    """An unknown name with a strength and a unit ("MIRACLOR 5 mg"): a drug line the KB does not know,
    kept and flagged rather than dropped."""
    head = tokens[0]
    return (
        any(s.unit in _MASS_UNITS for s in strengths) and len(head) >= 4 and head.isalpha() and head.isupper()
    )


def _cells_of(words: list[Word], columns: Columns) -> str:
    values = ["0"] * 4
    for word in words:
        column = columns.nearest(word.cx)
        value = _CELL_VALUES.get(word.text.strip(".,;:'\"°"))
        if column is not None and value is not None:
            values[column] = value
    return "-".join(values)


def _posology_head(words: list[Word]) -> bool:
    tokens = fix_posology([w.text for w in words], [])
    head = fold(tokens[0]) if tokens else ""
    return bool(head) and (head[0].isdigit() or head.split()[0] in POSOLOGY_WORDS)


def _prefer_understood(item: _Item, number: int, again: list[Word], other: str | None = None) -> None:
    """A posology the first reading made nonsense of ("1-14", "1 cpri)", "le matin") and the second
    reading understands: the second is kept. The line stays flagged (the readings differ); it is at
    least flagged with the right value. ``number``: the posology row, -1 for the drug row's tail."""
    if number >= len(item.posology_parts):
        return
    current = item.inline_posology if number < 0 else item.posology_parts[number]
    if other is None:
        other = " ".join(fix_posology([w.text for w in again], []))
    if current is None or _understood(current) or not _understood(other):
        return
    if number < 0:
        item.inline_posology = other
    else:
        item.posology_parts[number] = other
    item.reasons.append(f"posology taken from a second reading: '{other}' (first read '{current}')")


def _high_dose(matrix: str) -> str | None:
    """A value over 4 in a matin-midi-soir matrix: rare on an ordonnance, and how a misread "0" (6, 8,
    9) or a speck glued to a digit ("06") reads. Never taken without a look."""
    return next((part for part in matrix.split("-") if "/" not in part and int(part) > 4), None)


def _understood(posology: str) -> bool:
    if any(_high_dose(m.group(1)) for m in _MATRIX.finditer(posology)):
        return False  # "1-06-1": parsed, but as no prescriber writes it (see _review)
    parsed = parse_posology(posology)
    has_frequency = parsed.intakes_per_day is not None or parsed.as_needed
    return parsed.parsed and parsed.dose_per_intake is not None and has_frequency


def _uncertain(item: _Item) -> bool:
    name = min((w.conf for w in item.name_words if any(ch.isalpha() for ch in w.text)), default=100.0)
    numbers = [w.conf for w in item.posology_words if any(ch.isdigit() for ch in w.text)]
    words = [w.conf for w in item.posology_words if sum(ch.isalpha() for ch in w.text) >= 2]
    posology = " ".join(p for p in (item.inline_posology, *item.posology_parts) if p)
    return (
        name < NAME_CONFIDENCE
        # A posology the parser does not understand ("le matin", "1-06-1") is often a misreading.
        or (item.table_cells is None and bool(posology) and not _understood(posology))
        or _strength_confidence(item.drug_words) < CONFUSABLE_CONFIDENCE
        # Every digit has a look-alike (1/4/7, 5/6/8, 0/8/9): a dose read at less than full
        # confidence is read again, as a strength is; a posology word too ("matin" / "midi").
        or (bool(numbers) and min(numbers) < CONFUSABLE_CONFIDENCE)
        or (bool(words) and min(words) < NAME_CONFIDENCE)
        or (
            item.first_cells is not None
            and item.table_cells is not None
            and item.first_cells != item.table_cells
        )
    )


def _name_like(text: str) -> bool:
    letters = text.strip(".,;:")
    return (
        len(letters) >= 3
        and letters.isalpha()
        and letters[:1].isupper()
        and fold(letters) not in POSOLOGY_WORDS
    )


def _posology_word(token: str) -> bool:
    """A token that can start a posology: a number, or a posology word (a unit counts here)."""
    return any(ch.isdigit() for ch in token) or fold(token).strip(".,;:") in POSOLOGY_WORDS


def _is_posology(text: str) -> bool:
    """A line's tail is a posology when it holds a number or a posology word, not when it is the rest of
    the form ("gastro-résistant", "quadrisécable")."""
    words = fold(text).replace(",", " ").split()
    return any(ch.isdigit() for ch in text) or any(w in POSOLOGY_WORDS and w not in _FORM_ONLY for w in words)


_FORM_ONLY_TEXT = """
cp cpr cps comp comprime comprimes gel gelule gelules capsule capsules sachet sachets
"""
_FORM_ONLY = frozenset(_FORM_ONLY_TEXT.split())


def _strength_confidence(words: list[Word]) -> float:
    values = [w.conf for w in words if any(ch.isdigit() for ch in w.text)]
    return min(values) if values else 100.0


def _confidence(words: list[Word]) -> float:
    return min((w.conf for w in words), default=0.0) / 100.0


def _frac(value: float, size: float) -> float:
    return round(min(1.0, max(0.0, value / size)), 4) if size else 0.0


def _pdf_words(words: list[dict[str, object]]) -> list[Word]:
    """pdfplumber's words as OCR words (confidence 100), with a line id per printed line."""
    out: list[Word] = []
    lines: list[tuple[float, float, int]] = []  # (top, height, id)
    for word in sorted(words, key=lambda w: (float(w["top"]), float(w["x0"]))):  # type: ignore[arg-type]
        top, bottom = float(word["top"]), float(word["bottom"])  # type: ignore[arg-type]
        same = [lid for line_top, height, lid in lines[-3:] if abs(top - line_top) < 0.5 * height]
        line_id = same[0] if same else len(lines) + 1
        if not same:
            lines.append((top, bottom - top, line_id))
        out.append(
            Word(
                str(word["text"]),
                100.0,
                int(float(word["x0"]) * 4),  # type: ignore[arg-type]
                int(top * 4),
                int(float(word["x1"]) * 4),  # type: ignore[arg-type]
                int(bottom * 4),
                line_id,
            )
        )
    return out


# -- header hints -------------------------------------------------------------------------------

_RPPS = re.compile(r"rpps\W{0,6}([0-9OolI ]{11,16})", re.IGNORECASE)
_ELEVEN = re.compile(r"(?<!\d)(10\d{9})(?!\d)")
_DATE_NUM = re.compile(r"(?<!\d)(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})(?!\d)")
_MONTHS = ("janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout", "septembre", "octobre",
           "novembre", "decembre")  # fmt: skip
_DATE_WORDS = re.compile(rf"(?<!\d)(\d{{1,2}})(?:er)?\s+({'|'.join(_MONTHS)})\s+(\d{{4}})")
_AGE = re.compile(r"(?<!\d)(\d{2,3})\s*ans\b")
_WEIGHT = re.compile(r"(?<![\d,.])(\d{2,3}(?:[.,]\d)?)\s*kg\b")


def _luhn(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        digit = int(ch)
        if i % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _rpps_of(digits: str) -> str:
    """The 11 digits of an RPPS number read with a glyph too many (a colon read as "0"): the one
    deletion that gives a valid Luhn key and the "10" every RPPS number starts with, when there is
    exactly one; otherwise the first 11 digits, whose key will then fail."""
    if len(digits) != 12:
        return digits[:11]
    # The stray glyph is most often the colon after "RPPS", read at the start of the number.
    for positions in (range(3), range(12)):
        found = {
            candidate
            for candidate in (digits[:i] + digits[i + 1 :] for i in positions)
            if candidate.startswith("10") and _luhn(candidate)
        }
        if len(found) == 1:
            return found.pop()
    return digits[:11]


def _date(text: str) -> dt.date | None:
    folded = fold(text)
    if re.search(r"\bnee?\b", folded):
        return None  # a date of birth, not the ordonnance's date
    for match in _DATE_NUM.finditer(folded.replace(" / ", "/")):
        day, month, year = (int(g) for g in match.groups())
        year += 2000 if year < 100 else 0
        try:
            return dt.date(year, month, day)
        except ValueError:
            continue
    for match in _DATE_WORDS.finditer(folded):
        try:
            return dt.date(int(match.group(3)), _MONTHS.index(match.group(2)) + 1, int(match.group(1)))
        except ValueError:
            continue
    return None


def header_hints(header: Sequence[Row], rows: Sequence[Row]) -> HeaderHints:
    """RPPS number, date, age and weight as the header writes them (the date and the RPPS number may
    also stand at the foot of the page)."""
    rpps: str | None = None
    for row in rows:
        match = _RPPS.search(row.text)
        if match:
            digits = match.group(1).translate(str.maketrans("OolI", "0011")).replace(" ", "")
            if len(digits) >= 11:
                rpps = _rpps_of(digits)
                break
    if rpps is None:
        for row in rows:
            found = _ELEVEN.search(row.text.replace(" ", ""))
            if found and _luhn(found.group(1)):
                rpps = found.group(1)
                break
    date = next((d for d in (_date(r.text) for r in [*header, *rows]) if d is not None), None)
    age: int | None = None
    weight: float | None = None
    for row in header:
        folded = fold(row.text)
        if age is None and (m := _AGE.search(folded)) and 0 < int(m.group(1)) <= 120:
            age = int(m.group(1))
        if weight is None and (m := _WEIGHT.search(folded)):
            value = float(m.group(1).replace(",", "."))
            weight = value if 0 < value <= 400 else None
    return HeaderHints(
        prescriber_rpps=rpps,
        rpps_checksum_ok=_luhn(rpps) if rpps and rpps.isdigit() else None,
        date=date,
        patient_age=age,
        patient_weight_kg=weight,
    )
