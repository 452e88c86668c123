"""Tesseract, French model, page segmentation mode 4 (one column of lines of varying sizes).

Measured here: mode 4 keeps a drug line whole even when its posology or a table cell sits far to its
right, where the automatic mode (3) splits the page into blocks. ``OMP_THREAD_LIMIT=1``: Tesseract's
OpenMP threads made a page slower on two cores, and pages are run side by side instead.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt
from PIL import Image

from iatro.errors import IatroError

LANG = "fra"
PAGE_TIMEOUT_S = 30.0


class OcrUnavailable(IatroError):
    """Tesseract or its French model is not installed (scripts/setup installs them)."""


class PageTimeout(Exception):
    """Tesseract did not finish a page in time (internal: the page gets a warning)."""


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    conf: float  # 0-100, Tesseract's word confidence (100 for a PDF's text layer)
    x0: int
    y0: int
    x1: int
    y1: int
    line_id: int  # Tesseract's block, paragraph and line, as one number

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2


@cache
def check_tesseract() -> str:
    """The Tesseract version, once French is known to be installed."""
    import pytesseract  # type: ignore[import-untyped]

    if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
        raise OcrUnavailable("tesseract is not installed (scripts/setup installs tesseract-ocr)")
    try:
        languages = pytesseract.get_languages(config="")
    except pytesseract.TesseractError as exc:
        raise OcrUnavailable(f"tesseract does not run: {exc}") from None
    if LANG not in languages:
        raise OcrUnavailable("tesseract's French model is missing (scripts/setup installs tesseract-ocr-fra)")
    return str(pytesseract.get_tesseract_version())


def read_words(
    grey: npt.NDArray[np.uint8],
    psm: int = 4,
    timeout: float = PAGE_TIMEOUT_S,
    offset: tuple[int, int] = (0, 0),
    whitelist: str | None = None,
) -> list[Word]:
    """The words Tesseract reads, with boxes in the pixels of ``grey`` (shifted by ``offset``)."""
    import pytesseract

    check_tesseract()
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    try:
        data = pytesseract.image_to_data(
            Image.fromarray(grey),
            lang=LANG,
            config=f"--psm {psm}" + (f" -c tessedit_char_whitelist={whitelist}" if whitelist else ""),
            timeout=timeout,
            output_type=pytesseract.Output.DICT,
        )
    except RuntimeError as exc:
        if "timeout" in str(exc).lower():
            raise PageTimeout(f"OCR took more than {timeout:g} s") from None
        raise
    dx, dy = offset
    words = []
    for i, text in enumerate(data["text"]):
        text = text.strip()
        conf = float(data["conf"][i])
        if not text or conf < 0:
            continue
        x0, y0 = int(data["left"][i]) + dx, int(data["top"][i]) + dy
        line_id = (
            int(data["block_num"][i]) * 10_000 + int(data["par_num"][i]) * 100 + int(data["line_num"][i])
        )
        words.append(
            Word(text, conf, x0, y0, x0 + int(data["width"][i]), y0 + int(data["height"][i]), line_id)
        )
    return words
