"""Preprocessing defined once: how pixels become the tensor the model sees.

Training, evaluation, prediction, the web app and ONNX export all import from here, so
train and serve cannot drift apart. Two halves:

* :class:`Normalization`, the affine map on pixels scaled to [0, 1],
  ``x = (pixel / 255 - mean) / std``, whose (mean, std) pair is stored with the weights.
* :func:`to_mnist`, which turns a real image (a phone photo, a scan, a drawing) into a
  28x28 uint8 digit the way MNIST itself was made. Reading files safely lives in
  ``images.py``; its public names are re-exported here so this stays the import point.

The MNIST recipe, in order: 1. EXIF orientation; 2. flatten alpha onto white; 3. grayscale;
4. detect polarity from the border and invert dark-on-light; 5. suppress faint background
noise; 6. crop to the ink's bounding box; 7. scale the longest side to 20 px, keeping the
aspect ratio, anti-aliased; 8. place in 28x28 with the centre of mass at the centre (pixel
index (14, 14), as MNIST did); 9. apply the model's own :class:`Normalization`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from .errors import Lenet5Error
from .images import MAX_IMAGE_PIXELS, ImageError, NoDigitError, open_image

__all__ = ["Normalization", "ImageError", "NoDigitError", "MAX_IMAGE_PIXELS", "open_image", "to_mnist",
           "image_to_mnist", "MNIST_SIZE", "DIGIT_BOX"]

PIXEL_MAX = 255.0
MNIST_SIZE = 28  # the model's input is 28x28
DIGIT_BOX = 20  # MNIST scaled each digit so its longest side is 20 px
MNIST_CENTRE = 14.0  # MNIST put the centre of mass at pixel index 14 (scipy's convention)
BORDER_FRACTION = 0.05  # the outer 5% of each side tells the background from the ink
MIN_CONTRAST = 40.0  # ink must stand this far (of 255) above the background, else "no digit"
FAINT_SHARE = 0.25  # anything fainter than a quarter of a typical stroke is background
MIN_SPAN_SHARE = 0.1  # ink separated from the digit by a gap, lighter than this share, is a speck
BACKGROUND_BLOCKS = 4  # the background level is estimated on a 4x4 grid of blocks...
BACKGROUND_PERCENTILE = 20  # ...as each block's 20th-percentile (ink is bright by then)
WORKING_SIDE = 1024  # bigger images are box-reduced first: the digit ends up 20 px anyway

# (mean, std) in [0, 1] pixel units for the fixed modes. [-1, 1] is the handout's choice
# for tanh: (p - 0.5) / 0.5. "none" keeps raw 0..255 values: std = 1/255 undoes the scaling.
FIXED_MODES: dict[str, tuple[float, float]] = {
    "[-1,1]": (0.5, 0.5),
    "[0,1]": (0.0, 1.0),
    "none": (0.0, 1.0 / PIXEL_MAX),
}


@dataclass(frozen=True)
class Normalization:
    """An affine pixel normalisation, saved alongside the weights it was trained with."""

    mode: str
    mean: float
    std: float

    @classmethod
    def fit(cls, mode: str, train_images: torch.Tensor) -> "Normalization":
        """Build the normalisation for ``mode``; z-score measures mean/std on the training split."""
        if mode == "zscore":
            pixels = train_images.to(torch.float64) / PIXEL_MAX
            mean, std = float(pixels.mean()), float(pixels.std())
            if not std > 0:  # NaN for fewer than two pixels, 0 for one flat colour
                raise Lenet5Error(f"--normalization zscore: the training images have no spread (std {std})")
            return cls(mode, mean, std)
        mean, std = FIXED_MODES[mode]
        return cls(mode, mean, std)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 28, 28) or (N, 1, 28, 28) -> float32 (N, 1, 28, 28)."""
        if images.dim() == 3:
            images = images.unsqueeze(1)  # add the channel dimension: [N, C, H, W]
        pixels = images.to(torch.float32) / PIXEL_MAX
        return (pixels - self.mean) / self.std

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)


def image_to_mnist(source: Any, *, name: str | None = None) -> tuple[np.ndarray, list[str]]:
    """Steps 1-8 from any source :func:`open_image` accepts: (uint8 (28, 28), notes)."""
    image, notes = open_image(source, name=name)
    return to_mnist(image, notes=notes, name=name), notes


