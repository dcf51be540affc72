"""`lenet5 summary`: the measured shape trace and parameter counts."""

from __future__ import annotations

import json

import pytest
import torch

from lenet5.cli import main
from lenet5.model import LeNet5, count_parameters
from lenet5.summary import format_trace, trace

EXPECTED_SHAPES = {"input": [1, 28, 28], "c1": [6, 28, 28], "s2": [6, 14, 14], "c3": [16, 10, 10],
                   "s4": [16, 5, 5], "flatten": [400], "f5": [120], "f6": [84], "output": [10]}


def test_default_trace_shapes_and_parameters():
    rows = trace(LeNet5())
    assert {row.stage: row.output_shape[1:] for row in rows} == EXPECTED_SHAPES
    # conv: out x (in x k x k + 1); linear: out x (in + 1)
    expected_parameters = {"c1": 6 * (25 + 1), "c3": 16 * (6 * 25 + 1), "f5": 120 * 401, "f6": 84 * 121, "output": 10 * 85}
    assert {row.stage: row.parameters for row in rows if row.parameters} == expected_parameters
    assert sum(row.parameters for row in rows) == 61706


@pytest.mark.parametrize("options", [dict(activation="relu", pool="avg"), dict(batchnorm=True, dropout=0.5)])
def test_total_matches_the_model_for_every_variant(options):
    model = LeNet5(**options)
    rows = trace(model)
    assert sum(row.parameters for row in rows) == count_parameters(model)
    assert rows[-1].output_shape[1:] == [10]


def test_trace_leaves_the_model_unchanged():
    model = LeNet5(batchnorm=True, dropout=0.5).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trace(model)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.c1._forward_hooks


def test_flatten_row_shows_16x5x5_to_400():
    rows = {row.stage: row for row in trace(LeNet5())}
    assert rows["flatten"].layers == "Flatten 16x5x5 -> 400"
    assert "[N, 400]" in format_trace(list(rows.values()))


def test_cli_text_and_json(capsys):
    assert main(["summary", "--activation", "relu", "--pool", "avg"]) == 0
    text = capsys.readouterr().out
    assert "[N, 1, 28, 28]" in text and "[N, 10]" in text and "AvgPool2d 2x2" in text and "ReLU" in text
    assert "total trainable parameters: 61,706" in text
    assert main(["summary", "--json", "--batchnorm"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["model"]["batchnorm"] is True
    assert payload["total_parameters"] == count_parameters(LeNet5(batchnorm=True))


def test_cli_summarises_trained_weights(trained_run, capsys):
    assert main(["summary", "--weights", str(trained_run)]) == 0
    assert "total trainable parameters: 61,706" in capsys.readouterr().out


def test_cli_refuses_weights_with_architecture_options(trained_run, capsys):
    assert main(["summary", "--weights", str(trained_run), "--pool", "avg"]) == 2
    assert "--weights brings its own architecture" in capsys.readouterr().err
