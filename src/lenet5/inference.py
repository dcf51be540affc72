"""Inference on uint8 image tensors: batched logits and loss/accuracy, with autograd off.

Training, evaluation, export checks and compare all run forward passes through here, so
none of them needs to import the training loop.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .errors import Lenet5Error
from .preprocess import Normalization

EVAL_BATCH_SIZE = 1000  # evaluation keeps no activations for backward, so batches can be big


def resolve_device(name: str) -> torch.device:
    """Map ``auto|cpu|cuda|mps`` to a device, refusing one this machine does not have."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available[name]:
        raise Lenet5Error(f"device {name!r} is not available on this machine")
    return torch.device(name)


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, normalize: Normalization,
             loss_fn: nn.Module | None = None) -> tuple[float, float]:
    """Mean loss (cross-entropy unless ``loss_fn`` says) and accuracy, in eval mode with autograd
    off; (nan, nan) for no images."""
    if len(images) == 0:
        return math.nan, math.nan
    logits = predict_logits(model, images, normalize)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    loss = loss_fn(logits, labels.to(logits.device)).item()
    correct = int((logits.argmax(1).cpu() == labels.cpu()).sum())
    return loss, correct / len(labels)


def predict_logits(model: nn.Module, images: torch.Tensor, normalize: Normalization) -> torch.Tensor:
    """Logits for uint8 images, in batches, with dropout off and batchnorm on running stats."""
    model.eval()
    device = next(model.parameters()).device
    with torch.inference_mode():
        return torch.cat([model(normalize(chunk.to(device))) for chunk in images.split(EVAL_BATCH_SIZE)])
