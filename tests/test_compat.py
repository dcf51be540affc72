"""Files written by earlier versions still load: a run folder saved by lenet5 0.1's code."""

import json
from pathlib import Path

import torch

from lenet5.cli import main
from lenet5.data.mnist import load_split
from lenet5.inference import predict_logits
from lenet5.weights import load_model

OLD_RUN = Path(__file__).parent / "fixtures" / "run-v0.1"


def test_weights_saved_by_version_0_1_rebuild_the_same_model():
    loaded = load_model(OLD_RUN)
    images, _ = load_split("test")
    expected = torch.tensor(json.loads((OLD_RUN / "expected_logits.json").read_text())["logits"])
    logits = predict_logits(loaded.model, images[: len(expected)], loaded.normalization)
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)
    assert loaded.config.model.activation == "tanh" and loaded.normalization.mode == "[-1,1]"


def test_an_old_run_folder_evaluates_from_the_cli(tmp_path, capsys):
    assert main(["eval", "--weights", str(OLD_RUN), "--out", str(tmp_path / "eval")]) == 0
    assert "per-class accuracy" in capsys.readouterr().out
