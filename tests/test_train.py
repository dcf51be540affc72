"""The training loop: determinism, early stopping, resume, divergence, accumulation."""

import csv
import json
from dataclasses import replace

import pytest
import torch
from conftest import quick_config
from safetensors.torch import load_file

from lenet5.config import ModelConfig
from lenet5.data.mnist import load_splits
from lenet5.errors import NonFiniteLossError
from lenet5.inference import evaluate
from lenet5.train import fit
from lenet5.weights import load_model


def quiet(_: str) -> None:
    pass


def weights(path):
    return load_file(str(path))


def test_same_seed_gives_bitwise_identical_weights(tmp_path):
    config = quick_config(epochs=1, train_subset=2000, model=ModelConfig(dropout=0.2))
    runs = {name: tmp_path / name for name in ("a", "b", "other_seed")}
    for name, run_dir in runs.items():
        run_dir.mkdir()
        fit(config if name != "other_seed" else replace(config, seed=1), run_dir, log=quiet)
    first, second, other = (weights(run_dir / "last.safetensors") for run_dir in runs.values())
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert not torch.equal(first["c1.0.weight"], other["c1.0.weight"])


def test_early_stopping_stops_and_restores_the_best_epoch(tmp_path):
    # A min_delta no epoch can beat makes epoch 1 the best for sure; patience 2 stops at epoch 3.
    config = quick_config(epochs=6, train_subset=2000, patience=2, min_delta=10.0)
    summary = fit(config, tmp_path, log=quiet)
    assert summary["stopped_early"] and summary["epochs_run"] == 3 and summary["best_epoch"] == 1
    history = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(row["epoch"]) for row in history] == [1, 2, 3]
    # The restored weights are epoch 1's: they reproduce epoch 1's validation loss, not epoch 3's.
    loaded = load_model(tmp_path)
    splits = load_splits(None, config.val_size, config.train_subset)
    val_loss, _ = evaluate(loaded.model, splits.val_images, splits.val_labels, loaded.normalization)
    assert val_loss == pytest.approx(float(history[0]["val_loss"]), rel=1e-5)
    assert val_loss != pytest.approx(float(history[2]["val_loss"]), rel=1e-5)
    assert loaded.extra["epoch"] == 1


def test_resume_equals_an_uninterrupted_run(tmp_path):
    config = quick_config(epochs=3, train_subset=2000, model=ModelConfig(dropout=0.3))
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    whole.mkdir()
    resumed.mkdir()
    fit(config, whole, log=quiet)

    def kill_after_epoch_two(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(config, resumed, on_epoch_end=kill_after_epoch_two, log=quiet)
    assert not (resumed / "summary.json").exists()
    fit(config, resumed, resume=True, log=quiet)
    for name in ("best.safetensors", "last.safetensors"):
        a, b = weights(whole / name), weights(resumed / name)
        assert all(torch.equal(a[key], b[key]) for key in a), name
    rows = [list(csv.DictReader(open(folder / "metrics.csv"))) for folder in (whole, resumed)]
    drop_time = [[{k: v for k, v in row.items() if k != "seconds"} for row in run] for run in rows]
    assert drop_time[0] == drop_time[1]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    # Epoch 1 trains normally; then the step schedule multiplies lr by 1e12 and ReLU on raw
    # 0..255 pixels overflows within a few batches.
    config = quick_config(epochs=3, train_subset=2000, optimizer="sgd", lr=0.05, schedule="step", step_size=1,
                          gamma=1e12, normalization="none", model=ModelConfig(activation="relu"))
    with pytest.raises(NonFiniteLossError, match=r"epoch 2.*nan|epoch 2.*inf"):
        fit(config, tmp_path, log=quiet)
    last = weights(tmp_path / "last.safetensors")
    assert all(torch.isfinite(t).all() for t in last.values())
    assert load_model(tmp_path / "last.safetensors").extra["epoch"] == 1
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "diverged"
    assert not list(tmp_path.glob(".*.tmp"))


def test_gradient_accumulation_matches_a_larger_batch(tmp_path):
    # Two accumulated batches of 32 make the same SGD step as one batch of 64, given the same
    # shuffle order; without batchnorm or dropout the per-sample gradients are identical.
    big, accumulated = tmp_path / "big", tmp_path / "acc"
    big.mkdir()
    accumulated.mkdir()
    common = dict(epochs=1, train_subset=512, optimizer="sgd", schedule="none", lr=0.05, val_size=500)
    fit(quick_config(batch_size=64, **common), big, log=quiet)
    # The shuffle order is one permutation split into batches, so 2 x 32 covers what 1 x 64 does.
    fit(quick_config(batch_size=32, accumulate=2, **common), accumulated, log=quiet)
    a, b = weights(big / "last.safetensors"), weights(accumulated / "last.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("optimizer, schedule", [("sgd", "step"), ("adam", "cosine"), ("adamw", "none")])
def test_optimisers_and_schedules_learn(tmp_path, optimizer, schedule):
    config = quick_config(epochs=1, train_subset=3000, optimizer=optimizer, schedule=schedule,
                          lr=0.05 if optimizer == "sgd" else 2e-3, nesterov=optimizer == "sgd")
    summary = fit(config, tmp_path, log=quiet)
    assert summary["test_accuracy"] > 0.8
