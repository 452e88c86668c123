"""Image clean-up before OCR: cut the sheet out of a photograph, flatten the light, straighten, keep grey.

Measured on the generated corpus: binarising hurt photographs (a shadow or a faint stroke becomes a
hole or a blot), while dividing by the estimated paper brightness and stretching the levels keeps the
strokes whole; Tesseract then thresholds with its own local method.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

Grey = npt.NDArray[np.uint8]

# Tesseract reads best with capital letters some 25-40 pixels high: a printed A4 page at 200-300 dpi.
TARGET_WIDTH = 1800
MAX_WIDTH = 2200  # larger is slower and, measured, no better: brought back to TARGET_WIDTH
_MIN_WIDTH = 1500


def _u8(array: npt.ArrayLike) -> Grey:
    return np.asarray(array, dtype=np.uint8)


@dataclass(frozen=True, slots=True)
class CleanPage:
    grey: Grey
    steps: tuple[str, ...]  # what was done, for the page's record
    skew_degrees: float


def to_array(image: Image.Image) -> npt.NDArray[np.uint8]:
    """RGB or grey pixels; transparency composited on white, palettes and 16-bit images converted."""
    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba).convert("RGB")
    elif image.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(image, dtype=np.float64)
        top = float(arr.max()) or 1.0
        return (arr * (255.0 / top)).astype(np.uint8)
    elif image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def _order_corners(points: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Top-left, top-right, bottom-right, bottom-left."""
    s = points.sum(axis=1)
    d = np.diff(points, axis=1).ravel()
    return np.array(
        [points[np.argmin(s)], points[np.argmin(d)], points[np.argmax(s)], points[np.argmax(d)]], np.float32
    )


