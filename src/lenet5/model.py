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
No I/O here; saving and loading live in ``weights.py``. The network as the 1998 paper
published it lives beside this one in ``model1998.py``; :func:`build_model` picks by
``ModelConfig.arch``, and every consumer builds through it.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .model1998 import INPUT_SIZE as INPUT_SIZE_1998
from .model1998 import LeNet5_1998

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

    input_size = IMAGE_SIZE  # C1 pads by 2, so the 28x28 digit goes in as it is
    stages = ("c1", "s2", "c3", "s4", "flatten", "f5", "f6", "output")

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


def build_model(config: ModelConfig) -> nn.Module:
    """The network ``config.arch`` names: the lab's LeNet5 or the 1998 paper's."""
    if config.arch == "lenet5-1998":
        return LeNet5_1998()
    return LeNet5.from_config(config)


def describe_model(config: ModelConfig) -> str:
    """One line naming the network, for logs and reports."""
    if config.arch == "lenet5-1998":
        return "LeNet-5 as published in 1998 (scaled tanh, trainable subsampling, Table I C3, RBF output)"
    parts = [f"activation {config.activation}", f"{config.pool} pool"]
    if config.dropout:
        parts.append(f"dropout {config.dropout}")
    if config.batchnorm:
        parts.append("batchnorm")
    return f"LeNet-5 ({', '.join(parts)})"


def input_size(config: ModelConfig) -> int:
    """The square input side the network expects: 28 for the lab, 32 for the 1998 net."""
    return INPUT_SIZE_1998 if config.arch == "lenet5-1998" else IMAGE_SIZE


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters; weights a connection table masks off do not count."""
    stored = sum(p.numel() for p in model.parameters() if p.requires_grad)
    fixed = sum(m.fixed_weights() for m in model.modules() if hasattr(m, "fixed_weights"))
    return stored - fixed
