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


def despeckle(grey: Grey) -> Grey:
    """Erase specks of dust and toner: small blots with no other ink near them.

    A dot of an "i", a decimal comma or a full stop is as small as a speck but sits next to its
    letters; a speck in a table cell would otherwise be read as a "1" or a "." glued to the value.
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
    if not lonely.any():
        return grey
    out = grey.copy()
    out[np.isin(labels, np.flatnonzero(lonely))] = 255
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
    grey = _u8(cv2.medianBlur(grey, 3))
    grey = stretch(grey)
    grey = despeckle(grey)
    return CleanPage(grey, tuple(steps), angle)