def find_sheet(grey: Grey) -> npt.NDArray[np.float32] | None:
    """The four corners of a sheet lying on a darker background, or None (a scan: the sheet is the image).

    Paper is the brightest large region; the test that the image border is darker than its centre
    keeps scans, whose border is paper too, out of the perspective correction.
    """
    h, w = grey.shape
    scale = 800.0 / max(h, w)
    small = cv2.resize(grey, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
    sh, sw = small.shape
    border = np.concatenate(
        [
            small[: sh // 40].ravel(),
            small[-sh // 40 :].ravel(),
            small[:, : sw // 40].ravel(),
            small[:, -sw // 40 :].ravel(),
        ]
    )
    centre = small[sh // 4 : 3 * sh // 4, sw // 4 : 3 * sw // 4]
    if float(np.median(border)) > float(np.median(centre)) - 40:
        return None
    blurred = cv2.GaussianBlur(small, (5, 5), 0)
    # Closer to the desk than to the paper: a sheet's corner in the shadow of the telephone is still
    # brighter than the desk, while Otsu's threshold would cut it off.
    desk, paper = float(np.median(border)), float(np.median(centre))
    _, mask = cv2.threshold(blurred, desk + 0.3 * (paper - desk), 255, cv2.THRESH_BINARY)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((15, 15), np.uint8))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    largest = max(contours, key=cv2.contourArea)
    area = cv2.contourArea(largest)
    if area < 0.2 * sh * sw:
        return None
    hull = cv2.convexHull(largest)
    perimeter = cv2.arcLength(hull, True)
    # Of the quadrilaterals that approximate the outline, the largest has the sheet's corners; a
    # tighter approximation can put a corner on a blurred edge instead.
    quads = []
    for epsilon in (0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.06, 0.08):
        approx = cv2.approxPolyDP(hull, epsilon * perimeter, True)
        if len(approx) == 4:
            quads.append(approx.reshape(4, 2).astype(np.float32))
    if quads:
        best = max(quads, key=lambda q: cv2.contourArea(q))
        return _order_corners(best / scale)
    rect = cv2.boxPoints(cv2.minAreaRect(largest)).astype(np.float32) / scale
    return _order_corners(rect)


def _warp_sheet(image: npt.NDArray[np.uint8], corners: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    tl, tr, br, bl = corners
    width = float(max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl)))
    height = float(max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr)))
    # One interpolation for the perspective and the enlargement of a low-resolution photograph.
    zoom = max(1.0, TARGET_WIDTH / width)
    out_w, out_h = int(width * zoom), int(height * zoom)
    target = np.array([[0, 0], [out_w - 1, 0], [out_w - 1, out_h - 1], [0, out_h - 1]], np.float32)
    matrix = cv2.getPerspectiveTransform(corners, target)
    return _u8(
        cv2.warpPerspective(
            image, matrix, (out_w, out_h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
        )
    )


def _grey(image: npt.NDArray[np.uint8]) -> Grey:
    if image.ndim == 2:
        return image
    return _u8(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))


def flatten_light(grey: Grey) -> Grey:
    """Divide by the paper's brightness, estimated where the text is not (a dilation removes the strokes)."""
    h, w = grey.shape
    small = cv2.resize(grey, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    paper = cv2.dilate(small, np.ones((9, 9), np.uint8))
    paper = cv2.medianBlur(paper, 21)
    paper = cv2.GaussianBlur(paper, (0, 0), 6)
    paper = cv2.resize(paper, (w, h), interpolation=cv2.INTER_LINEAR)
    flat = grey.astype(np.float32) / np.maximum(paper.astype(np.float32), 1.0) * 255.0
    return np.clip(flat, 0, 255).astype(np.uint8)


def stretch(grey: Grey) -> Grey:
    """Levels: the darkest ink to black, the paper to white, so that faint print gains contrast."""
    ink = float(np.percentile(grey, 0.3))
    paper = float(np.percentile(grey, 60))
    if paper - ink < 30:
        return grey
    top = paper * 0.97
    out = (grey.astype(np.float32) - ink) * (255.0 / max(top - ink, 1.0))
    return _u8(np.clip(out, 0, 255))


def despeckle(grey: Grey, sharp: Grey | None = None) -> Grey:
    """Erase specks of dust and toner: small round blots that no glyph explains.

    A dot of an "i", an accent, a decimal comma, a full stop, a hyphen or an apostrophe is as small
    as a speck, but each sits where type puts it: above a letter, on the baseline just after a glyph,
    or is drawn longer than it is wide. A speck lies anywhere; next to a table cell it was read as a
    "1" with an accent ("ï", "1'"), between a name and its strength as a full stop ("ZENTIVA.80",
    "500.mg"), in a posology as a stop that cut the sentence ("tous. les 2 jours"). Specks far from
    any ink go first; of those near ink, the ones in none of the places type puts a mark go too.

    ``sharp`` is the page before the median filter, when there is one: marks are told apart there,
    where the thin strokes of a serif face (the arms of an "E") are still joined to their glyph.
    """
    ink = (grey < 150).astype(np.uint8)
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(ink, connectivity=8)
    if count <= 1:
        return grey
    areas = stats[:, cv2.CC_STAT_AREA]
    heights = stats[:, cv2.CC_STAT_HEIGHT]
    widths = stats[:, cv2.CC_STAT_WIDTH]
    small = (areas <= 40) & (heights <= 9) & (widths <= 9)
    small[0] = False  # the background
    big = np.isin(labels, np.flatnonzero(~small)[1:]).astype(np.uint8)
    near = cv2.dilate(big, np.ones((23, 23), np.uint8))
    cx = np.clip(centroids[:, 0].astype(int), 0, grey.shape[1] - 1)
    cy = np.clip(centroids[:, 1].astype(int), 0, grey.shape[0] - 1)
    lonely = small & (near[cy, cx] == 0)
    out = grey.copy()
    if lonely.any():
        out[np.isin(labels, np.flatnonzero(lonely))] = 255
    reference = (stretch(sharp) if sharp is not None else out) < 150
    count, labels, found, _ = cv2.connectedComponentsWithStats(reference.astype(np.uint8), connectivity=8)
    if count <= 1:
        return out
    boxes = np.asarray(found, np.int64)
    marks = (
        (boxes[:, cv2.CC_STAT_AREA] <= 40)
        & (boxes[:, cv2.CC_STAT_HEIGHT] <= 9)
        & (boxes[:, cv2.CC_STAT_WIDTH] <= 9)
    )
    marks[0] = False
    stray = marks & ~_placed_like_type(boxes, marks)
    if stray.any():
        # A pixel wider: the median filter may have spread a speck that it did not remove.
        erase = cv2.dilate(np.isin(labels, np.flatnonzero(stray)).astype(np.uint8), np.ones((3, 3), np.uint8))
        out[erase > 0] = 255
    return out


def _placed_like_type(stats: npt.NDArray[np.int64], which: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """For the components in ``which``: whether each is where a printed mark would be (see despeckle).

    Glyphs are the components 12 to 90 pixels high (letters and digits at 200-300 dpi); a rule or a
    word whose letters touch is wider, which does not matter: only its box is compared.
    """
    keep = np.zeros(len(stats), dtype=bool)
    x = stats[:, cv2.CC_STAT_LEFT].astype(np.float32)
    y = stats[:, cv2.CC_STAT_TOP].astype(np.float32)
    w = stats[:, cv2.CC_STAT_WIDTH].astype(np.float32)
    h = stats[:, cv2.CC_STAT_HEIGHT].astype(np.float32)
    glyph = (h >= 12) & (h <= 90)
    glyph[0] = False
    if not glyph.any():
        return ~np.zeros(len(stats), dtype=bool)
    gx0, gy0 = x[glyph][None, :], y[glyph][None, :]
    gx1, gy1, gh = (x + w)[glyph][None, :], (y + h)[glyph][None, :], h[glyph][None, :]
    candidates = np.flatnonzero(which)
    # Drawn longer than wide (hyphen, apostrophe, comma, accent): a round speck is not.
    elongated = (w[candidates] >= 1.7 * h[candidates]) | (h[candidates] >= 1.7 * w[candidates])
    for start in range(0, len(candidates), 512):  # bounded memory: 512 marks x glyphs at a time
        part = candidates[start : start + 512]
        sx0, sy0 = x[part][:, None], y[part][:, None]
        sx1, sy1 = (x + w)[part][:, None], (y + h)[part][:, None]
        scx, scy = (sx0 + sx1) / 2, (sy0 + sy1) / 2
        # Over a letter: an i's dot, an accent, a diaeresis.
        above = (
            (scx >= gx0 - 2) & (scx <= gx1 + 2) & (sy1 <= gy0 + 3) & (gy0 - sy1 <= np.maximum(7, 0.45 * gh))
        )
        # On the baseline, hugging the glyph before it: a full stop, a comma (which may hang below the
        # line). A mark belongs to the glyph on its left; a speck in a word space is often nearer the
        # glyph on its right ("500 .mg", "ZENTIVA .80").
        line = (scy >= gy0 + 0.55 * gh) & (sy0 <= gy1 + 0.25 * gh)
        left_gap = np.where(line & (sx0 >= gx1 - 3), sx0 - gx1, np.inf)
        right_gap = np.where((gy0 <= scy) & (scy <= gy1 + 0.3 * gh) & (gx0 >= sx1 - 3), gx0 - sx1, np.inf)
        hugs = (left_gap <= np.maximum(4, 0.3 * gh)).any(axis=1)
        after = hugs & (left_gap.min(axis=1) <= right_gap.min(axis=1) + 1)
        # Within two pixels of a glyph: a piece of it the clean-up cut off (the thin bar of a serif
        # "E"), or a speck on it that nothing can tell apart: kept either way.
        dx = np.maximum(np.maximum(gx0 - sx1, sx0 - gx1), 0)
        dy = np.maximum(np.maximum(gy0 - sy1, sy0 - gy1), 0)
        touching = ((dx <= 2) & (dy <= 2)).any(axis=1)
        keep[part] = above.any(axis=1) | after | touching
    keep[candidates] |= elongated
    return keep


def keep_tall_marks(grey: Grey, min_height: float) -> Grey:
    """Only the ink at least ``min_height`` pixels high (or a rule, wider than it): the cells of a
    posology table hold digits and slashes, never a dot or an accent, so every smaller mark there is a
    speck, however it sits ("ï" for a "1" with a speck above it)."""
    ink = (grey < 150).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    if count <= 1:
        return grey
    heights = stats[:, cv2.CC_STAT_HEIGHT]
    widths = stats[:, cv2.CC_STAT_WIDTH]
    low = (heights < min_height) & (widths < 2 * min_height)
    low[0] = False
    if not low.any():
        return grey
    out = grey.copy()
    out[np.isin(labels, np.flatnonzero(low))] = 255
    return out


def skew_angle(grey: Grey) -> float:
    """Degrees the text lines are rotated (counter-clockwise positive), from projection profiles.

    The angle whose horizontal profile of ink is the sharpest (rows alternately full and empty) is the
    one that brings the lines level; searched over +-6 degrees at a quarter of the resolution.
    """
    h, w = grey.shape
    scale = 700.0 / w
    small = cv2.resize(grey, (700, max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    ink = (small < 150).astype(np.float32)
    if ink.sum() < 50:
        return 0.0
    sh, sw = ink.shape
    centre = (sw / 2, sh / 2)

    def sharpness(angle: float) -> float:
        matrix = cv2.getRotationMatrix2D(centre, angle, 1.0)
        rotated = cv2.warpAffine(ink, matrix, (sw, sh), flags=cv2.INTER_NEAREST, borderValue=(0.0,))
        profile = rotated.sum(axis=1)
        return float(np.sum(np.diff(profile) ** 2))

    coarse = max(np.arange(-6.0, 6.01, 0.5), key=sharpness)
    fine = max(np.arange(coarse - 0.5, coarse + 0.51, 0.1), key=sharpness)
    return -float(fine)


def _rotate(grey: Grey, degrees: float) -> Grey:
    h, w = grey.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), -degrees, 1.0)
    return _u8(
        cv2.warpAffine(
            grey, matrix, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT, borderValue=(255,)
        )
    )


def clean(image: Image.Image) -> CleanPage:
    pixels = to_array(image)
    steps: list[str] = []
    grey = _grey(pixels)
    corners = find_sheet(grey)
    if corners is not None:
        grey = _grey(_warp_sheet(pixels, corners))
        steps.append("sheet")
    h, w = grey.shape
    if w < _MIN_WIDTH or w > MAX_WIDTH:
        zoom = TARGET_WIDTH / w
        method = cv2.INTER_CUBIC if zoom > 1 else cv2.INTER_AREA
        grey = _u8(cv2.resize(grey, (int(w * zoom), int(h * zoom)), interpolation=method))
        steps.append(f"resize x{zoom:.2f}")
    grey = flatten_light(grey)
    steps.append("flatten")
    angle = skew_angle(grey)
    if abs(angle) >= 0.15:
        grey = _rotate(grey, angle)
        steps.append(f"deskew {angle:+.1f}")
    sharp = grey
    grey = _u8(cv2.medianBlur(grey, 3))
    grey = stretch(grey)
    grey = despeckle(grey, sharp)
    return CleanPage(grey, tuple(steps), angle)