def to_mnist(image: Image.Image, *, notes: list[str] | None = None, name: str | None = None) -> np.ndarray:
    """Turn a decoded image into an MNIST-style digit: uint8 (28, 28), white on black.

    A 28x28 image is taken to be in MNIST format already and passes through unchanged
    (apart from polarity). ``notes``, if given, collects what was done; ``name`` labels errors.

    Raises:
        NoDigitError: the image is blank (no ink stands out from the background).
    """
    notes = [] if notes is None else notes
    image = ImageOps.exif_transpose(image)  # step 1; a no-op after open_image, which already did it
    gray, alpha = _flatten_to_gray(image)  # steps 2-3
    ink = _ink_up(gray, notes)  # step 4
    if _contrast(ink) < MIN_CONTRAST and alpha is not None and np.ptp(alpha) >= MIN_CONTRAST:
        # Light strokes on a transparent canvas vanish on white: the alpha channel is the ink.
        ink = alpha
        notes.append("read the ink from the alpha channel")
    if ink.shape == (MNIST_SIZE, MNIST_SIZE):
        if _contrast(ink) < MIN_CONTRAST:
            raise NoDigitError(name)
        return np.clip(np.rint(ink), 0, PIXEL_MAX).astype(np.uint8)
    ink = _suppress_background(ink, name)  # step 5
    digit = _scale_to_box(_crop_to_ink(ink))  # steps 6-7
    return _centre_by_mass(digit, name)  # step 8


