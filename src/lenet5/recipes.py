"""Named presets of :class:`TrainConfig`: ``lenet5 train --recipe NAME``.

A recipe is only a set of overrides on the defaults, so explicit flags still win over it and
the run's ``config.json`` records the final values. Each recipe carries the figures it was
measured at, which ``lenet5 train --list-recipes`` prints.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .config import TrainConfig, apply_overrides
from .errors import Lenet5Error


@dataclass(frozen=True)
class Recipe:
    """A preset: what it is for, the overrides it applies, and what it measured."""

    name: str
    description: str
    overrides: dict[str, Any] = field(default_factory=dict)
    measured: str = "not measured yet"


# Both modern recipes keep LeNet-5's layers and sizes; they change how it is trained. Batchnorm
# and ReLU let a large one-cycle learning rate work from the first batch; all 60,000 training
# images are used (val_size 0), since one-cycle ends where it ends and nothing is selected early.
MODERN_NETWORK: dict[str, Any] = {"model": {"activation": "relu", "batchnorm": True}, "val_size": 0,
                                  "patience": 0, "label_smoothing": 0.1}

# LeCun et al. 1998 as published: its network, input mapping, criterion, optimiser and eta
# schedule, 20 passes over all 60,000 training images (no validation split, no early stopping).
PAPER1998: dict[str, Any] = {
    "model": {"arch": "lenet5-1998"}, "normalization": "lecun1998", "optimizer": "sdlm", "lr": 0.0005,
    "schedule": "paper1998", "epochs": 20, "batch_size": 4, "val_size": 0, "patience": 0, "weight_decay": 0.0,
}

RECIPES: dict[str, Recipe] = {recipe.name: recipe for recipe in (
    Recipe("lab", "the lab handout's network: tanh, max pooling, [-1,1], AdamW + one-cycle, 15 epochs",
           measured="99.13% test accuracy; 99% at epoch 10 after 36 s of training, 2 idle threads "
                    "(benchmarks/train_speed.py --threads 2)"),
    Recipe("speedrun", "the fastest way to 99%: ReLU + batchnorm, batch 256, AdamW one-cycle to lr 1.5e-2, "
           "label smoothing 0.1, 2 epochs on all 60,000 images",
           {**MODERN_NETWORK, "epochs": 2, "batch_size": 256, "lr": 1.5e-2},
           measured="99.21% +- 0.05% test accuracy over 5 seeds (worst 99.17%), 99% at epoch 2 on every seed; "
                    "7.2 s of training on 2 idle threads, 5.7x faster to 99% than the per-sample reference "
                    "(benchmarks/train_speed.py --arms speedrun reference; --seeds 5 for the accuracies)"),
    Recipe("best", "the highest accuracy: ReLU + batchnorm, AdamW one-cycle, label smoothing 0.1, "
           "random affine distortions, the last 2 of 15 epochs undistorted",
           {**MODERN_NETWORK, "epochs": 15, "batch_size": 128, "lr": 3e-3, "augment": "affine",
            "clean_epochs": 2},
           measured="99.58% +- 0.03% test accuracy over 3 seeds on 1 thread (worst 99.56%); seed 0 on 2 "
                    "threads: 99.51%, 99% at epoch 6 after 24 s (benchmarks/train_speed.py --arms best --seeds 3)"),
    Recipe("paper1998", "LeNet-5 as published in 1998: RBF output, MAP criterion, SDLM, the paper's eta "
           "schedule, 20 passes (docs/paper1998.md)", PAPER1998,
           measured="pass 1 healthy (3.15% test error at batch 1), then diverges in pass 2 on 2 cores; "
                    "--lr 1e-4 stays stable: 1.08% after 20 passes, seed 0 (docs/paper1998.md)"),
    # The paper's distortions are translation, scaling, squeezing and shearing: no rotation.
    Recipe("paper1998-distort", "paper1998 on randomly affine-distorted training images (the paper's 0.8% run)", {**PAPER1998, "augment": "affine", "rotation": 0.0},
           measured="diverges in pass 2 like paper1998; with --lr 1e-4: 1.04% after 20 passes, seed 0"),
)}
DEFAULT_RECIPE = "lab"


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; an unknown name is one error line listing the known ones."""
    if name not in RECIPES:
        raise Lenet5Error(f"unknown recipe {name!r}: choose from {', '.join(RECIPES)}")
    return RECIPES[name]


def recipe_config(name: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The defaults, then the recipe's overrides, then the user's (explicit flags win)."""
    recipe = get_recipe(name)
    missing = sorted(set(recipe.overrides) - {f.name for f in dataclasses.fields(TrainConfig)})
    if missing:  # apply_overrides would drop them silently and train something else
        raise Lenet5Error(f"recipe {name!r} sets {', '.join(missing)}, which this version of lenet5 has no option for")
    config = apply_overrides(TrainConfig(), recipe.overrides)
    return apply_overrides(config, overrides or {})


def format_recipes() -> str:
    """One block per recipe, for ``--list-recipes``."""
    return "\n".join(f"{r.name}\n  {r.description}\n  measured: {r.measured}" for r in RECIPES.values())
