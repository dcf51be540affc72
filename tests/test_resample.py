"""PIL's resize filters as matrices (``lenet5.resample``) against PIL's own ``Image.resize``."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lenet5.resample import bilinear_weights, lanczos_weights, resize

FILTERS = {"lanczos": (lanczos_weights, Image.Resampling.LANCZOS),
           "bilinear": (bilinear_weights, Image.Resampling.BILINEAR)}
# (height, width) -> (new width, new height): the recipe's shrinks to the 20-pixel box, its
# 4x4 background grid stretched over an image, and the corners: one pixel, same size, odd ratios.
CASES = [((200, 170), (17, 20)), ((281, 197), (20, 14)), ((1024, 700), (14, 20)), ((4, 4), (281, 197)),
         ((4, 4), (8, 9)), ((20, 9), (20, 9)), ((15, 12), (20, 16)), ((1, 50), (20, 1)), ((3, 40), (2, 20))]


@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize(("shape", "size"), CASES)
def test_matches_pil(name: str, shape: tuple[int, int], size: tuple[int, int]) -> None:
    weights, pil_filter = FILTERS[name]
    pixels = np.random.default_rng(sum(shape)).uniform(0, 255, shape).astype(np.float32)
    expected = np.asarray(Image.fromarray(pixels).resize(size, pil_filter))
    got = resize(pixels, size, weights)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-3  # float rounding; a grey level is 1.0


def test_each_row_of_weights_sums_to_one() -> None:
    for old, new in [(200, 20), (4, 281), (7, 7), (1, 20)]:
        for weights in (lanczos_weights, bilinear_weights):
            assert np.allclose(weights(old, new).sum(dim=1).numpy(), 1.0, atol=1e-6)
