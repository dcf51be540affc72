"""SDLM against a hand computation, the MAP criterion against its formula, the paper's schedule,
and the paper1998 recipe end to end on a few real images."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from lenet5.config import TrainConfig
from lenet5.errors import Lenet5Error
from lenet5.losses import MAP_J, MAPLoss
from lenet5.model1998 import (
    SQUASH_AMPLITUDE,
    SQUASH_SLOPE,
    EuclideanRBF,
    LeNet5_1998,
    ScaledTanh,
)
from lenet5.recipes import recipe_config
from lenet5.sdlm import MU, SDLM, gauss_newton_diagonal
from lenet5.train import fit, paper1998_factor


def test_map_loss_is_equation_nine():
    logits = torch.tensor([[-3.0, -0.5, -7.0], [-2.0, -9.0, -1.5]])  # logits = -distances y
    labels = torch.tensor([1, 0])
    expected = sum(-float(logits[n, labels[n]]) + math.log(math.exp(-MAP_J) + sum(math.exp(v) for v in logits[n].tolist()))
                   for n in range(2)) / 2
    assert math.isclose(float(MAPLoss()(logits, labels)), expected, rel_tol=1e-6)


def test_paper1998_schedule_gives_the_papers_eta_per_pass():
    etas = [0.0005 * paper1998_factor(epoch) for epoch in range(20)]
    expected = [0.0005] * 2 + [0.0002] * 3 + [0.0001] * 3 + [0.00005] * 4 + [0.00001] * 8
    assert all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(etas, expected))


def _squash(a: float) -> tuple[float, float]:
    """f(a) and f'(a) for f = A tanh(S a)."""
    t = math.tanh(SQUASH_SLOPE * a)
    return SQUASH_AMPLITUDE * t, SQUASH_AMPLITUDE * SQUASH_SLOPE * (1 - t * t)


def test_one_sdlm_step_on_a_tiny_network_matches_a_hand_computation():
    # One squashed unit feeding a 1-d RBF with two centres (+1: class 0, -1: class 1).
    linear = nn.Linear(2, 1)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[0.3, -0.2]]))
        linear.bias.fill_(0.1)
    centres = [1.0, -1.0]
    model = nn.Sequential(linear, ScaledTanh(), EuclideanRBF(torch.tensor([[c] for c in centres])))
    inputs = torch.tensor([[1.0, 2.0], [-0.5, 1.5]])
    labels = torch.tensor([0, 1])
    lr, loss_fn = 0.01, MAPLoss()

    optimizer = SDLM(model.parameters(), lr=lr, samples_per_step=len(inputs))
    optimizer.estimate_curvature(model, inputs, labels, loss_fn)
    loss_fn(model(inputs), labels).backward()
    optimizer.step()

    # By hand: per sample, the exact d2E/dz2 at the RBF input z, times f'(a)^2 (Gauss-Newton).
    w, b = [0.3, -0.2], 0.1
    grad_w, grad_b, h_w, h_b = [0.0, 0.0], 0.0, [0.0, 0.0], 0.0
    for x, label in zip(inputs.tolist(), labels.tolist()):
        a = w[0] * x[0] + w[1] * x[1] + b
        z, slope = _squash(a)
        y = [(z - c) ** 2 for c in centres]
        partition = math.exp(-MAP_J) + sum(math.exp(-v) for v in y)
        p = [math.exp(-v) / partition for v in y]
        d_y = [(1.0 if i == label else 0.0) - p[i] for i in range(2)]  # dE/dy_i
        d_z = sum(d_y[i] * 2 * (z - centres[i]) for i in range(2))
        hess_y = [[p[i] * (i == k) - p[i] * p[k] for k in range(2)] for i in range(2)]
        d2_z = sum(d_y[i] * 2 for i in range(2)) + sum(
            2 * (z - centres[i]) * hess_y[i][k] * 2 * (z - centres[k]) for i in range(2) for k in range(2))
        d2_a = slope**2 * d2_z
        for k in range(2):
            grad_w[k] += slope * d_z * x[k] / 2  # the loss is the batch mean
            h_w[k] += x[k] ** 2 * d2_a / 2  # the curvature is the per-sample mean
        grad_b += slope * d_z / 2
        h_b += d2_a / 2
    steps = len(inputs) * lr  # samples_per_step x eta: each sample's own eta / (mu + h)
    expected_w = [w[k] - steps * grad_w[k] / (MU + h_w[k]) for k in range(2)]
    expected_b = b - steps * grad_b / (MU + h_b)
    torch.testing.assert_close(linear.weight.detach(), torch.tensor([expected_w]), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(linear.bias.detach(), torch.tensor([expected_b]), rtol=1e-5, atol=1e-7)


def test_curvature_of_shared_weights_sums_their_connections():
    # C1's bias is shared by all 28x28 positions of its map: its h is the sum of the units' d2E/da2.
    torch.manual_seed(0)
    model = LeNet5_1998()
    inputs, labels = torch.randn(3, 1, 32, 32), torch.tensor([1, 2, 3])
    curvature = gauss_newton_diagonal(model, inputs, labels, MAPLoss())
    assert set(curvature) == set(model.parameters())
    assert all(bool((h >= 0).all()) for h in curvature.values())
    masked = model.c3[0].weight_mask == 0
    conv_h = curvature[model.c3[0].weight]
    assert conv_h[masked].abs().max() == 0 and conv_h[~masked].min() > 0


def test_sdlm_needs_the_1998_network():
    with pytest.raises(Lenet5Error, match="lenet5-1998"):
        TrainConfig(optimizer="sdlm").validate()


def test_paper1998_recipe_trains_end_to_end(tmp_path):
    config = recipe_config("paper1998", {"epochs": 1, "train_subset": 600, "threads": 1})
    summary = fit(config, tmp_path, log=lambda _: None)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["optimizer"] == "sdlm" and saved["model"]["arch"] == "lenet5-1998"
    assert summary["parameters"] == 60_000 and summary["test_accuracy"] > 0.5


def test_a_recipe_option_this_build_lacks_is_an_error_not_ignored():
    from lenet5.recipes import RECIPES

    if "augment" in TrainConfig.__dataclass_fields__:
        pytest.skip("this build has --augment")
    with pytest.raises(Lenet5Error, match="augment"):
        recipe_config("paper1998-distort")
    assert "augment" in RECIPES["paper1998-distort"].overrides
