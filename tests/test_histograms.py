"""Statistics read off histograms equal numpy's own on the same pixels."""

from __future__ import annotations

import numpy as np
import pytest

from lenet5.histograms import (
    grid_value_counts,
    median_from_counts,
    median_of,
    otsu_threshold,
    otsu_threshold_from_counts,
    otsu_threshold_of,
    percentile_from_counts,
    value_counts,
)


def numpy_otsu(values: np.ndarray) -> float:
    counts, edges = np.histogram(values, bins=256)
    return otsu_threshold(counts, edges)


@pytest.mark.parametrize("size", [1, 2, 5, 101, 4900])
@pytest.mark.parametrize("seed", range(3))
def test_median_and_percentile_equal_numpy(size, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)
    counts = value_counts(pixels)
    assert median_from_counts(counts) == np.median(pixels)
    for percent in (0, 20, 50, 73.5, 100):
        assert percentile_from_counts(counts, percent) == pytest.approx(np.percentile(pixels.astype(float), percent),
                                                                        abs=1e-12)


def test_percentile_works_row_by_row():
    rng = np.random.default_rng(0)
    blocks = [rng.integers(0, 256, n, dtype=np.uint8) for n in (7, 50, 311, 1)]
    counts = np.stack([value_counts(block) for block in blocks]).reshape(2, 2, 256)
    expected = np.array([np.percentile(block.astype(float), 20) for block in blocks]).reshape(2, 2)
    np.testing.assert_allclose(percentile_from_counts(counts, 20), expected, atol=1e-12)


def test_median_of_mapped_values():
    pixels = np.random.default_rng(1).integers(0, 256, 999, dtype=np.uint8)
    mapped = np.clip(np.arange(256) - 20.4, 0, None)
    assert median_from_counts(value_counts(pixels), mapped) == np.median(mapped[pixels])


@pytest.mark.parametrize("seed", range(4))
def test_otsu_from_counts_equals_binning_every_pixel(seed):
    rng = np.random.default_rng(seed)
    pixels = np.concatenate([rng.normal(30, 10, 3000), rng.normal(180, 25, 800)]).clip(0, 255).astype(np.uint8)
    values = np.clip(np.arange(256) - 12.5, 0, None)
    assert otsu_threshold_from_counts(values, value_counts(pixels)) == numpy_otsu(values[pixels])


@pytest.mark.parametrize("seed", range(4))
def test_otsu_of_floats_is_within_one_bin_of_numpy(seed):
    rng = np.random.default_rng(seed)
    pixels = np.concatenate([rng.normal(10, 5, 5000), rng.normal(150, 30, 900)]).clip(0, None).astype(np.float32)
    bin_width = (pixels.max() - pixels.min()) / 256
    assert abs(otsu_threshold_of(pixels) - numpy_otsu(pixels)) <= bin_width * 1.0001
    assert otsu_threshold_of(np.full(10, 3.0, dtype=np.float32)) == numpy_otsu(np.full(10, 3.0))


@pytest.mark.parametrize("shape", [(8, 8), (37, 51), (280, 281), (400, 333)])  # the last counted by PIL
def test_grid_counts_and_median_equal_numpy(shape):
    pixels = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    counts = grid_value_counts(pixels, 4)
    rows, cols = np.linspace(0, shape[0], 5).astype(int), np.linspace(0, shape[1], 5).astype(int)
    for i in range(4):
        for j in range(4):
            block = pixels[rows[i]:rows[i + 1], cols[j]:cols[j + 1]]
            np.testing.assert_array_equal(counts[i, j], np.bincount(block.ravel(), minlength=256))
    assert median_of(pixels.ravel()) == np.median(pixels)
    assert median_of(pixels.ravel()[:-1]) == np.median(pixels.ravel()[:-1])
    floats = pixels.astype(np.float32) / 7
    assert median_of(floats.ravel()) == pytest.approx(float(np.median(floats)), rel=1e-6)
    assert median_of(floats.ravel()[:-1]) == pytest.approx(float(np.median(floats.ravel()[:-1])), rel=1e-6)
