"""Figures written into run folders: training curves and confusion matrices."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .files import atomic_write_bytes


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def plot_curves(history: Sequence[dict[str, float]], path: Path, best_epoch: int | None = None,
                title: str = "") -> None:
    """Train vs validation loss and accuracy per epoch, with the best epoch marked."""
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((loss_ax, "loss", "loss"), (acc_ax, "acc", "accuracy")):
        ax.plot(epochs, [row[f"train_{key}"] for row in history], "o-", label=f"train {label}")
        ax.plot(epochs, [row[f"val_{key}"] for row in history], "s-", label=f"val {label}")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle="--", label=f"best epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)  # no "epoch 1.5" ticks
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    save_figure(fig, path)


def plot_confusion(confusion: np.ndarray, path: Path, title: str = "confusion matrix") -> None:
    """A 10x10 confusion matrix: rows are true digits, columns are predictions."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5.5))
    draw_confusion(fig, ax, confusion, confusion, count_text)
    ax.set_title(title)
    save_figure(fig, path)


def count_text(count: float) -> str:
    return str(int(count))


def draw_confusion(fig, ax, colours: np.ndarray, values: np.ndarray, cell_text: Callable[[float], str]) -> None:
    """One confusion-matrix panel: ``colours`` sets the shading, ``values`` the number in each cell.

    Kept apart from the figure so ``lenet5 eval`` (one panel) and the inspect report (counts
    beside row-normalised shares) draw their matrices the same way.
    """
    image = ax.imshow(colours, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    classes = range(len(values))
    threshold = colours.max() / 2 if colours.max() > 0 else 1
    for true in classes:
        for predicted in classes:
            colour = "white" if colours[true, predicted] > threshold else "black"
            ax.text(predicted, true, cell_text(values[true, predicted]), ha="center", va="center", fontsize=7,
                    color=colour)
    ax.set_xticks(list(classes))
    ax.set_yticks(list(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
