"""Looking inside a trained model with forward hooks: feature maps and F6 features.

Everything goes through :func:`lenet5.hooks.capture_activations`, which adds hooks for the
duration of a ``with`` block and removes them after, so the model computes exactly what it
would without them (``tests/test_inspect.py`` checks that).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..hooks import FEATURE_STAGES, capture_activations
from ..preprocess import Normalization

EMBEDDING_STAGE = "f6"  # the 84-d penultimate layer: the features the output layer separates
CHUNK = 500  # images per forward pass while collecting features (bounds the memory per pass)


def f6_features(model: torch.nn.Module, images: torch.Tensor, normalization: Normalization) -> np.ndarray:
    """The F6 activations of uint8 ``images`` (N, 28, 28), as float32 (N, 84)."""
    model.eval()
    chunks = []
    with torch.inference_mode(), capture_activations(model, [EMBEDDING_STAGE]) as captured:
        for batch in images.split(CHUNK):
            model(normalization(batch))
            chunks.append(captured[EMBEDDING_STAGE].cpu().numpy())
    return np.concatenate(chunks)


def feature_maps(model: torch.nn.Module, digit: np.ndarray,
                 normalization: Normalization) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One uint8 (28, 28) digit through the network.

    Returns:
        (softmax probabilities (10,), stage -> maps (channels, H, W) for C1, S2, C3 and S4).
    """
    model.eval()
    batch = normalization(torch.from_numpy(np.ascontiguousarray(digit))[None])  # (1, 1, 28, 28)
    with torch.inference_mode(), capture_activations(model, FEATURE_STAGES) as captured:
        logits = model(batch)
    maps = {stage: captured[stage][0].cpu().numpy() for stage in FEATURE_STAGES}
    return torch.softmax(logits, 1)[0].cpu().numpy(), maps


def digit_from_file(path: Path) -> tuple[np.ndarray, list[str]]:
    """An image file turned into an MNIST-style digit by the shared preprocessing."""
    from ..preprocess import image_to_mnist

    return image_to_mnist(Path(path), name=str(path))


def conv_weights(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The two convolution kernels: conv1 (6, 1, 5, 5) and conv2 (16, 6, 5, 5)."""
    return {"conv1": model.c1[0].weight.detach().cpu().numpy(),
            "conv2": model.c3[0].weight.detach().cpu().numpy()}
