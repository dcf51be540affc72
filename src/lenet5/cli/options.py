"""Flags shared by several subcommands, generated from the config dataclasses.

The dataclass is the single source of defaults: each field becomes ``--field-name`` with
the field's default, so the CLI and the library cannot disagree.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from ..config import CHOICES, ModelConfig, TrainConfig, field_type

HELP = {
    "arch": "lab: the lab's LeNet-5; lenet5-1998: the network as published (docs/paper1998.md)",
    "activation": "nonlinearity after each conv and hidden linear layer",
    "pool": "subsampling in S2 and S4",
    "dropout": "dropout after F5 and F6 (makes train/eval mode matter)",
    "batchnorm": "batchnorm after each conv and hidden linear layer",
    "data_dir": "folder of MNIST-format IDX files (default: the bundled MNIST)",
    "normalization": "pixel normalisation; zscore uses the training split's mean and std; lecun1998 maps "
                     "white to -0.1 and black to 1.175",
    "val_size": "images held out of the training set for early stopping",
    "train_subset": "train on only the first N training images (quick runs)",
    "scale_lr": "linear scaling rule: lr x batch-size x accumulate / base-batch-size",
    "accumulate": "batches whose gradients are summed before each optimiser step",
    "sdlm_mu": "optimizer sdlm: mu in each parameter's step lr / (mu + h_kk); bounds the step at lr / mu",
    "patience": "epochs without val-loss improvement before stopping (0: never stop)",
    "min_delta": "smallest val-loss decrease that counts as improvement",
    "step_size": "epochs between lr decays (schedule=step)",
    "gamma": "lr decay factor (schedule=step)",
    "threads": "CPU threads for torch (default: torch's choice)",
    "seed": "same seed, same weights (bitwise on CPU)",
    "label_smoothing": "spread this share of each training target over all classes",
    "augment": "distort training images on the fly (affine; elastic adds Simard's field to it)",
    "rotation": "augmentation: max rotation, degrees",
    "scale": "augmentation: max relative scale change (0.1: x0.9 to x1.1)",
    "translation": "augmentation: max shift, pixels",
    "shear": "augmentation: max horizontal shear, degrees",
    "elastic_alpha": "augment=elastic: field strength alpha, pixels (Simard 2003: 34)",
    "elastic_sigma": "augment=elastic: field smoothness sigma, pixels (Simard 2003: 4)",
    "clean_epochs": "the last N epochs train on undistorted images",
}
SKIP = {"num_classes"}


def add_config_arguments(parser: argparse.ArgumentParser, only: set[str] | None = None) -> None:
    """Add one flag per config field (or per field in ``only``), defaulting to None.

    None means "not given", so :func:`overrides_from_args` can tell an explicit flag from a
    default, which ``--resume`` and ``compare`` need.
    """
    for cls in (ModelConfig, TrainConfig):
        hints = typing.get_type_hints(cls)
        defaults = cls()
        for field in dataclasses.fields(cls):
            if field.name in SKIP or field.name == "model" or (only and field.name not in only):
                continue
            flag = "--" + field.name.replace("_", "-")
            default = getattr(defaults, field.name)
            help_text = f"{HELP.get(field.name, field.name.replace('_', ' '))} (default: {default})"
            kind = field_type(hints[field.name])
            if kind is bool:
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            elif field.name == "betas":
                parser.add_argument(flag, type=float, nargs=2, default=None, metavar=("B1", "B2"), help=help_text)
            else:
                parser.add_argument(flag, type=kind, default=None, choices=CHOICES.get(field.name),
                                    help=help_text)


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields the user set explicitly, as a nested dict."""
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    overrides: dict[str, Any] = {"model": {}}
    for field in dataclasses.fields(ModelConfig) + dataclasses.fields(TrainConfig):
        value = getattr(args, field.name, None)
        if value is None or field.name == "model":
            continue
        target = overrides["model"] if field.name in model_fields else overrides
        target[field.name] = tuple(value) if field.name == "betas" else value
    return overrides


def add_weights_argument(parser: argparse.ArgumentParser, *, pretrained: bool = False) -> None:
    """``--weights``; with ``pretrained`` the command falls back to the weights shipped with lenet5."""
    fallback = ", else the pretrained lab weights shipped with lenet5" if pretrained else ""
    parser.add_argument("--weights", default=None, metavar="RUN_OR_FILE",
                        help=f"a run folder or a .safetensors file (default: the newest run in runs/train{fallback})")


def flags_from_overrides(overrides: dict[str, Any]) -> list[str]:
    """The command-line flags that :func:`overrides_from_args` turns back into ``overrides``.

    ``lenet5 train --nproc N`` hands them to the processes it launches.
    """
    flat = {**overrides.get("model", {}), **{k: v for k, v in overrides.items() if k != "model"}}
    flags: list[str] = []
    for name, value in flat.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, (tuple, list)):
            flags += [flag, *(repr(v) for v in value)]
        else:
            flags += [flag, repr(value) if isinstance(value, float) else str(value)]
    return flags
