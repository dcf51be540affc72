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
from .histograms import (
    LEVELS,
    grid_value_counts,
    median_from_counts,
    median_of,
    otsu_threshold_from_counts,
    otsu_threshold_of,
    percentile_from_counts,
    value_counts,
)
from .images import (
    MAX_IMAGE_PIXELS,
    ORIENTATION_TAG,
    UINT8_MAX,
    ImageError,
    NoDigitError,
    open_image,
)
from .resample import bilinear_weights, resize

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
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
GREY_LEVELS = np.arange(LEVELS, dtype=np.float64)  # the value of each 8-bit level, for histogram maths
OPAQUE = 255

# (mean, std) in [0, 1] pixel units for the fixed modes. [-1, 1] is the handout's choice
# for tanh: (p - 0.5) / 0.5. "none" keeps raw 0..255 values: std = 1/255 undoes the scaling.
FIXED_MODES: dict[str, tuple[float, float]] = {
    "[-1,1]": (0.5, 0.5),
    "[0,1]": (0.0, 1.0),
    "none": (0.0, 1.0 / PIXEL_MAX),
}
# LeCun et al. 1998: background (white) -> -0.1 and foreground (black) -> 1.175, which makes the
# input's mean about 0 and its variance about 1. Solving -mean/std = -0.1, (1 - mean)/std = 1.175:
LECUN_BACKGROUND, LECUN_FOREGROUND = -0.1, 1.175
LECUN_STD = 1.0 / (LECUN_FOREGROUND - LECUN_BACKGROUND)
FIXED_MODES["lecun1998"] = (-LECUN_BACKGROUND * LECUN_STD, LECUN_STD)


@dataclass(frozen=True)
class Normalization:
    """An affine pixel normalisation, saved alongside the weights it was trained with."""

    mode: str
    mean: float
    std: float
    pad: int = 0  # background pixels added on each side: 2 makes the 1998 net's 32x32 retina

    @classmethod
    def fit(cls, mode: str, train_images: torch.Tensor, input_size: int = MNIST_SIZE) -> "Normalization":
        """Build the normalisation for ``mode``, padding 28x28 digits to ``input_size``.

        z-score measures mean/std on the training split.
        """
        pad = (input_size - MNIST_SIZE) // 2
        if mode == "zscore":
            pixels = train_images.to(torch.float64) / PIXEL_MAX
            mean, std = float(pixels.mean()), float(pixels.std())
            if not std > 0:  # NaN for fewer than two pixels, 0 for one flat colour
                raise Lenet5Error(f"--normalization zscore: the training images have no spread (std {std})")
            return cls(mode, mean, std, pad)
        mean, std = FIXED_MODES[mode]
        return cls(mode, mean, std, pad)

    @property
    def input_size(self) -> int:
        """The side of the square tensor this produces (and the model takes)."""
        return MNIST_SIZE + 2 * self.pad

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 28, 28) or (N, 1, 28, 28) -> float32 (N, 1, S, S), S = 28 + 2 * pad."""
        if images.dim() == 3:
            images = images.unsqueeze(1)  # add the channel dimension: [N, C, H, W]
        pixels = images.to(torch.float32) / PIXEL_MAX
        if self.pad:
            # Pad with background (0) before the affine map, so the border gets its value.
            pixels = torch.nn.functional.pad(pixels, (self.pad,) * 4)
        return (pixels - self.mean) / self.std

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)


def image_to_mnist(source: Any, *, name: str | None = None) -> tuple[np.ndarray, list[str]]:
    """Steps 1-8 from any source :func:`open_image` accepts: (uint8 (28, 28), notes)."""
    image, notes = open_image(source, name=name)  # step 1 happens here
    return _recipe(image, notes, name), notes


def to_mnist(image: Image.Image, *, notes: list[str] | None = None, name: str | None = None) -> np.ndarray:
    """Turn a decoded image into an MNIST-style digit: uint8 (28, 28), white on black.

    A 28x28 image is taken to be in MNIST format already and passes through unchanged
    (apart from polarity). ``notes``, if given, collects what was done; ``name`` labels errors.
    The pixels stay 8-bit until the background is subtracted, so the statistics come from
    one histogram (``histograms.py``) rather than from sorting the image several times.

    Raises:
        NoDigitError: the image is blank (no ink stands out from the background).
    """
    notes = [] if notes is None else notes
    return _recipe(_upright(image), notes, name)  # step 1; a no-op after open_image, which already did it


def _recipe(image: Image.Image, notes: list[str], name: str | None) -> np.ndarray:
    """Steps 2-8 on an upright image."""
    gray, alpha = _flatten_to_gray(image)  # steps 2-3
    ink, background = _ink_up(gray, notes)  # step 4
    contrast = _contrast(ink, background)
    if contrast < MIN_CONTRAST and alpha is not None and np.ptp(alpha) >= MIN_CONTRAST:
        # Light strokes on a transparent canvas vanish on white: the alpha channel is the ink.
        ink, contrast = alpha, _contrast(alpha)
        notes.append("read the ink from the alpha channel")
    if contrast < MIN_CONTRAST:
        raise NoDigitError(name)
    if ink.shape == (MNIST_SIZE, MNIST_SIZE):
        return np.array(ink, dtype=np.uint8)
    ink = _suppress_background(ink, name)  # step 5
    digit = _scale_to_box(_crop_to_ink(ink))  # steps 6-7
    return _centre_by_mass(digit, name)  # step 8


def _upright(image: Image.Image) -> Image.Image:
    """EXIF orientation applied; without the tag, the image itself rather than a copy."""
    if image.getexif().get(ORIENTATION_TAG, 1) in (None, 1):
        return image
    return ImageOps.exif_transpose(image)


def _flatten_to_gray(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 grayscale (and the alpha channel, if any) with transparency composited onto white.

    An alpha channel that is opaque everywhere (a browser canvas's PNG) changes nothing, so
    it is dropped without compositing.
    """
    alpha_image = None
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        alpha_image = rgba.getchannel("A")
        if alpha_image.getextrema() == (OPAQUE, OPAQUE):
            image, alpha_image = rgba, None  # convert("L") ignores alpha: the same pixels as on white
        else:
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    gray_image = image.convert("L") if image.mode != "L" else image
    factor = math.ceil(max(gray_image.size) / WORKING_SIDE)
    if factor > 1:
        gray_image = gray_image.reduce(factor)
        alpha_image = alpha_image.reduce(factor) if alpha_image is not None else None
    alpha = np.asarray(alpha_image) if alpha_image is not None else None
    return np.asarray(gray_image), alpha


