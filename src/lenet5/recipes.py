"""Named presets of :class:`TrainConfig`: ``lenet5 train --recipe NAME``.

A recipe is only a set of overrides on the defaults, so explicit flags still win over it and
the run's ``config.json`` records the final values. Each recipe carries the figures it was
measured at, which ``lenet5 train --list-recipes`` prints.
"""

from __future__ import annotations

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


RECIPES: dict[str, Recipe] = {recipe.name: recipe for recipe in (
    Recipe("lab", "the lab handout's network: tanh, max pooling, [-1,1], AdamW + one-cycle, 15 epochs",
           measured="99.13% test accuracy, 75 s of training (2 cores)"),
)}
DEFAULT_RECIPE = "lab"


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; an unknown name is one error line listing the known ones."""
    if name not in RECIPES:
        raise Lenet5Error(f"unknown recipe {name!r}: choose from {', '.join(RECIPES)}")
    return RECIPES[name]


def recipe_config(name: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The defaults, then the recipe's overrides, then the user's (explicit flags win)."""
    config = apply_overrides(TrainConfig(), get_recipe(name).overrides)
    return apply_overrides(config, overrides or {})


def format_recipes() -> str:
    """One block per recipe, for ``--list-recipes``."""
    return "\n".join(f"{r.name}\n  {r.description}\n  measured: {r.measured}" for r in RECIPES.values())
