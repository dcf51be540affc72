"""Recipes: they resolve to valid LeNet-5 configs, flags override them, unknown names fail cleanly."""

import json

import pytest

from lenet5.cli import main
from lenet5.config import TrainConfig
from lenet5.errors import Lenet5Error
from lenet5.model import LeNet5
from lenet5.recipes import DEFAULT_RECIPE, RECIPES, get_recipe, recipe_config


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_is_a_valid_config_of_the_same_network(name):
    config = recipe_config(name)
    config.validate()
    # LeNet-5's topology and layer sizes are fixed: only training choices may differ.
    model = LeNet5.from_config(config.model)
    shapes = [tuple(m.weight.shape) for m in (model.c1[0], model.c3[0], model.f5[0], model.f6[0], model.output)]
    assert shapes == [(6, 1, 5, 5), (16, 6, 5, 5), (120, 400), (84, 120), (10, 84)]
    assert get_recipe(name).measured != "not measured yet", "a recipe ships with the figures it measured"


def test_lab_is_the_default_and_changes_nothing():
    assert DEFAULT_RECIPE == "lab"
    assert recipe_config("lab") == TrainConfig()


def test_flags_override_a_recipe_and_keep_the_rest():
    speedrun = recipe_config("speedrun")
    config = recipe_config("speedrun", {"epochs": 1, "model": {"activation": "tanh"}})
    assert config.epochs == 1 and config.model.activation == "tanh"
    assert config.model.batchnorm == speedrun.model.batchnorm and config.batch_size == speedrun.batch_size


def test_best_recipe_augments():
    assert recipe_config("best").augment != "none"


def test_unknown_recipe_is_one_line_that_lists_the_recipes(tmp_path, capsys):
    with pytest.raises(Lenet5Error, match="unknown recipe 'fastest'"):
        get_recipe("fastest")
    assert main(["train", "--recipe", "fastest", "--project", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(name in err for name in RECIPES)
    assert list(tmp_path.iterdir()) == []


def test_config_json_records_the_recipe_with_the_flags_applied(tmp_path):
    args = ["train", "--recipe", "best", "--epochs", "1", "--train-subset", "300", "--val-size", "200",
            "--threads", "1", "--project", str(tmp_path), "--name", "run"]
    assert main(args) == 0
    saved = TrainConfig.from_dict(json.loads((tmp_path / "run" / "config.json").read_text()))
    expected = recipe_config("best", {"epochs": 1, "train_subset": 300, "val_size": 200, "threads": 1})
    assert saved == expected
    assert saved.augment == "affine" and saved.model.batchnorm


def test_list_recipes_prints_each_with_its_figures(capsys):
    assert main(["train", "--list-recipes"]) == 0
    out = capsys.readouterr().out
    for recipe in RECIPES.values():
        assert recipe.name in out and recipe.measured in out