def _border(pixels: np.ndarray) -> np.ndarray:
    """The outer ring of the image, BORDER_FRACTION of each side wide (at least one pixel)."""
    height, width = pixels.shape
    ring = max(1, round(BORDER_FRACTION * min(height, width)))
    if height <= 2 * ring or width <= 2 * ring:
        return pixels.ravel()  # the ring covers everything
    middle = pixels[ring:height - ring]
    return np.concatenate([pixels[:ring].ravel(), pixels[height - ring:].ravel(),
                           middle[:, :ring].ravel(), middle[:, width - ring:].ravel()])


def _ink_up(gray: np.ndarray, notes: list[str]) -> tuple[np.ndarray, float]:
    """Make ink bright and background dark, as in MNIST; the border shows which is which.

    Returns the ink and its border's median, the background level that ``_contrast`` needs.
    """
    paper = median_of(_border(gray))
    if paper > PIXEL_MAX / 2:
        notes.append("inverted: dark ink on a light background")
        return np.subtract(UINT8_MAX, gray, dtype=np.uint8), PIXEL_MAX - paper  # the median of 255 - x
    return gray, paper


def _contrast(ink: np.ndarray, background: float | None = None) -> float:
    """How far the brightest ink stands above the background, ignoring lone noisy pixels.

    Averaging 2x2 blocks first quarters a lone bright pixel but keeps any real stroke. The
    blocks of an odd last row or column hold the two (or one) pixels there, as PIL's reduce(2).
    ``background`` is the median of the ink's border, if already known.
    """
    background = median_of(_border(ink)) if background is None else background
    height, width = ink.shape
    if min(height, width) < 2:
        return float(ink.max()) - background
    even_rows, even_cols = height - height % 2, width - width % 2
    wide = ink.astype(np.uint16)
    pairs = wide[0:even_rows:2] + wide[1:even_rows:2]  # (rows / 2, width): two rows summed
    brightest = float((pairs[:, 0:even_cols:2] + pairs[:, 1:even_cols:2]).max()) / 4
    if width % 2:
        brightest = max(brightest, float(pairs[:, -1].max()) / 2)
    if height % 2:
        last = wide[-1]
        brightest = max(brightest, float((last[0:even_cols:2] + last[1:even_cols:2]).max()) / 2)
        if width % 2:
            brightest = max(brightest, float(last[-1]))
    return brightest - background


