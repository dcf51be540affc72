"""End-to-end CLI runs on small real MNIST subsets, and the one-line errors users see."""

import json

import pytest
import torch

from lenet5.cli import main
from lenet5.config import ModelConfig, TrainConfig
from lenet5.model import LeNet5
from lenet5.preprocess import Normalization
from lenet5.weights import save_weights

QUICK = ["--epochs", "1", "--train-subset", "2000", "--batch-size", "32", "--val-size", "500", "--threads", "2"]


def test_train_then_eval_smoke(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *QUICK]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("test accuracy") and "runs/train/exp" in lines[-1]
    run_dir = tmp_path / "runs" / "train" / "exp"
    for name in ("config.json", "metrics.csv", "best.safetensors", "last.safetensors", "state.pt",
                 "curves.png", "summary.json"):
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert 0.8 < summary["test_accuracy"] <= 1.0

    assert main(["train", *QUICK, "--activation", "relu"]) == 0
    assert (tmp_path / "runs" / "train" / "exp2" / "best.safetensors").is_file()
    capsys.readouterr()

    # eval defaults to the newest run (exp2) and writes a confusion matrix.
    assert main(["eval", "--out", str(tmp_path / "eval")]) == 0
    out = capsys.readouterr().out
    assert "exp2" in out and "per-class accuracy" in out
    confusion = (tmp_path / "eval" / "confusion.csv").read_text().splitlines()
    assert len(confusion) == 11
    total = sum(int(n) for row in confusion[1:] for n in row.split(",")[1:])
    assert total == 10_000


def test_resume_finishes_an_interrupted_run_bit_for_bit(tmp_path, capsys, monkeypatch):
    from safetensors.torch import load_file

    import lenet5.train

    two_epochs = [*QUICK, "--epochs", "2", "--project", str(tmp_path)]
    assert main(["train", *two_epochs, "--name", "whole"]) == 0

    # Ctrl-C after epoch 1 is saved (the curves are drawn after the state is written).
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(lenet5.train, "plot_curves", interrupt)
    assert main(["train", *two_epochs, "--name", "cut"]) == 130
    assert "--resume" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["train", "--resume", str(tmp_path / "cut")]) == 0
    assert "resuming" in capsys.readouterr().out
    whole, resumed = (load_file(str(tmp_path / name / "last.safetensors")) for name in ("whole", "cut"))
    assert all(torch.equal(whole[key], resumed[key]) for key in whole)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


def test_weights_from_a_different_architecture_are_refused(tmp_path, capsys):
    # Weights trained with batchnorm, but the stored config claims a plain LeNet-5.
    path = tmp_path / "mismatch.safetensors"
    save_weights(path, LeNet5(batchnorm=True), TrainConfig(model=ModelConfig(batchnorm=False)),
                 Normalization("[-1,1]", 0.5, 0.5))
    assert main(["eval", "--weights", str(path), "--out", str(tmp_path)]) == 2
    assert "do not fit this architecture" in one_error_line(capsys)


@pytest.mark.parametrize("content, message", [
    (b"not a safetensors file", "not a readable safetensors file"),
    (None, "not a lenet5 weights file"),
])
def test_unreadable_weights_give_one_line(tmp_path, capsys, content, message):
    from safetensors.torch import save_file

    path = tmp_path / "weights.safetensors"
    if content is None:
        save_file({"x": torch.zeros(1)}, str(path))
    else:
        path.write_bytes(content)
    assert main(["eval", "--weights", str(path)]) == 2
    assert message in one_error_line(capsys)


def test_missing_weights_and_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["eval"]) == 2
    assert "run `lenet5 train` first" in one_error_line(capsys)
    assert main(["eval", "--weights", "nope.safetensors"]) == 2
    assert "not found" in one_error_line(capsys)


def test_invalid_option_values(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--epochs", "0"]) == 2
    assert "epochs" in one_error_line(capsys)
    assert not (tmp_path / "runs").exists()  # nothing created for a config that cannot run
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--optimizer", "rmsprop"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'rmsprop'" in capsys.readouterr().err


def test_resume_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "not a run folder" in one_error_line(capsys)