def _flatten_to_gray(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Float grayscale (and the alpha channel, if any) with transparency composited onto white."""
    alpha_image = None
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        alpha_image = rgba.getchannel("A")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    gray_image = image.convert("L")
    factor = math.ceil(max(gray_image.size) / WORKING_SIDE)
    if factor > 1:
        gray_image = gray_image.reduce(factor)
        alpha_image = alpha_image.reduce(factor) if alpha_image is not None else None
    alpha = np.asarray(alpha_image, dtype=np.float64) if alpha_image is not None else None
    return np.asarray(gray_image, dtype=np.float64), alpha


def _border(pixels: np.ndarray) -> np.ndarray:
    """The outer ring of the image, BORDER_FRACTION of each side wide (at least one pixel)."""
    height, width = pixels.shape
    ring = max(1, round(BORDER_FRACTION * min(height, width)))
    inner = np.ones_like(pixels, dtype=bool)
    inner[ring:height - ring, ring:width - ring] = False
    return pixels[inner]


def _ink_up(gray: np.ndarray, notes: list[str]) -> np.ndarray:
    """Make ink bright and background dark, as in MNIST; the border shows which is which."""
    if np.median(_border(gray)) > PIXEL_MAX / 2:
        notes.append("inverted: dark ink on a light background")
        return PIXEL_MAX - gray
    return gray


def _contrast(ink: np.ndarray) -> float:
    """How far the brightest ink stands above the background, ignoring lone noisy pixels.

    Averaging 2x2 blocks first quarters a lone bright pixel but keeps any real stroke.
    """
    background = float(np.median(_border(ink)))
    if min(ink.shape) >= 2:
        ink = np.asarray(Image.fromarray(ink.astype(np.float32), mode="F").reduce(2))
    return float(ink.max()) - background


def _suppress_background(ink: np.ndarray, name: str | None) -> np.ndarray:
    """Zero the background (paper grain, JPEG noise, uneven light) and saturate the strokes.

    The background level is estimated block by block, so a shadow across the paper is
    subtracted too. Above it, Otsu's threshold splits faint from strong; values below half
    of it (or below FAINT_SHARE of a typical stroke) become 0 and the typical stroke value
    becomes 255, with a linear ramp in between that keeps the anti-aliased edges.
    """
    if _contrast(ink) < MIN_CONTRAST:
        raise NoDigitError(name)
    signal = np.clip(ink - _background(ink), 0, None)
    threshold = _otsu_threshold(signal)
    strokes = signal[signal > threshold]
    high = float(np.median(strokes)) if strokes.size else float(signal.max())
    # When ink is scarce Otsu can split the grain itself; nothing this faint is ink anyway.
    low = max(threshold / 2, FAINT_SHARE * high)
    if high - low < MIN_CONTRAST / 2:
        raise NoDigitError(name)
    return np.clip((signal - low) / (high - low), 0, 1) * PIXEL_MAX


def _background(ink: np.ndarray) -> np.ndarray:
    """A smooth background estimate from a BACKGROUND_BLOCKS x BACKGROUND_BLOCKS grid of blocks.

    Each block's 20th percentile is its paper level: a block a quarter of the image wide is
    wider than a pen stroke (about a tenth of the digit), so ink rarely covers 80% of it. A
    block that still looks like ink (nearer the ink than the paper) takes the typical paper
    level instead, so subtracting the background never erases a stroke.
    """
    height, width = ink.shape
    if min(height, width) < 2 * BACKGROUND_BLOCKS:
        return np.full_like(ink, np.median(_border(ink)))
    row_edges = np.linspace(0, height, BACKGROUND_BLOCKS + 1).astype(int)
    col_edges = np.linspace(0, width, BACKGROUND_BLOCKS + 1).astype(int)
    levels = np.array([[np.percentile(ink[r0:r1, c0:c1], BACKGROUND_PERCENTILE)
                        for c0, c1 in zip(col_edges, col_edges[1:])]
                       for r0, r1 in zip(row_edges, row_edges[1:])], dtype=np.float32)
    paper = float(np.median(levels))
    levels[levels > (paper + _otsu_threshold(ink)) / 2] = paper
    smooth = Image.fromarray(levels, mode="F").resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(smooth, dtype=np.float64)


def _otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """The threshold that best splits ``values`` into two classes (Otsu, 1979)."""
    counts, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    mass_low = np.cumsum(counts * centres)
    mean_low = mass_low / np.maximum(weight_low, 1)
    mean_high = (mass_low[-1] - mass_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def _crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """Crop to the digit's bounding box, leaving out specks cut off from it by empty rows or columns."""
    rows = _main_span(ink.sum(axis=1))
    cols = _main_span(ink[rows].sum(axis=0))
    return ink[rows, cols]


def _main_span(profile: np.ndarray) -> slice:
    """From the first to the last run of non-empty entries that holds a real share of the ink."""
    filled = np.concatenate([[False], profile > 0, [False]])
    edges = np.flatnonzero(filled[1:] != filled[:-1])
    runs = list(zip(edges[::2], edges[1::2]))  # [start, stop) of each non-empty run
    masses = [profile[start:stop].sum() for start, stop in runs]
    kept = [run for run, mass in zip(runs, masses) if mass >= MIN_SPAN_SHARE * max(masses)]
    return slice(int(kept[0][0]), int(kept[-1][1]))


def _scale_to_box(ink: np.ndarray) -> np.ndarray:
    """Scale so the longest side is DIGIT_BOX px, keeping the aspect ratio, anti-aliased."""
    height, width = ink.shape
    scale = DIGIT_BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(ink.astype(np.float32), mode="F").resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.rint(np.asarray(resized)), 0, PIXEL_MAX).astype(np.uint8)


def _centre_by_mass(digit: np.ndarray, name: str | None) -> np.ndarray:
    """Place ``digit`` in a 28x28 canvas so its centre of mass lands on pixel (14, 14)."""
    total = float(digit.sum())
    if total == 0:
        raise NoDigitError(name)
    height, width = digit.shape
    centre_row = float((digit.sum(axis=1) * np.arange(height)).sum()) / total
    centre_col = float((digit.sum(axis=0) * np.arange(width)).sum()) / total
    # A whole-pixel shift keeps the strokes sharp and lands within half a pixel of the centre;
    # a lopsided digit is kept whole rather than pushed off the canvas.
    top = min(max(round(MNIST_CENTRE - centre_row), 0), MNIST_SIZE - height)
    left = min(max(round(MNIST_CENTRE - centre_col), 0), MNIST_SIZE - width)
    canvas = np.zeros((MNIST_SIZE, MNIST_SIZE), dtype=np.uint8)
    canvas[top:top + height, left:left + width] = digit
    return canvas
