"""Data-parallel training: real torchrun processes (gloo on loopback) against one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lenet5.cli import main
from lenet5.cli.options import flags_from_overrides, overrides_from_args
from lenet5.cli.train import register
from lenet5.config import TrainConfig
from lenet5.distributed import DistributedError, Shard
from lenet5.train import fit

# Seconds-long runs: a few hundred real images, two epochs, a short last batch (500 = 7 x 64 + 52).
TINY = dict(train_subset=500, val_size=100, epochs=2, batch_size=64, threads=1, patience=0)
TINY_FLAGS = ["--train-subset", "500", "--val-size", "100", "--epochs", "2", "--batch-size", "64",
              "--threads", "1", "--patience", "0"]
LAUNCH_TIMEOUT = 240  # seconds; torchrun plus N torch imports on a busy 2-core machine
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src"), "OMP_NUM_THREADS": "1"}


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real torchrun (``python -m torch.distributed.run``) running ``lenet5``."""
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=LAUNCH_TIMEOUT)


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = load_file(str(a)), load_file(str(b))
    assert first.keys() == second.keys()
    for key in first:  # summation order differs across ranks: equal up to float rounding
        torch.testing.assert_close(first[key], second[key], rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> Path:
    """The reference: the same run in this one process."""
    run_dir = tmp_path_factory.mktemp("one_process")
    fit(TrainConfig(**TINY), run_dir, log=lambda _: None)
    return run_dir


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_rank_takes_its_slice_of_every_global_batch():
    batch = torch.arange(10)
    slices = [Shard(rank, 3).local(batch) for rank in range(3)]
    assert [len(s) for s in slices] == [4, 3, 3] and torch.equal(torch.cat(slices), batch)
    assert torch.equal(Shard().local(batch), batch)  # one process keeps the whole batch
    assert len(Shard(2, 3).local(torch.arange(2))) == 0  # a short last batch can leave a rank empty


def test_the_loss_is_the_global_mean_after_ddp_averages_the_ranks():
    logits, targets = torch.randn(7, 10), torch.randint(0, 10, (7,))
    mean = torch.nn.functional.cross_entropy(logits, targets)
    parts = []
    for rank in range(3):
        shard = Shard(rank, 3)
        local_logits, local_targets = shard.local(logits), shard.local(targets)
        local_mean = torch.nn.functional.cross_entropy(local_logits, local_targets)
        parts.append(shard.scale_loss(local_mean, len(local_targets), len(targets)))
    torch.testing.assert_close(sum(parts) / 3, mean)  # DDP divides the summed gradients by world size


def test_launch_flags_round_trip_through_the_parser():
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    argv = ["train", "--lr", "0.1", "--nesterov", "--no-batchnorm", "--betas", "0.8", "0.99", "--epochs", "3"]
    overrides = overrides_from_args(parser.parse_args(argv))
    assert overrides_from_args(parser.parse_args(["train", *flags_from_overrides(overrides)])) == overrides


def test_torchrun_two_processes_give_one_process_weights(tmp_path, one_process):
    result = torchrun("--standalone", "--nproc-per-node", "2", "-m", "lenet5", "train", *TINY_FLAGS,
                      "--project", "runs", "--name", "ddp", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["ddp"]  # only rank 0 made a folder
    run_dir = tmp_path / "runs" / "ddp"
    for name in ("last.safetensors", "best.safetensors"):
        assert_same_weights(run_dir / name, one_process / name)
    ddp, single = (json.loads((d / "summary.json").read_text()) for d in (run_dir, one_process))
    assert ddp["world_size"] == 2
    # Test metrics are summed over both ranks' halves of the test set.
    assert ddp["test_accuracy"] == pytest.approx(single["test_accuracy"], abs=2e-4)
    assert ddp["test_loss"] == pytest.approx(single["test_loss"], rel=1e-4)
    assert result.stdout.count("epoch 2/2") == 1  # only rank 0 logs


@pytest.mark.slow  # another torchrun launch (~20 s on 2 busy cores)
def test_resume_with_two_processes_continues_a_one_process_run(tmp_path, one_process, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()

    def stop_after_epoch_one(row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(TrainConfig(**TINY), run_dir, on_epoch_end=stop_after_epoch_one, log=lambda _: None)
    # Same global batch, same arithmetic: the world size may change between sessions.
    command = [sys.executable, "-m", "lenet5", "train", "--resume", str(run_dir), "--nproc", "2"]
    result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert f"resuming {run_dir} after epoch 1" in result.stdout
    assert_same_weights(run_dir / "last.safetensors", one_process / "last.safetensors")


@pytest.mark.slow  # two torchrun launches (~25 s on 2 busy cores)
def test_two_nodes_on_loopback_train_as_one(tmp_path, one_process):
    endpoint = f"127.0.0.1:{free_port()}"
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node",
                               "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", "loopback",
                               "-m", "lenet5", "train", *TINY_FLAGS, "--project", f"node{i}", "--name", "job"],
                              cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    outputs = [node.communicate(timeout=LAUNCH_TIMEOUT)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(outputs)
    written = [d for d in (tmp_path / "node0", tmp_path / "node1") if (d / "job" / "summary.json").exists()]
    assert len(written) == 1  # global rank 0's machine holds the run folder
    assert_same_weights(written[0] / "job" / "last.safetensors", one_process / "last.safetensors")


def test_a_batch_that_does_not_divide_is_refused(tmp_path, capsys):
    assert main(["train", *TINY_FLAGS, "--batch-size", "30", "--nproc", "4", "--project", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == ("lenet5: error: --batch-size 30 does not divide by the world size 4: each process takes "
                   "batch-size / world-size images; choose a multiple of 4\n")
    assert not any(tmp_path.iterdir())
    # Under torchrun itself, each rank learns it from rank 0, which prints it once.
    result = torchrun("--standalone", "--nproc-per-node", "2", "-m", "lenet5", "train", *TINY_FLAGS,
                      "--batch-size", "33", "--project", "runs", cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr.count("lenet5: error: --batch-size 33 does not divide by the world size 2") == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_more_nodes_need_a_meeting_point():
    from lenet5.distributed import launch

    with pytest.raises(DistributedError, match="--rdzv-endpoint"):
        launch([], nproc=1, nnodes=2)
