"""``lenet5 compare`` end to end on a real MNIST subset: trials, table, plots, verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lenet5.cli import main

# Seconds-long trials: a few hundred real training images, one epoch, one thread.
TINY = ["--epochs", "1", "--train-subset", "600", "--val-size", "300", "--batch-size", "32", "--threads", "1"]


def started_points(study_dir: Path) -> list[tuple[str, str]]:
    """(variant, seed) of every trial start, in order, from the append-only start log."""
    lines = (study_dir / "started.log").read_text().splitlines()
    return [tuple(line.split("\t")[:2]) for line in lines]


def test_grid_writes_table_plots_and_verdicts(tmp_path, capsys):
    code = main(["compare", "--grid", "activation=tanh,relu", "--seeds", "2", "--project", str(tmp_path),
                 "--name", "act", "--optimizer", "adam", "--lr", "0.003", "--schedule", "none", *TINY])
    assert code == 0
    study_dir = tmp_path / "act"
    report = (study_dir / "report.md").read_text()
    assert "| variant | trials | test accuracy | best val loss | epochs to best | s to val acc 97% | wall time |" \
        in report
    for label in ("activation=tanh", "activation=relu"):
        assert f"| {label} | 2/2 | " in report
    (verdict,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("best variant")]
    assert verdict.startswith("best variant 'activation=")
    assert any(word in verdict for word in ("HELD", "NO CLEAR DIFFERENCE"))
    assert verdict in report
    assert (study_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<table>" in (study_dir / "report.html").read_text()
    # Every trial is a normal run folder that trained on what the grid says.
    summaries = sorted(study_dir.glob("trials/*/seed*/summary.json"))
    assert len(summaries) == 4
    for path in summaries:
        config = json.loads((path.parent / "config.json").read_text())
        assert config["model"]["activation"] in path.parent.parent.name
        assert config["train_subset"] == 600 and config["lr"] == 0.003
        assert json.loads(path.read_text())["test_accuracy"] > 0.2  # real learning: chance is 0.1


def test_nan_loss_is_recorded_as_diverged_and_not_retried(tmp_path, capsys):
    args = ["compare", "--grid", "lr=1e20", "--seeds", "1", "--project", str(tmp_path), "--name", "nan",
            "--activation", "relu", "--optimizer", "sgd", "--schedule", "none", *TINY]
    assert main(args) == 0
    report = (tmp_path / "nan" / "report.md").read_text()
    assert "| lr=1e+20 | 1/1 (1 NaN) |" in report
    assert json.loads((tmp_path / "nan/trials/0-lr=1e+20/seed0/summary.json").read_text())["status"] == "diverged"
    capsys.readouterr()
    assert main(args) == 0  # a re-run finds nothing to do: divergence is a result
    assert "1 done, 0 queued now" in capsys.readouterr().out
    assert started_points(tmp_path / "nan") == [("lr=1e+20", "0")]


def test_changed_options_need_a_new_name(tmp_path, capsys):
    base = ["compare", "--grid", "lr=1e20", "--seeds", "1", "--project", str(tmp_path), "--name", "x",
            "--activation", "relu", "--optimizer", "sgd", "--schedule", "none", *TINY]
    assert main(base) == 0
    capsys.readouterr()
    assert main(base[:-2] + ["--threads", "1", "--momentum", "0.5"]) == 2
    assert "started with different options" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["compare"], "no study given: choose one of normalization"),
    (["compare", "dropout"], "unknown study 'dropout'"),
    (["compare", "--grid", "colour=red"], "--grid colour: not a training option"),
    (["compare", "pooling", "--seeds", "0"], "invalid --seeds 0: must be in 1..256"),
    (["compare", "pooling", "--lr", "-1"], "invalid --lr -1.0"),
])
def test_user_mistakes_are_one_line_errors(tmp_path, capsys, args, message):
    assert main(args + ["--project", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())  # nothing started
