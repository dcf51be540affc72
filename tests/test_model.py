"""Contracts of the LeNet-5 module: shapes, parameter counts, switches, logits out."""

import pytest
import torch
import torch.nn.functional as F

from lenet5.config import ACTIVATIONS, ModelConfig
from lenet5.model import LeNet5, count_parameters


def test_default_parameter_count_matches_lenet5():
    # conv1 6*(25+1) + conv2 16*(6*25+1) + 400*120+120 + 120*84+84 + 84*10+10
    expected = 156 + 2416 + 48120 + 10164 + 850
    assert count_parameters(LeNet5()) == expected == 61_706


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("pool", ["max", "avg"])
def test_every_variant_maps_images_to_ten_logits(activation, pool):
    model = LeNet5(activation=activation, pool=pool, dropout=0.3, batchnorm=True)
    logits = model(torch.randn(4, 1, 28, 28))
    assert logits.shape == (4, 10)
    assert logits.dtype == torch.float32


def test_stage_shapes_follow_the_paper():
    model = LeNet5()
    x = torch.zeros(2, 1, 28, 28)
    expected = {"c1": (2, 6, 28, 28), "s2": (2, 6, 14, 14), "c3": (2, 16, 10, 10), "s4": (2, 16, 5, 5),
                "flatten": (2, 400), "f5": (2, 120), "f6": (2, 84), "output": (2, 10)}
    for name, module in model.named_children():
        x = module(x)
        assert tuple(x.shape) == expected[name], name


def test_forward_matches_a_functional_reference_and_returns_raw_logits():
    torch.manual_seed(0)
    model = LeNet5().eval()
    images = torch.randn(8, 1, 28, 28)
    # The same network written out with torch.nn.functional, as the lab handout draws it.
    x = torch.tanh(F.conv2d(images, model.c1[0].weight, model.c1[0].bias, padding=2))
    x = F.max_pool2d(x, 2)
    x = torch.tanh(F.conv2d(x, model.c3[0].weight, model.c3[0].bias))
    x = F.max_pool2d(x, 2).flatten(1)
    x = torch.tanh(F.linear(x, model.f5[0].weight, model.f5[0].bias))
    x = torch.tanh(F.linear(x, model.f6[0].weight, model.f6[0].bias))
    reference = F.linear(x, model.output.weight, model.output.bias)
    with torch.inference_mode():
        logits = model(images)
    torch.testing.assert_close(logits, reference)  # no softmax at the end: CrossEntropyLoss adds it


def test_dropout_and_batchnorm_make_train_and_eval_differ():
    torch.manual_seed(0)
    model = LeNet5(dropout=0.5, batchnorm=True)
    images = torch.randn(16, 1, 28, 28)
    model.train()
    train_out = model(images)
    model.eval()
    with torch.inference_mode():
        eval_out, eval_again = model(images), model(images)
    assert not torch.allclose(train_out, eval_out)
    assert torch.equal(eval_out, eval_again)  # eval mode is deterministic


def test_from_config_builds_the_described_model():
    model = LeNet5.from_config(ModelConfig(activation="relu", pool="avg", batchnorm=True))
    assert isinstance(model.s2, torch.nn.AvgPool2d)
    assert isinstance(model.c1[1], torch.nn.BatchNorm2d)
    assert isinstance(model.c1[2], torch.nn.ReLU)
