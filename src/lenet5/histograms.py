"""Order statistics and Otsu's threshold read off histograms, for the preprocessing hot path.

An 8-bit image has at most 256 distinct values, so one histogram tells everything that
``np.median``, ``np.percentile`` and ``np.histogram`` would find by sorting or binning every
pixel. Each function here returns what the numpy call it replaces returns on the same pixels
(the percentile uses numpy's default "linear" method); ``tests/test_histograms.py`` checks
that against numpy itself.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

LEVELS = 256  # the distinct values of an 8-bit pixel
# Up to this many pixels, per-band bincounts beat PIL's histograms of 16 cropped blocks (a 280x280
# drawing: 107 against 138 us); past it, bincount's widening of every pixel to 64 bits costs more.
BANDED_COUNT_MAX_PIXELS = 100_000
OTSU_BINS = 256


def value_counts(pixels: np.ndarray) -> np.ndarray:
    """How many pixels hold each value 0..255: int64 (256,) for uint8 (H, W) ``pixels``.

    PIL's histogram counts the bytes in place; ``np.bincount`` would first widen every
    pixel to a 64-bit index, which costs more than the counting.
    """
    return np.array(Image.fromarray(np.ascontiguousarray(pixels)).histogram(), dtype=np.int64)


def grid_value_counts(pixels: np.ndarray, blocks: int) -> np.ndarray:
    """The value counts of each block of a ``blocks`` x ``blocks`` grid over uint8 ``pixels``: (b, b, 256).

    Block edges fall where ``np.linspace(0, side, blocks + 1)`` puts them, truncated, i.e. at
    ``i * side // blocks``.
    """
    height, width = pixels.shape
    row_edges = [i * height // blocks for i in range(blocks + 1)]
    col_edges = [i * width // blocks for i in range(blocks + 1)]
    if pixels.size <= BANDED_COUNT_MAX_PIXELS:
        # One bincount per band of rows, each pixel keyed by its column block and value.
        keys = np.repeat(np.arange(blocks, dtype=np.uint16) * LEVELS, np.diff(col_edges))
        bands = [np.bincount((pixels[r0:r1] + keys).ravel(), minlength=blocks * LEVELS)
                 for r0, r1 in zip(row_edges, row_edges[1:])]
        return np.stack(bands).reshape(blocks, blocks, LEVELS)
    image = Image.fromarray(np.ascontiguousarray(pixels))
    return np.array([[image.crop((c0, r0, c1, r1)).histogram() for c0, c1 in zip(col_edges, col_edges[1:])]
                     for r0, r1 in zip(row_edges, row_edges[1:])], dtype=np.int64)


def median_of(values: np.ndarray) -> float:
    """``np.median`` of a 1-D array, without its general-purpose overhead (it runs several times per image)."""
    middle = (values.size - 1) // 2, values.size // 2
    low, high = np.partition(values, middle)[list(middle)]
    return (float(low) + float(high)) / 2


def order_statistic(counts: np.ndarray, rank: np.ndarray | int) -> np.ndarray:
    """The value at 0-based ``rank`` (or ranks) of the sorted pixels that ``counts`` describes."""
    return np.searchsorted(np.cumsum(counts), np.asarray(rank), side="right")


def median_from_counts(counts: np.ndarray, values: np.ndarray | None = None) -> float:
    """``np.median`` of the pixels; ``values[i]`` is the value of bin ``i`` (default: ``i``)."""
    total = int(counts.sum())
    middle = order_statistic(counts, [(total - 1) // 2, total // 2])
    if values is not None:
        middle = values[middle]
    return float((float(middle[0]) + float(middle[1])) / 2)


def percentile_from_counts(counts: np.ndarray, percent: float) -> np.ndarray:
    """``np.percentile(pixels, percent)`` (linear method) for each row of ``counts`` (..., 256)."""
    sizes = counts.sum(axis=-1)
    quantile = percent / 100
    position = sizes * quantile + (1 + quantile * -1) - 1  # numpy's virtual index for alpha = beta = 1
    below = np.floor(position)
    gamma = position - below
    cumulative = np.cumsum(counts, axis=-1).reshape(-1, LEVELS)
    below_rank = below.reshape(-1, 1)
    above_rank = np.minimum(below_rank + 1, sizes.reshape(-1, 1) - 1)
    # The value at rank r is how many cumulative counts are <= r (searchsorted, row by row).
    low = (cumulative <= below_rank).sum(axis=1).astype(np.float64)
    high = (cumulative <= above_rank).sum(axis=1).astype(np.float64)
    gamma = gamma.reshape(-1)
    # numpy's _lerp, which interpolates from the nearer end for accuracy.
    result = np.where(gamma >= 0.5, high - (high - low) * (1 - gamma), low + (high - low) * gamma)
    return result.reshape(sizes.shape)


def otsu_threshold_from_counts(values: np.ndarray, counts: np.ndarray) -> float:
    """Otsu's threshold over pixels where ``counts[i]`` of them equal ``values[i]``.

    The same as binning every pixel with ``np.histogram(pixels, OTSU_BINS)`` and running
    Otsu on that histogram, since each pixel's bin depends only on its value.
    """
    present = values[counts > 0]
    low, high = float(present.min()), float(present.max())
    if high == low:  # numpy's convention for a constant input: one unit-wide range around it
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, OTSU_BINS + 1)
    binned = np.bincount(_bin_index(values, edges), weights=counts, minlength=OTSU_BINS)
    return otsu_threshold(binned.astype(np.int64), edges)


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Each value's bin among ``edges`` as ``np.histogram`` assigns it; values outside land in an end bin."""
    inside = np.clip(values, edges[0], edges[-1])
    index = ((inside - edges[0]) / (edges[-1] - edges[0]) * OTSU_BINS).astype(np.intp)
    np.minimum(index, OTSU_BINS - 1, out=index)  # the last bin includes its right edge
    # The scaled index can be one off within a rounding error of an edge: numpy checks against the edges.
    index -= (inside < edges[index]) & (index > 0)
    index += (inside >= edges[index + 1]) & (index != OTSU_BINS - 1)
    return index


def otsu_threshold_of(pixels: np.ndarray) -> float:
    """Otsu's threshold on float ``pixels``, binned like ``np.histogram(pixels, OTSU_BINS)``.

    One scaled cast and a bincount instead of numpy's general binning: a pixel right on a
    bin edge may land in the neighbouring bin, which moves the threshold by at most one bin.
    """
    low, high = float(pixels.min()), float(pixels.max())
    if high == low:  # numpy's convention for a constant input: one unit-wide range around it
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, OTSU_BINS + 1)
    shifted = pixels if low == 0 else pixels - np.float32(low)
    index = np.multiply(shifted, np.float32(OTSU_BINS / (high - low)), dtype=np.float32)
    np.minimum(index, OTSU_BINS - 1, out=index)  # the maximum itself: the last bin includes its right edge
    return otsu_threshold(value_counts(index.astype(np.uint8)), edges)


def otsu_threshold(counts: np.ndarray, edges: np.ndarray) -> float:
    """The bin edge that best splits a histogram into two classes (Otsu, 1979)."""
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    mass_low = np.cumsum(counts * centres)
    mean_low = mass_low / np.maximum(weight_low, 1)
    mean_high = (mass_low[-1] - mass_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(edges[int(np.argmax(between)) + 1])
