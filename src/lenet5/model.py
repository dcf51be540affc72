"""LeNet-5 (LeCun et al., 1998) as the lab builds it, with the lab's design choices as switches.

    input (N, 1, 28, 28)
    C1  conv 6@5x5, pad 2  -> (N, 6, 28, 28)
    S2  pool 2x2           -> (N, 6, 14, 14)
    C3  conv 16@5x5        -> (N, 16, 10, 10)
    S4  pool 2x2           -> (N, 16, 5, 5)
    flatten                -> (N, 400)
    F5  linear 400->120
    F6  linear 120->84
    output linear 84->10   -> logits (N, 10)

``forward`` returns raw logits: CrossEntropyLoss, ONNX export and serving all want them.
No I/O here; saving and loading live in ``weights.py``.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig

IMAGE_SIZE = 28  # MNIST images are 28x28, single channel
S4_FEATURES = 16 * 5 * 5  # channels x height x width after S4


def make_activation(name: str) -> nn.Module:
    """Build the activation module the config names."""
    activations = {
        "tanh": nn.Tanh,
        "relu": nn.ReLU,
        "leaky_relu": nn.LeakyReLU,
        "gelu": nn.GELU,
        "sigmoid": nn.Sigmoid,
    }
    return activations[name]()


POOL_LAYERS: dict[str, type[nn.Module]] = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


class LeNet5(nn.Module):
    """LeNet-5 with switchable activation, pooling, dropout and batchnorm.

    Batchnorm sits between each conv/linear layer and its activation; dropout follows the
    activations of F5 and F6. With both off (the default) the network has 61,706 parameters.
    """

    def __init__(self, *, activation: str = "tanh", pool: str = "max", dropout: float = 0.0,
                 batchnorm: bool = False, num_classes: int = 10) -> None:
        super().__init__()
        pool_layer = POOL_LAYERS[pool]

        def norm2d(channels: int) -> nn.Module:
            return nn.BatchNorm2d(channels) if batchnorm else nn.Identity()

        def norm1d(features: int) -> nn.Module:
            return nn.BatchNorm1d(features) if batchnorm else nn.Identity()

        # Bias is redundant before batchnorm, which has its own shift.
        bias = not batchnorm
        self.c1 = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2, bias=bias), norm2d(6), make_activation(activation))
        self.s2 = pool_layer(2)
        self.c3 = nn.Sequential(nn.Conv2d(6, 16, 5, bias=bias), norm2d(16), make_activation(activation))
        self.s4 = pool_layer(2)
        self.flatten = nn.Flatten()
        self.f5 = nn.Sequential(nn.Linear(S4_FEATURES, 120, bias=bias), norm1d(120),
                                make_activation(activation), nn.Dropout(dropout))
        self.f6 = nn.Sequential(nn.Linear(120, 84, bias=bias), norm1d(84),
                                make_activation(activation), nn.Dropout(dropout))
        self.output = nn.Linear(84, num_classes)

    @classmethod
    def from_config(cls, config: ModelConfig) -> "LeNet5":
        return cls(activation=config.activation, pool=config.pool, dropout=config.dropout,
                   batchnorm=config.batchnorm, num_classes=config.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.c1(images)  # (N, 6, 28, 28)
        x = self.s2(x)  # (N, 6, 14, 14)
        x = self.c3(x)  # (N, 16, 10, 10)
        x = self.s4(x)  # (N, 16, 5, 5)
        x = self.flatten(x)  # (N, 400)
        x = self.f5(x)  # (N, 120)
        x = self.f6(x)  # (N, 84)
        return self.output(x)  # (N, 10) logits


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