def _suppress_background(ink: np.ndarray, name: str | None) -> np.ndarray:
    """Zero the background (paper grain, JPEG noise, uneven light) and saturate the strokes.

    The background level is estimated block by block, so a shadow across the paper is
    subtracted too. Above it, Otsu's threshold splits faint from strong; values below half
    of it (or below FAINT_SHARE of a typical stroke) become 0 and the typical stroke value
    becomes 255, with a linear ramp in between that keeps the anti-aliased edges.

    Returns float (H, W) in 0..255. With an even background (a drawing, a clean scan) every
    statistic comes from the 256-value histogram and the ramp is a lookup table.
    """
    too_small = min(ink.shape) < 2 * BACKGROUND_BLOCKS
    block_counts = None if too_small else grid_value_counts(ink, BACKGROUND_BLOCKS)
    counts = block_counts.sum(axis=(0, 1)) if block_counts is not None else value_counts(ink)
    background = _background(ink, counts, block_counts)
    if np.ndim(background) == 0:
        # signal = max(ink - background, 0) takes one value per ink level.
        level_signal = np.clip(GREY_LEVELS - float(background), 0, None)
        threshold = otsu_threshold_from_counts(level_signal, counts)
        strong = level_signal > threshold
        high = median_from_counts(counts[strong], level_signal[strong]) if counts[strong].any() \
            else float(level_signal[counts > 0].max())
        low = _low_cut(threshold, high, name)
        ramp = np.clip((level_signal - low) / (high - low), 0, 1) * PIXEL_MAX
        # float32, as the resize takes it; take() reads 8-bit indices without widening them first.
        return np.take(ramp.astype(np.float32), ink)
    signal = np.subtract(ink, background, dtype=np.float32)
    np.maximum(signal, 0, out=signal)
    threshold = otsu_threshold_of(signal)
    strokes = signal[signal > threshold]
    high = median_of(strokes) if strokes.size else float(signal.max())
    low = _low_cut(threshold, high, name)
    signal -= np.float32(low)
    signal *= np.float32(PIXEL_MAX / (high - low))
    return np.clip(signal, 0, PIXEL_MAX, out=signal)


def _low_cut(threshold: float, high: float, name: str | None) -> float:
    """The signal level that maps to 0; refuses a "digit" whose strokes barely stand out."""
    # When ink is scarce Otsu can split the grain itself; nothing this faint is ink anyway.
    low = max(threshold / 2, FAINT_SHARE * high)
    if high - low < MIN_CONTRAST / 2:
        raise NoDigitError(name)
    return low


def _background(ink: np.ndarray, counts: np.ndarray, block_counts: np.ndarray | None) -> float | np.ndarray:
    """A smooth background estimate from a BACKGROUND_BLOCKS x BACKGROUND_BLOCKS grid of blocks.

    Each block's 20th percentile is its paper level: a block a quarter of the image wide is
    wider than a pen stroke (about a tenth of the digit), so ink rarely covers 80% of it. A
    block that still looks like ink (nearer the ink than the paper) takes the typical paper
    level instead, so subtracting the background never erases a stroke.

    Returns a single level when the background is even, else a float32 (H, W) map.
    """
    if block_counts is None:
        return median_of(_border(ink))
    levels = percentile_from_counts(block_counts, BACKGROUND_PERCENTILE).astype(np.float32)
    paper = median_of(levels.ravel())
    levels[levels > (paper + otsu_threshold_from_counts(GREY_LEVELS, counts)) / 2] = paper
    if (levels == levels.flat[0]).all():
        return float(levels.flat[0])  # bilinear smoothing of one level is that level
    height, width = ink.shape
    return resize(levels, (width, height), bilinear_weights)


def _crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """Crop to the digit's bounding box, leaving out specks cut off from it by empty rows or columns."""
    # float32 sums are plenty: a profile is only compared with 0 and with a tenth of its peak.
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
    resized = resize(ink, size)  # PIL's LANCZOS, as matrix products
    return np.clip(np.rint(resized), 0, PIXEL_MAX).astype(np.uint8)


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
