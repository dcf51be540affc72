"""PIL's resize filters as matrices, for the preprocessing hot path.

Resizing an image is a linear map on each axis: a (new size, old size) matrix whose rows
hold one output pixel's filter weights. Built the way PIL builds them (pixel centres
aligned, the filter stretched when shrinking, weights cut at the edges and renormalised),
``rows @ pixels @ columns.T`` gives what ``Image.resize`` gives, up to float rounding, at a
fraction of its cost on the small float images the MNIST recipe resizes.
``tests/test_resample.py`` checks that against PIL itself.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np
import torch

LANCZOS_LOBES = 3  # PIL's LANCZOS is Lanczos-3
BILINEAR_SUPPORT = 1.0  # the triangle filter reaches one pixel either way
# Matrices kept for reuse, per filter. The recipe shrinks at most 1024 pixels (its working
# side) to 20 and stretches 4 blocks over at most 1024: one is at most 80 KB, both caches
# together at most 12 MB (web/limits.py counts them in a server's memory bound).
CACHED_MATRICES = 128

Weights = Callable[[int, int], torch.Tensor]


def _lanczos(x: np.ndarray) -> np.ndarray:
    """sinc(x) * sinc(x / 3) inside |x| < 3, else 0: written out, as np.sinc costs more than the resize."""
    angle = np.pi * x
    with np.errstate(invalid="ignore", divide="ignore"):
        value = LANCZOS_LOBES * np.sin(angle) * np.sin(angle / LANCZOS_LOBES) / (angle * angle)
    value[x == 0] = 1.0
    value[np.abs(x) >= LANCZOS_LOBES] = 0.0
    return value


def _triangle(x: np.ndarray) -> np.ndarray:
    return np.clip(1.0 - np.abs(x), 0.0, None)


def _weights(old: int, new: int, kernel: Callable[[np.ndarray], np.ndarray], support: float) -> np.ndarray:
    """float32 (new, old): PIL's coefficients for resizing one axis from ``old`` to ``new`` pixels."""
    scale = old / new
    stretch = max(scale, 1.0)  # shrinking widens the filter so every input pixel counts
    centres = (np.arange(new) + 0.5) * scale  # each output pixel's centre, in input pixels
    reach = support * stretch
    first = np.maximum((centres - reach + 0.5).astype(np.int64), 0)  # C's int(): toward zero, then clamped
    last = np.minimum((centres + reach + 0.5).astype(np.int64), old)
    span = int((last - first).max())
    taps = first[:, None] + np.arange(span)  # (new, span): only the band a row can reach
    weights = kernel((taps - centres[:, None] + 0.5) / stretch) * (taps < last[:, None])
    total = weights.sum(axis=1, keepdims=True)
    weights /= np.where(total == 0, 1.0, total)
    # Into a (new, old) matrix; taps past the last pixel carry weight 0 and land in a margin cut off after.
    matrix = np.zeros((new, old + span), dtype=np.float32)
    np.put_along_axis(matrix, taps, weights, axis=1)
    return np.ascontiguousarray(matrix[:, :old])


@lru_cache(maxsize=CACHED_MATRICES)
def lanczos_weights(old: int, new: int) -> torch.Tensor:
    """The (new, old) matrix of ``Image.resize(..., Image.Resampling.LANCZOS)`` along one axis.

    Cached, as is the bilinear one: building one costs more than the resize it serves, and
    digits come in a few hundred sizes. Callers share them, so they must not change them.
    """
    return torch.from_numpy(_weights(old, new, _lanczos, LANCZOS_LOBES))


@lru_cache(maxsize=CACHED_MATRICES)
def bilinear_weights(old: int, new: int) -> torch.Tensor:
    """The (new, old) matrix of ``Image.resize(..., Image.Resampling.BILINEAR)`` along one axis."""
    return torch.from_numpy(_weights(old, new, _triangle, BILINEAR_SUPPORT))


def resize(pixels: np.ndarray, size: tuple[int, int], weights: Weights = lanczos_weights) -> np.ndarray:
    """float32 (H, W) ``pixels`` resized to ``size`` = (width, height), as PIL's filter would.

    The products run in torch, which keeps to the threads it is told to use (one in a server
    worker); numpy's BLAS would spread them over every core whatever the setting, and on
    products this small the second core mostly waits, billing two cores for the work of one.
    """
    height, width = pixels.shape
    new_width, new_height = size
    image = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))
    return (weights(height, new_height) @ image @ weights(width, new_width).T).numpy()
