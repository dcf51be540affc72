"""Measurements some studies need beyond a run's summary, taken from its saved weights.

- ``train_mode_accuracy``: test accuracy of the best weights with the model left in train()
  mode, the result a student gets who forgets ``model.eval()`` (dropout stays on, batchnorm
  normalises with each batch's statistics instead of the running ones).
- ``last_epoch_accuracy``: test accuracy of the last epoch's weights, to set against the
  best-validation-loss weights that early stopping restores.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ..config import TrainConfig
from ..data.mnist import load_split
from ..inference import evaluate
from ..weights import LAST, load_model


def train_mode_accuracy(run_dir: Path, config: TrainConfig) -> float:
    """Test accuracy with the model in train() mode, fed in training-sized batches."""
    loaded = load_model(run_dir)
    images, labels = load_split("test", config.data_dir)
    model = loaded.model
    model.train()  # the mistake under study; predict_logits would switch to eval()
    torch.manual_seed(config.seed)  # dropout masks are random: fix them so the number repeats
    correct = 0
    with torch.no_grad():
        for chunk, targets in zip(images.split(config.batch_size), labels.split(config.batch_size)):
            correct += int((model(loaded.normalization(chunk)).argmax(1) == targets).sum())
    return correct / len(labels)


def last_epoch_accuracy(run_dir: Path, config: TrainConfig) -> float:
    """Test accuracy of the final epoch's weights (eval mode)."""
    loaded = load_model(run_dir / LAST)
    images, labels = load_split("test", config.data_dir)
    return evaluate(loaded.model, images, labels, loaded.normalization)[1]


EXTRAS: dict[str, Callable[[Path, TrainConfig], float]] = {
    "train_mode_accuracy": train_mode_accuracy,
    "last_epoch_accuracy": last_epoch_accuracy,
}
