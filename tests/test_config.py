"""The config dataclass validates values and round-trips through JSON."""

import json

import pytest

from lenet5.config import ModelConfig, TrainConfig
from lenet5.errors import Lenet5Error


def test_round_trip_through_json():
    config = TrainConfig(model=ModelConfig(activation="relu", dropout=0.2), betas=(0.8, 0.99), lr=0.1)
    assert TrainConfig.from_dict(json.loads(config.to_json())) == config


def test_unknown_keys_from_other_versions_are_ignored():
    values = TrainConfig().to_dict() | {"from_the_future": 1}
    assert TrainConfig.from_dict(values) == TrainConfig()


@pytest.mark.parametrize("change, field", [
    ({"optimizer": "rmsprop"}, "optimizer"),
    ({"schedule": "warmup"}, "schedule"),
    ({"normalization": "[0,255]"}, "normalization"),
    ({"epochs": 0}, "epochs"),
    ({"lr": -1.0}, "lr"),
    ({"accumulate": 0}, "accumulate"),
])
def test_invalid_values_name_the_field(change, field):
    with pytest.raises(Lenet5Error, match=field):
        TrainConfig(**change).validate()


def test_invalid_model_values_are_caught():
    with pytest.raises(Lenet5Error, match="activation"):
        TrainConfig(model=ModelConfig(activation="swish")).validate()
    with pytest.raises(Lenet5Error, match="dropout"):
        TrainConfig(model=ModelConfig(dropout=1.5)).validate()


def test_linear_scaling_rule():
    assert TrainConfig(lr=0.1, batch_size=512, base_batch_size=256, scale_lr=True).effective_lr == pytest.approx(0.2)
    assert TrainConfig(lr=0.1, batch_size=64, accumulate=4, base_batch_size=128, scale_lr=True).effective_lr == \
        pytest.approx(0.2)
    assert TrainConfig(lr=0.1, batch_size=512, base_batch_size=256).effective_lr == 0.1
