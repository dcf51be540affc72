"""The lab handout's worked examples, recomputed live with torch.

``lenet5 explain TOPIC`` prints each example step by step, next to the number the handout
gives, so a student sees the real operation produce it. Topic modules import torch, so they
are loaded only when their topic is asked for and ``lenet5 --help`` stays instant.
"""

from __future__ import annotations

import importlib

from ..errors import Lenet5Error
from .lesson import Lesson

# topic -> (module in this package, function, one-line description)
TOPICS: dict[str, tuple[str, str, str]] = {
    "conv": ("layers", "conv", "the 5x5 image and 3x3 edge kernel; output-size formula"),
    "pool": ("layers", "pool", "max vs average pooling on the handout's examples"),
    "activation": ("layers", "activation", "tanh and ReLU on the handout's inputs"),
    "flatten": ("layers", "flatten", "[1, 64, 7, 7] -> [1, 3136], and LeNet's 16x5x5 -> 400"),
    "softmax": ("loss", "softmax", "logits [2.0, 1.0, 0.1] -> probabilities"),
    "cross-entropy": ("loss", "cross_entropy", "-log p(true class) vs nn.CrossEntropyLoss; one-hot vs index labels"),
    "sgd": ("optim", "sgd", "SGD with momentum by hand next to torch.optim.SGD"),
    "adam": ("optim", "adam", "Adam by hand next to torch.optim.Adam"),
    "modes": ("modes", "modes", "dropout and batchnorm in train() vs eval(); what no_grad changes"),
    "normalize": ("modes", "normalize", "a real MNIST image's pixel range under each normalisation"),
}


def explain(topic: str) -> Lesson:
    """Compute one topic's worked example and return it as a :class:`Lesson`."""
    if topic not in TOPICS:
        raise Lenet5Error(f"unknown topic {topic!r}: choose from {', '.join(TOPICS)}")
    module_name, function_name, _ = TOPICS[topic]
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, function_name)()


__all__ = ["TOPICS", "Lesson", "explain"]
