"""Every training choice the LeNet-5 lab teaches, as one dataclass.

`TrainConfig` is the single source of defaults: the CLI builds its flags from it, a run
folder stores it as ``config.json``, and saved weights carry it so a model can rebuild
itself. The library never sees argparse.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from typing import Any

from .errors import Lenet5Error

ACTIVATIONS = ("tanh", "relu", "leaky_relu", "gelu", "sigmoid")
POOLS = ("max", "avg")
NORMALIZATIONS = ("[-1,1]", "[0,1]", "zscore", "none")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "step", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda", "mps")
# Seeds are 32-bit, like numpy's: each epoch's seed (seed x stride + epoch, see train.py) then
# stays far inside the 64-bit range torch.manual_seed accepts.
MAX_SEED = 2**32 - 1
# torch hands the count to OpenMP, which crashes (a segfault, not an error) near 100,000 threads.
MAX_THREADS = 256

# Which option takes which fixed set of values; checked in one place.
CHOICES: dict[str, tuple[str, ...]] = {
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

    activation: str = "tanh"
    pool: str = "max"
    dropout: float = 0.0
    batchnorm: bool = False
    num_classes: int = 10

    def validate(self) -> None:
        """Raise one line naming the flag for a value that cannot build the network."""
        check_types(self)
        for name in ("activation", "pool"):
            if getattr(self, name) not in CHOICES[name]:
                raise Lenet5Error(f"invalid {flag(name)} {getattr(self, name)!r}: "
                                  f"choose from {', '.join(CHOICES[name])}")
        in_range("dropout", self.dropout, 0.0, 1.0)
        at_least("num_classes", self.num_classes, 2)


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
    # early stopping on validation loss
    patience: int = 5
    min_delta: float = 0.0
    # runtime
    seed: int = 0
    threads: int | None = None
    device: str = "auto"

    def validate(self) -> None:
        """Raise one line naming the flag and its allowed range for any value torch or the loop would refuse.

        The ranges mirror torch's optimisers and schedulers, so a bad option fails here, before
        anything is written, instead of as a traceback (or a silently wrong run) later.
        """
        check_types(self, skip={"model"})
        self.model.validate()
        for name, allowed in CHOICES.items():
            if hasattr(self, name) and getattr(self, name) not in allowed:
                raise Lenet5Error(f"invalid {flag(name)} {getattr(self, name)!r}: choose from {', '.join(allowed)}")
        for name in ("epochs", "batch_size", "accumulate", "base_batch_size", "step_size"):
            at_least(name, getattr(self, name), 1)
        at_least("val_size", self.val_size, 0)
        at_least("patience", self.patience, 0)
        if self.train_subset is not None:
            at_least("train_subset", self.train_subset, 1)
        if self.threads is not None:
            check_threads(self.threads)
        if not 0 <= self.seed <= MAX_SEED:
            raise Lenet5Error(f"invalid {flag('seed')} {self.seed}: must be in 0..{MAX_SEED}")
        in_range("lr", self.lr, 0.0, math.inf, low_open=True)
        in_range("momentum", self.momentum, 0.0, 1.0)
        in_range("weight_decay", self.weight_decay, 0.0, math.inf)
        in_range("eps", self.eps, 0.0, math.inf)
        in_range("gamma", self.gamma, 0.0, math.inf, low_open=True)  # > 1 grows the lr; allowed
        in_range("min_delta", self.min_delta, 0.0, math.inf)
        if len(self.betas) != 2:
            raise Lenet5Error(f"invalid {flag('betas')} {self.betas}: give two values B1 B2")
        for beta in self.betas:
            in_range("betas", beta, 0.0, 1.0)
        if self.nesterov and self.optimizer != "sgd":
            raise Lenet5Error(f"{flag('nesterov')} applies only to --optimizer sgd (got {self.optimizer})")
        if self.nesterov and self.momentum == 0:
            raise Lenet5Error(f"{flag('nesterov')} needs a {flag('momentum')} above 0")

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
        """Rebuild a config, ignoring keys a newer or older version may not know.

        The values are not checked here (call :meth:`validate`), but a shape no config can
        have (not an object, ``model`` not an object) is a :class:`Lenet5Error` already.
        """
        if not isinstance(values, dict) or not isinstance(values.get("model", {}), dict):
            raise Lenet5Error(f"a config must be a JSON object with a 'model' object, not {type(values).__name__}")
        values = dict(values)
        model = ModelConfig(**_known(ModelConfig, values.pop("model", {})))
        known = _known(cls, values)
        if isinstance(known.get("betas"), list):
            known["betas"] = tuple(known["betas"])
        return cls(model=model, **known)


def flag(name: str) -> str:
    """The command-line flag of a config field: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def at_least(name: str, value: int, low: int) -> None:
    if value < low:
        raise Lenet5Error(f"invalid {flag(name)} {value}: must be at least {low}")


def check_threads(threads: int, name: str = "threads") -> None:
    """CPU thread counts, for training and for the commands that take ``--threads`` themselves."""
    if not 1 <= threads <= MAX_THREADS:
        raise Lenet5Error(f"invalid {flag(name)} {threads}: must be in 1..{MAX_THREADS}")


def in_range(name: str, value: float, low: float, high: float, *, low_open: bool = False,
             high_open: bool = True) -> None:
    """Insist on ``low <= value < high`` (bounds open or closed as asked); NaN never passes."""
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (above and below and math.isfinite(value)):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise Lenet5Error(f"invalid {flag(name)} {value}: must be a finite number in {interval}")


def check_types(config: Any, skip: frozenset[str] | set[str] = frozenset()) -> None:
    """Refuse a value of the wrong type (a hand-edited config.json, broken weights metadata)."""
    hints = typing.get_type_hints(type(config))
    for item in dataclasses.fields(config):
        value, hint = getattr(config, item.name), hints[item.name]
        if item.name in skip or (value is None and type(None) in typing.get_args(hint)):
            continue
        kind = tuple if typing.get_origin(hint) is tuple else field_type(hint)
        if kind is tuple:  # betas: a pair of numbers
            ok = isinstance(value, tuple) and all(_is_number(v) for v in value)
        elif kind is float:
            ok = _is_number(value)
        else:  # bool is a subclass of int, but True is not an epoch count
            ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if not ok:
            raise Lenet5Error(f"invalid {flag(item.name)} {value!r}: must be {_TYPE_NAMES.get(kind, kind.__name__)}")


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               tuple: "a pair of numbers"}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
