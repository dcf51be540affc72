"""Measure saved weights on a test split: loss, accuracy, per-class accuracy, confusion."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data.mnist import NUM_CLASSES, load_split
from .errors import DataError
from .files import write_csv
from .inference import predict_logits
from .weights import LoadedModel


@dataclass
class Evaluation:
    """Everything later reports need about one model on one split."""

    loss: float
    accuracy: float
    logits: torch.Tensor  # (N, 10)
    labels: torch.Tensor  # (N,)
    images: torch.Tensor  # uint8 (N, 28, 28), for showing mistakes

    @property
    def predictions(self) -> torch.Tensor:
        return self.logits.argmax(1)

    @property
    def probabilities(self) -> np.ndarray:
        """Softmax over the logits, float64 (N, 10)."""
        return torch.softmax(self.logits.double(), dim=1).numpy()

    @property
    def confusion(self) -> np.ndarray:
        """Counts: row = true digit, column = predicted digit."""
        pairs = self.labels * NUM_CLASSES + self.predictions
        return torch.bincount(pairs, minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES).numpy()

    @property
    def per_class_accuracy(self) -> np.ndarray:
        confusion = self.confusion
        return confusion.diagonal() / np.maximum(confusion.sum(1), 1)


def evaluate_model(loaded: LoadedModel, data_dir: str | Path | None = None, split: str = "test") -> Evaluation:
    """Run ``loaded`` over a whole split (the bundled MNIST test set by default)."""
    images, labels = load_split(split, data_dir if data_dir is not None else loaded.config.data_dir)
    if len(labels) == 0:
        raise DataError(f"the {split} split in {data_dir or loaded.config.data_dir or 'the bundled MNIST'} "
                        "has no images to evaluate on")
    logits = predict_logits(loaded.model, images, loaded.normalization).cpu()
    loss = nn.functional.cross_entropy(logits, labels).item()
    accuracy = int((logits.argmax(1) == labels).sum()) / len(labels)
    return Evaluation(loss, accuracy, logits, labels, images)


def write_confusion(evaluation: Evaluation, out_dir: Path) -> tuple[Path, Path]:
    """Write confusion.csv and confusion.png into ``out_dir``."""
    from .plots import plot_confusion

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [{"true": true, **{f"pred_{p}": int(n) for p, n in enumerate(counts)}}
            for true, counts in enumerate(evaluation.confusion)]
    csv_path, png_path = out_dir / "confusion.csv", out_dir / "confusion.png"
    write_csv(csv_path, rows)
    plot_confusion(evaluation.confusion, png_path,
                   title=f"confusion matrix (accuracy {evaluation.accuracy:.2%})")
    return csv_path, png_path
