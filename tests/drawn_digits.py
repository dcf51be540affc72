"""Realistic digit images for tests: digits drawn with PIL strokes, then made messy like real photos.

Each digit is a few polylines in a unit box (x right, y down). :func:`draw_digit` renders one
dark-on-light on a canvas of any size and place; the helpers add what real files have:
EXIF rotation, alpha, JPEG noise, uneven light.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float, steps: int = 24):
    """Points on an ellipse from angle ``start`` to ``stop`` (degrees, 0 = right, 90 = down)."""
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(start, stop, steps)]


STROKES: dict[int, list[list[tuple[float, float]]]] = {
    0: [_arc(0.5, 0.5, 0.36, 0.48, 0, 360)],
    1: [[(0.35, 0.15), (0.55, 0.0), (0.55, 1.0)]],
    2: [_arc(0.5, 0.3, 0.35, 0.28, 190, 380) + [(0.12, 1.0), (0.9, 1.0)]],
    3: [_arc(0.48, 0.26, 0.32, 0.25, 200, 450), _arc(0.48, 0.74, 0.36, 0.26, 270, 520)],
    4: [[(0.68, 1.0), (0.68, 0.0), (0.08, 0.66), (0.95, 0.66)]],
    5: [[(0.85, 0.0), (0.25, 0.0), (0.2, 0.45)] + _arc(0.5, 0.68, 0.36, 0.3, 225, 485)],
    6: [_arc(0.62, 0.45, 0.4, 0.45, 270, 180) + _arc(0.52, 0.72, 0.32, 0.28, 180, 540)],
    7: [[(0.08, 0.02), (0.92, 0.02), (0.4, 1.0)]],
    8: [_arc(0.5, 0.25, 0.28, 0.24, 0, 360), _arc(0.5, 0.73, 0.34, 0.26, 0, 360)],
    9: [_arc(0.45, 0.28, 0.32, 0.27, 0, 360), [(0.77, 0.28), (0.7, 1.0)]],
}


def draw_digit(digit: int, *, canvas: tuple[int, int] = (400, 300), box: tuple[int, int, int, int] | None = None,
               ink: int = 20, paper: int = 235, mode: str = "L") -> Image.Image:
    """``digit`` drawn dark on light; ``box`` = (left, top, width, height), default centred.

    The stroke width is a tenth of the box height, like a pen on paper.
    """
    width, height = canvas
    if box is None:
        box_height = height // 2
        box = ((width - box_height * 2 // 3) // 2, height // 4, box_height * 2 // 3, box_height)
    left, top, box_width, box_height = box
    image = Image.new(mode, canvas, paper if mode == "L" else (paper, paper - 5, paper - 20))
    pen = ImageDraw.Draw(image)
    color = ink if mode == "L" else (ink, ink, ink + 20)
    stroke = max(1, box_height // 10)
    for line in STROKES[digit]:
        points = [(left + x * box_width, top + y * box_height) for x, y in line]
        pen.line(points, fill=color, width=stroke, joint="curve")
        for x, y in (points[0], points[-1]):  # round caps
            pen.ellipse((x - stroke / 2, y - stroke / 2, x + stroke / 2, y + stroke / 2), fill=color)
    return image


def with_exif_rotation(image: Image.Image, orientation: int = 6) -> bytes:
    """JPEG bytes of ``image`` stored rotated, with the EXIF tag that undoes it (6: rotate 90 CW to view)."""
    stored = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270, 3: Image.Transpose.ROTATE_180}
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.transpose(stored[orientation]).convert("RGB").save(buffer, format="JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def with_alpha(image: Image.Image) -> Image.Image:
    """Dark strokes on a transparent background (the paper's pixels become fully transparent)."""
    gray = np.asarray(image.convert("L"))
    rgba = np.zeros(gray.shape + (4,), dtype=np.uint8)
    rgba[..., 3] = 255 - gray  # the darker the ink, the more opaque
    return Image.fromarray(rgba, mode="RGBA")


def as_jpeg(image: Image.Image, quality: int = 60) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def as_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def photo_like(image: Image.Image, seed: int = 0) -> Image.Image:
    """Uneven lighting (a gradient of 40 levels) plus paper grain (Gaussian noise), as in a phone photo."""
    rng = np.random.default_rng(seed)
    pixels = np.asarray(image.convert("L"), dtype=np.float64)
    height, width = pixels.shape
    shading = np.linspace(0, 40, width)[None, :] + np.linspace(0, 15, height)[:, None]
    noisy = pixels - shading + rng.normal(0, 6, pixels.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), mode="L")


def centre_of_mass(digit: np.ndarray) -> tuple[float, float]:
    """(row, column) centre of mass in pixel-index coordinates, as MNIST and scipy use."""
    weights = digit.astype(np.float64)
    total = weights.sum()
    rows, cols = np.indices(digit.shape)
    return float((rows * weights).sum() / total), float((cols * weights).sum() / total)


def bounding_box(digit: np.ndarray) -> tuple[int, int]:
    """(height, width) of the non-zero pixels."""
    rows = np.flatnonzero(digit.any(axis=1))
    cols = np.flatnonzero(digit.any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def similarity(first: np.ndarray, second: np.ndarray) -> float:
    """Best correlation of two 28x28 digits over shifts of up to one pixel.

    Centring by mass rounds to whole pixels, so the same digit read from two files can land
    one pixel apart; a different digit or a mangled one correlates far less.
    """
    best = -1.0
    for rows in (-1, 0, 1):
        for cols in (-1, 0, 1):
            shifted = np.roll(second.astype(np.float64), (rows, cols), axis=(0, 1))
            best = max(best, float(np.corrcoef(first.astype(np.float64).ravel(), shifted.ravel())[0, 1]))
    return best
