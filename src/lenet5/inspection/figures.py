"""The report's figures, each written as a PNG by ``lenet5.plots.save_figure``.

matplotlib is imported inside ``_pyplot`` (Agg backend), so importing this module is cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..plots import _pyplot, count_text, draw_confusion, save_figure
from .metrics import Reliability

DIGIT_CMAP = "gray"  # MNIST digits are white on black
FILTER_CMAP = "RdBu_r"  # signed weights: red positive, blue negative, white zero
MAP_CMAP = "viridis"


def _share_text(share: float) -> str:
    return "." if share < 0.005 else f"{share:.2f}"  # a dot, not a wall of 0.00s


def plot_confusion_pair(confusion: np.ndarray, normalised: np.ndarray, path: Path, accuracy: float) -> None:
    """Counts and row-normalised shares side by side (rows: true digit, columns: prediction)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    # Log-ish emphasis: the diagonal dwarfs the mistakes, so colour the off-diagonal on its own scale.
    off_diagonal = confusion * (1 - np.eye(len(confusion)))
    draw_confusion(fig, axes[0], off_diagonal, confusion, count_text)
    axes[0].set_title("counts (colour: mistakes only)")
    draw_confusion(fig, axes[1], normalised, normalised, _share_text)
    axes[1].set_title("row-normalised (share of each true digit)")
    fig.suptitle(f"confusion matrix, test accuracy {accuracy:.2%}")
    save_figure(fig, path)


def plot_mistakes(images: np.ndarray, true: Sequence[int], predicted: Sequence[int],
                  confidence: Sequence[float], path: Path, columns: int = 8) -> None:
    """A grid of misclassified digits titled 'true -> predicted (probability)'."""
    plt = _pyplot()
    rows = max(1, math.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.4, rows * 1.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, t, p, c in zip(axes.flat, images, true, predicted, confidence):
        ax.imshow(image, cmap=DIGIT_CMAP)
        ax.set_title(f"true {t} -> {p}\np = {c:.2f}", fontsize=8, color="firebrick")
    if len(images) == 0:
        axes.flat[0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    fig.suptitle("most confident mistakes on the test set")
    save_figure(fig, path)


def plot_filters(weights: np.ndarray, path: Path, title: str) -> None:
    """Conv kernels (out, in, k, k) as a grid: one column per filter, one row per input map.

    Every tile shares one symmetric colour scale, so strengths compare across filters.
    """
    plt = _pyplot()
    out_channels, in_channels = weights.shape[:2]
    limit = float(np.abs(weights).max()) or 1.0
    tile = 0.8  # inches per kernel
    fig, axes = plt.subplots(in_channels, out_channels, squeeze=False,
                             figsize=(out_channels * tile + 1.2, in_channels * tile + 0.7))
    for r in range(in_channels):
        for c in range(out_channels):
            ax = axes[r, c]
            image = ax.imshow(weights[c, r], cmap=FILTER_CMAP, vmin=-limit, vmax=limit)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"filter {c}", fontsize=8)
            if c == 0 and in_channels > 1:
                ax.set_ylabel(f"from map {r}", fontsize=7)
    fig.colorbar(image, ax=axes, fraction=0.03 if in_channels > 1 else 0.012, pad=0.01)
    fig.suptitle(title)
    save_figure(fig, path)


def plot_feature_maps(digit: np.ndarray, maps: dict[str, np.ndarray], path: Path, title: str) -> None:
    """The input digit and each stage's feature maps (channels across, stages down)."""
    plt = _pyplot()
    columns = max(m.shape[0] for m in maps.values())
    fig, axes = plt.subplots(len(maps) + 1, columns, figsize=(columns * 0.85, (len(maps) + 1) * 1.0),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].imshow(digit, cmap=DIGIT_CMAP)
    axes[0, 0].set_title("input", fontsize=8)
    axes[0, 1].text(0, 0.5, title, fontsize=9, va="center", transform=axes[0, 1].transAxes)
    for row, (stage, channels) in enumerate(maps.items(), start=1):
        for channel, feature_map in enumerate(channels):
            axes[row, channel].imshow(feature_map, cmap=MAP_CMAP)
        size = "x".join(map(str, channels.shape[1:]))
        axes[row, 0].set_title(f"{stage.upper()}: {channels.shape[0]} maps of {size}", fontsize=8, loc="left")
    save_figure(fig, path)


def plot_pca(points: np.ndarray, labels: np.ndarray, explained: np.ndarray, path: Path) -> None:
    """F6 features projected onto their two principal components, one colour per digit."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 6))
    colours = plt.get_cmap("tab10")
    for digit in range(10):
        chosen = labels == digit
        ax.scatter(points[chosen, 0], points[chosen, 1], s=5, alpha=0.6, color=colours(digit), label=str(digit))
        if chosen.any():
            centre = points[chosen].mean(0)
            ax.text(centre[0], centre[1], str(digit), fontsize=14, weight="bold", ha="center", va="center",
                    bbox={"boxstyle": "circle", "facecolor": "white", "edgecolor": colours(digit), "alpha": 0.85})
    ax.set_xlabel(f"PC1 ({explained[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({explained[1]:.0%} of variance)")
    ax.legend(title="digit", markerscale=3, fontsize=8, loc="best", ncol=2)
    ax.set_title(f"84-d F6 features of {len(labels):,} test digits, PCA to 2-D")
    ax.grid(alpha=0.2)
    save_figure(fig, path)


def plot_reliability(calibration: Reliability, path: Path) -> None:
    """Accuracy vs confidence per bin against the diagonal, with how many images fall in each bin."""
    plt = _pyplot()
    fig, (ax, count_ax) = plt.subplots(2, 1, figsize=(6, 6.5), sharex=True,
                                       gridspec_kw={"height_ratios": [3, 1]})
    lows, width = calibration.edges[:-1], np.diff(calibration.edges)
    filled = calibration.counts > 0
    ax.bar(lows[filled], calibration.accuracy[filled], width=width[filled], align="edge", edgecolor="black",
           color="steelblue", label="accuracy in bin")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.plot(calibration.confidence[filled], calibration.accuracy[filled], "o", color="darkorange",
            label="(mean confidence, accuracy)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"reliability: expected calibration error {calibration.expected_calibration_error:.4f}")
    count_ax.bar(lows[filled], calibration.counts[filled], width=width[filled], align="edge", edgecolor="black",
                 color="lightgrey")
    count_ax.set_yscale("log")
    count_ax.set_xlabel("confidence (top softmax probability)")
    count_ax.set_ylabel("images")
    count_ax.set_xlim(0, 1)
    save_figure(fig, path)
