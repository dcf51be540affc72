"""What a comparison runs: the built-in studies (one per handout claim) and custom grids.

A :class:`Study` is a base set of training options plus a list of variants, each a few
options on top of the base. Options are :class:`TrainConfig` / :class:`ModelConfig` field
names; values are parsed by the field's type, so ``--grid lr=0.01,0.1`` and the built-in
studies go through the same path as ``lenet5 train --lr``.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import typing
from dataclasses import dataclass, field
from typing import Any

from ..config import ModelConfig, TrainConfig, apply_overrides, field_type
from ..errors import Lenet5Error

MODEL_FIELDS = {f.name for f in dataclasses.fields(ModelConfig)}
TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)} - {"model"}
# The seed is a grid dimension of its own (--seeds); betas is a pair, not a scalar.
NOT_GRIDDABLE = {"seed", "betas", "num_classes"}
TRUE_WORDS, FALSE_WORDS = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}

# The handout's plain setup: SGD with momentum at a constant rate, so differences in how fast
# a variant learns are not smoothed over by a schedule. 5 epochs on the full 55k split let slow
# learners catch up where they will (2 only showed who starts fast) while a whole study still
# takes minutes on a laptop CPU.
PLAIN_SGD: dict[str, Any] = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "schedule": "none",
                             "weight_decay": 0.0, "epochs": 5, "batch_size": 128, "patience": 0}


@dataclass(frozen=True)
class Variant:
    """One arm of a study: a label and the options it changes."""

    label: str
    options: dict[str, Any]


@dataclass(frozen=True)
class Claim:
    """A handout claim as a comparison: ``winner`` should beat ``loser`` on ``metric``.

    ``kind`` selects how :mod:`lenet5.compare.verdict` judges it: ``pair`` (two variants on
    one metric), ``diverges`` (the variant's loss blows up), ``eval_mode`` (train- vs
    eval-mode test accuracy within each variant) or ``early_stopping``.
    """

    text: str
    kind: str = "pair"
    metric: str = "test_accuracy"
    winner: str = ""
    loser: str = ""


@dataclass(frozen=True)
class Study:
    """A controlled experiment: every variant trains from the same base, over several seeds."""

    name: str
    question: str
    base: dict[str, Any]
    variants: tuple[Variant, ...]
    claims: tuple[Claim, ...] = ()
    extras: tuple[str, ...] = field(default=())  # extra measurements per trial (see runner)

    def labels(self) -> list[str]:
        return [v.label for v in self.variants]

    def variant(self, label: str) -> Variant:
        for variant in self.variants:
            if variant.label == label:
                return variant
        raise Lenet5Error(f"study {self.name!r} has no variant {label!r}")

    def config(self, label: str, seed: int, overrides: dict[str, Any] | None = None) -> TrainConfig:
        """The TrainConfig of one trial: defaults, then the study base, the variant, ``overrides``, seed."""
        options = {**self.base, **self.variant(label).options, **(overrides or {}), "seed": seed}
        return build_config(options)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def build_config(options: dict[str, Any]) -> TrainConfig:
    """A validated TrainConfig from flat field names (model fields go into ``model``)."""
    nested: dict[str, Any] = {"model": {}}
    for name, value in options.items():
        (nested["model"] if name in MODEL_FIELDS else nested)[name] = value
    config = apply_overrides(TrainConfig(), nested)
    config.validate()
    return config


def _study(name: str, question: str, base: dict[str, Any], variants: list[tuple[str, dict[str, Any]]],
           claims: list[Claim], extras: tuple[str, ...] = ()) -> Study:
    return Study(name, question, {**PLAIN_SGD, **base}, tuple(Variant(l, o) for l, o in variants),
                 tuple(claims), extras)


BUILTIN: dict[str, Study] = {s.name: s for s in (
    _study("normalization", "Does [-1,1] input normalisation suit tanh better than [0,1] or raw pixels?",
           {"activation": "tanh"},
           [("[-1,1]", {"normalization": "[-1,1]"}), ("[0,1]", {"normalization": "[0,1]"}),
            ("raw 0-255", {"normalization": "none"})],
           [Claim("[-1,1] normalisation suits tanh (vs [0,1])", winner="[-1,1]", loser="[0,1]"),
            Claim("[-1,1] normalisation suits tanh (vs raw pixels)", winner="[-1,1]", loser="raw 0-255")]),
    _study("activation", "Does ReLU train faster than tanh?", {},
           [("tanh", {"activation": "tanh"}), ("relu", {"activation": "relu"})],
           [Claim("ReLU trains faster than tanh (val loss after epoch 1)", metric="val_loss_epoch1",
                  winner="relu", loser="tanh"),
            Claim("ReLU ends more accurate than tanh", winner="relu", loser="tanh")]),
    _study("pooling", "Does max pooling beat average pooling?", {},
           [("max", {"pool": "max"}), ("avg", {"pool": "avg"})],
           [Claim("max pooling beats average pooling", winner="max", loser="avg")]),
    _study("batch-size", "Do small batches generalise better, and do large ones need a larger lr?", {},
           [("32", {"batch_size": 32}), ("128", {"batch_size": 128}), ("512", {"batch_size": 512}),
            ("512 scaled lr", {"batch_size": 512, "scale_lr": True})],
           # At equal epochs batch 32 takes 16x the updates of 512: the second claim holds that
           # fixed by giving 512 the linearly scaled lr, so what is left is closer to generalisation.
           [Claim("small batches do better (32 vs 512, same lr and epochs)", winner="32", loser="512"),
            Claim("small batches do better even against 512 with the scaled lr", winner="32",
                  loser="512 scaled lr"),
            Claim("large batches need a larger lr (512: linear scaling rule on vs off)",
                  winner="512 scaled lr", loser="512")]),
    _study("optimizer", "Does Adam converge faster than SGD, and does momentum help SGD?", {},
           [("sgd", {"optimizer": "sgd", "momentum": 0.0}), ("sgd+momentum", {"optimizer": "sgd", "momentum": 0.9}),
            ("adam", {"optimizer": "adam", "lr": 1e-3})],
           [Claim("Adam converges faster than SGD with momentum (val loss after epoch 1)",
                  metric="val_loss_epoch1", winner="adam", loser="sgd+momentum"),
            Claim("momentum helps SGD (val loss after epoch 1)", metric="val_loss_epoch1",
                  winner="sgd+momentum", loser="sgd")]),
    _study("learning-rate", "Does a too-large lr diverge and a too-small one crawl?", {},
           [("lr 1e-4", {"lr": 1e-4}), ("lr 1e-2", {"lr": 1e-2}), ("lr 1.0", {"lr": 1.0})],
           [Claim("a learning rate too large diverges", kind="diverges", winner="lr 1.0"),
            Claim("a learning rate too small crawls (best val loss)", metric="best_val_loss",
                  winner="lr 1e-2", loser="lr 1e-4")]),
    _study("eval-mode", "Does forgetting model.eval() change test results with dropout or batchnorm?", {},
           [("dropout 0.5", {"dropout": 0.5}), ("batchnorm", {"batchnorm": True})],
           [Claim("forgetting model.eval() changes test results", kind="eval_mode")],
           extras=("train_mode_accuracy",)),
    # Val loss only turns up when the model can memorise: 500 images, 25 epochs, no dropout, and
    # ReLU with Adam (tanh's bounded logits make val loss level off rather than rise).
    _study("early-stopping", "Does early stopping find the epoch where validation loss turns up?",
           {"train_subset": 500, "val_size": 2000, "epochs": 25, "activation": "relu", "optimizer": "adam",
            "lr": 3e-3, "batch_size": 32},
           [("no stopping", {"patience": 0}), ("patience 5", {"patience": 5})],
           [Claim("early stopping finds the point where val loss turns up", kind="early_stopping",
                  winner="patience 5", loser="no stopping")],
           extras=("last_epoch_accuracy",)),
)}


def parse_value(name: str, text: str) -> Any:
    """Parse ``text`` as the type of config field ``name``; a one-line error if it cannot."""
    owner = ModelConfig if name in MODEL_FIELDS else TrainConfig
    hint = typing.get_type_hints(owner)[name]
    kind = field_type(hint)
    optional = type(None) in typing.get_args(hint)
    if optional and kind is not str and text.lower() == "none":
        return None
    try:
        if kind is bool:
            lowered = text.lower()
            if lowered not in TRUE_WORDS | FALSE_WORDS:
                raise ValueError
            return lowered in TRUE_WORDS
        return kind(text)
    except ValueError:
        raise Lenet5Error(f"--grid {name}: {text!r} is not a valid {kind.__name__}") from None


def field_name(key: str) -> str:
    """``batch-size`` or ``batch_size`` -> ``batch_size``, refusing unknown or fixed keys."""
    name = key.strip().replace("-", "_")
    if name in NOT_GRIDDABLE:
        hint = "; use --seeds" if name == "seed" else ""
        raise Lenet5Error(f"--grid {key}: cannot be varied in a grid{hint}")
    if name not in MODEL_FIELDS | TRAIN_FIELDS:
        raise Lenet5Error(f"--grid {key}: not a training option (see `lenet5 train --help`)")
    return name


def grid_study(items: list[str], name: str) -> Study:
    """A study over the Cartesian product of ``key=v1,v2`` items, on the default training config."""
    axes: list[tuple[str, list[Any]]] = []
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values.strip():
            raise Lenet5Error(f"--grid {item!r}: expected KEY=V1,V2,...")
        option = field_name(key)
        if option in dict(axes):
            raise Lenet5Error(f"--grid {key}: given twice")
        parsed = [parse_value(option, v.strip()) for v in _split_values(values)]
        if len(set(map(repr, parsed))) < len(parsed):  # two variants with one label would share a trial
            raise Lenet5Error(f"--grid {item!r}: a value is given twice")
        axes.append((option, parsed))
    variants = []
    for combo in itertools.product(*(values for _, values in axes)):
        options = dict(zip((k for k, _ in axes), combo))
        variants.append(Variant(" ".join(f"{k}={v}" for k, v in options.items()), options))
    return Study(name, "custom grid over " + ", ".join(k for k, _ in axes), {}, tuple(variants))


def _split_values(text: str) -> list[str]:
    """Split on commas, except inside brackets, so ``normalization=[-1,1],[0,1]`` works."""
    return [v for v in re.findall(r"(?:\[[^\]]*\]|[^,])+", text) if v.strip()]


def folder_name(label: str) -> str:
    """A label as a portable folder name: ``lr 1e-4`` -> ``lr_1e-4``."""
    return re.sub(r"[^A-Za-z0-9.=+-]+", "_", label).strip("_") or "variant"
