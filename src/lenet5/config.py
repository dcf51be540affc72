"""Every training choice the LeNet-5 lab teaches, as one dataclass.

`TrainConfig` is the single source of defaults: the CLI builds its flags from it, a run
folder stores it as ``config.json``, and saved weights carry it so a model can rebuild
itself. The library never sees argparse.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from typing import Any

from .errors import Lenet5Error

ARCHS = ("lab", "lenet5-1998")  # model.py's lab network, model1998.py's network as published
ACTIVATIONS = ("tanh", "relu", "leaky_relu", "gelu", "sigmoid")
POOLS = ("max", "avg")
NORMALIZATIONS = ("[-1,1]", "[0,1]", "zscore", "none", "lecun1998")
OPTIMIZERS = ("sgd", "adam", "adamw", "sdlm")
SCHEDULES = ("none", "step", "cosine", "onecycle", "paper1998")
DEVICES = ("auto", "cpu", "cuda", "mps")

# Which option takes which fixed set of values; checked in one place.
CHOICES: dict[str, tuple[str, ...]] = {
    "arch": ARCHS,
    "activation": ACTIVATIONS,
    "pool": POOLS,
    "normalization": NORMALIZATIONS,
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
    "device": DEVICES,
}


@dataclass
class ModelConfig:
    """What builds the network; stored inside every weights file."""

    arch: str = "lab"  # lenet5-1998 fixes its own activation and subsampling: the four below must stay default
    activation: str = "tanh"
    pool: str = "max"
    dropout: float = 0.0
    batchnorm: bool = False
    num_classes: int = 10


# The lab network's switches; the 1998 network has no such choices.
LAB_ONLY = ("activation", "pool", "dropout", "batchnorm")


@dataclass
class TrainConfig:
    """A whole training run. Defaults reach >= 99% MNIST test accuracy on 2 CPU cores."""

    model: ModelConfig = field(default_factory=ModelConfig)
    # data
    data_dir: str | None = None  # None: the MNIST bundled inside the package
    normalization: str = "[-1,1]"  # the handout: [-1, 1] suits tanh
    val_size: int = 5000
    train_subset: int | None = None  # use only the first N training images (quick runs)
    # optimisation
    epochs: int = 15
    batch_size: int = 128
    optimizer: str = "adamw"
    lr: float = 2e-3
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    schedule: str = "onecycle"
    step_size: int = 5  # epochs between decays, for schedule=step
    gamma: float = 0.1
    scale_lr: bool = False  # linear scaling rule: lr * batch_size / base_batch_size
    base_batch_size: int = 128
    accumulate: int = 1  # gradient accumulation steps per optimiser update
    sdlm_mu: float = 0.02  # optimizer=sdlm: each step is lr / (sdlm_mu + h_kk); the paper's mu
    # early stopping on validation loss
    patience: int = 5
    min_delta: float = 0.0
    # runtime
    seed: int = 0
    threads: int | None = None
    device: str = "auto"

    def validate(self) -> None:
        """Raise a one-line error for any value outside its allowed set or range."""
        for name, allowed in CHOICES.items():
            owner = self.model if hasattr(self.model, name) else self
            value = getattr(owner, name)
            if value not in allowed:
                raise Lenet5Error(f"invalid {name} {value!r}: choose from {', '.join(allowed)}")
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "accumulate": self.accumulate,
                    "base_batch_size": self.base_batch_size, "step_size": self.step_size}
        for name, value in positive.items():
            if value < 1:
                raise Lenet5Error(f"invalid {name} {value}: must be at least 1")
        if not self.lr > 0:
            raise Lenet5Error(f"invalid lr {self.lr}: must be positive")
        if not 0.0 <= self.model.dropout < 1.0:
            raise Lenet5Error(f"invalid dropout {self.model.dropout}: must be in [0, 1)")
        if self.val_size < 0:
            raise Lenet5Error(f"invalid val_size {self.val_size}: must be >= 0")
        if self.train_subset is not None and self.train_subset < 1:
            raise Lenet5Error(f"invalid train_subset {self.train_subset}: must be at least 1")
        if self.optimizer == "sdlm" and self.model.arch != "lenet5-1998":
            raise Lenet5Error("optimizer sdlm back-propagates curvature through the 1998 network only; "
                              "add --arch lenet5-1998")
        if self.model.arch != "lab":
            lab_only = {name: value for name, value in vars(self.model).items()
                        if name in LAB_ONLY and value != getattr(ModelConfig(), name)}
            if lab_only:
                names = ", ".join(f"--{name}" for name in lab_only)
                raise Lenet5Error(f"arch {self.model.arch} has its own squashing function and subsampling; "
                                  f"drop {names}")

    @property
    def effective_lr(self) -> float:
        """The learning rate after the linear scaling rule, if it is switched on."""
        if self.scale_lr:
            return self.lr * self.batch_size * self.accumulate / self.base_batch_size
        return self.lr

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """Rebuild a config, ignoring keys a newer or older version may not know."""
        values = dict(values)
        model = ModelConfig(**_known(ModelConfig, values.pop("model", {})))
        known = _known(cls, values)
        if "betas" in known:
            known["betas"] = tuple(known["betas"])
        return cls(model=model, **known)


def _known(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in values.items() if k in names}


def field_type(hint: Any) -> type:
    """The scalar type behind ``int``, ``float | None`` and the like."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def apply_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """A copy of ``config`` with ``overrides`` (``{field: value, "model": {field: value}}``) applied."""
    merged = config.to_dict()
    merged["model"].update(overrides.get("model", {}))
    merged.update({k: v for k, v in overrides.items() if k != "model"})
    return TrainConfig.from_dict(merged)
