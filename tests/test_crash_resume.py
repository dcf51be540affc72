"""Kill a real `lenet5 train` at each fault point, resume it, and get the uninterrupted result.

The crash is injected (``LENET5_FAULT``, see ``lenet5.faults``) at a fixed occurrence, so every
run dies at exactly the same place: no timers, no polling. The resumed run must end with
weights bit-identical to a run that was never interrupted, no temp files left behind, and a
summary.json that is valid JSON.
"""

from __future__ import annotations

import csv
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lenet5.data.mnist import load_split
from lenet5.faults import ENV, EXIT_CODE
from lenet5.files import TEMP_NAME

TRAIN_IMAGES, TEST_IMAGES = 300, 100
# 300 - 60 validation = 240 training images = 8 batches of 32 per epoch, 3 epochs.
ARGS = ["--epochs", "3", "--val-size", "60", "--batch-size", "32", "--threads", "1", "--patience", "0",
        "--seed", "7", "--optimizer", "sgd", "--lr", "0.05", "--schedule", "step", "--step-size", "1",
        "--gamma", "0.5"]
BATCHES_PER_EPOCH = 8
# (fault spec, what the crash must have left behind before the resume). Each case costs two
# process starts, so `make test` runs one per fault point and the rest are marked slow.
FAULTS = {
    "mid-epoch, epoch 2": (f"mid-epoch:{BATCHES_PER_EPOCH + 3}", "state.pt"),
    "between weights and state, epoch 2": ("after-weights:2", "state.pt"),
    "mid-write of state.pt, epoch 1 (first epoch never finished)": ("mid-write@state.pt:1", "temp"),
    "mid-write of last.safetensors, epoch 3": ("mid-write@last.safetensors:3", "temp"),
    "mid-write of summary.json": ("mid-write@summary.json:1", "temp"),
}
SLOW = {"mid-write of last.safetensors, epoch 3", "mid-write of summary.json"}
WEIGHTS = ("best.safetensors", "last.safetensors")


def write_idx(path: Path, tensor: torch.Tensor) -> None:
    shape = tuple(tensor.shape)
    header = bytes([0, 0, 0x08, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
    path.write_bytes(header + tensor.to(torch.uint8).numpy().tobytes())


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first few hundred real MNIST digits as raw IDX files, so each process starts fast."""
    folder = tmp_path_factory.mktemp("tiny_mnist")
    for split, prefix, count in (("train", "train", TRAIN_IMAGES), ("test", "t10k", TEST_IMAGES)):
        images, labels = load_split(split)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images[:count])
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels[:count])
    return folder


def train(args: list[str], fault: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    env.update(OMP_NUM_THREADS="1", **({ENV: fault} if fault else {}))
    return subprocess.run([sys.executable, "-m", "lenet5", "train", *args], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def reference(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("reference")
    done = train([*ARGS, "--data-dir", str(tiny_data), "--project", str(project), "--name", "run"])
    assert done.returncode == 0, done.stderr
    return project / "run"


def leftovers(run_dir: Path) -> list[str]:
    return [p.name for p in run_dir.iterdir() if TEMP_NAME.match(p.name)]


def metrics_without_timing(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as handle:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW else c for c in FAULTS])
def test_a_killed_run_resumes_to_the_uninterrupted_result(case: str, tiny_data: Path, reference: Path,
                                                          tmp_path: Path) -> None:
    fault, evidence = FAULTS[case]
    run_dir = tmp_path / "run"
    crashed = train([*ARGS, "--data-dir", str(tiny_data), "--project", str(tmp_path), "--name", "run"], fault)
    assert crashed.returncode == EXIT_CODE, crashed.stderr  # it died where it was told to, not elsewhere
    assert f"injected fault {fault}" in crashed.stderr
    if evidence == "temp":
        assert leftovers(run_dir), "the crash should have interrupted a write"
    if fault.startswith("mid-write@state.pt"):
        assert not (run_dir / "state.pt").exists()  # the first epoch never finished

    resumed = train(["--resume", str(run_dir)])
    assert resumed.returncode == 0, resumed.stderr

    for name in WEIGHTS:
        expected, actual = load_file(str(reference / name)), load_file(str(run_dir / name))
        assert expected.keys() == actual.keys()
        for key in expected:
            assert torch.equal(expected[key], actual[key]), f"{name}:{key} differs after the resume"
    assert leftovers(run_dir) == []
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert summary["test_accuracy"] == json.loads((reference / "summary.json").read_text())["test_accuracy"]
    assert metrics_without_timing(run_dir) == metrics_without_timing(reference)
