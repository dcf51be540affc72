"""The pretrained weights shipped in the package: what made them, how good they are, who uses them.

``make weights`` makes them (the lab recipe, then a copy into ``src/lenet5/pretrained/``). The
fast tests read the file; the slow one runs the documented command again and compares.
"""

from __future__ import annotations

import logging
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import lenet5
from lenet5.cli import build_parser
from lenet5.cli.options import overrides_from_args
from lenet5.config import TrainConfig
from lenet5.data.mnist import load_split
from lenet5.inference import evaluate
from lenet5.recipes import recipe_config
from lenet5.weights import PRETRAINED, load_model, read_metadata

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_ONLY = {"threads", "device"}  # how the run was executed, not what it learned
MAX_BYTES = 400 * 1024  # "a few hundred KB"
MIN_ACCURACY = 0.99


def makefile_variable(name: str) -> str:
    match = re.search(rf"^{name}\s*:=\s*(.+)$", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)
    assert match, f"Makefile has no {name}"
    return match.group(1).strip()


def documented_config() -> TrainConfig:
    """The config `make weights` trains with: its flags, parsed by the real `lenet5 train` parser."""
    args = build_parser().parse_args(["train", *makefile_variable("WEIGHTS_FLAGS").split()])
    return recipe_config(args.recipe, overrides_from_args(args))


def digit_png(tmp_path: Path) -> Path:
    path = tmp_path / "digit.png"
    Image.fromarray(255 - load_split("test")[0][0].numpy()).resize((140, 140)).save(path)
    return path


def test_the_file_ships_in_the_package_and_is_small() -> None:
    assert PRETRAINED.is_file(), "run `make weights`"
    assert PRETRAINED.stat().st_size <= MAX_BYTES
    assert makefile_variable("PRETRAINED") == str(PRETRAINED.relative_to(ROOT))
    assert "pretrained/*.safetensors" in (ROOT / "pyproject.toml").read_text()  # package data


def test_metadata_config_is_the_lab_recipe_made_by_make_weights() -> None:
    stored = TrainConfig.from_dict(read_metadata(PRETRAINED)["config"])
    assert stored == documented_config()
    stored, recipe = stored.to_dict(), recipe_config("lab").to_dict()
    assert {key for key in recipe if recipe[key] != stored[key]} <= RUNTIME_ONLY


def test_bundled_weights_reach_99_percent_on_the_mnist_test_set() -> None:
    loaded = load_model(PRETRAINED)
    images, labels = load_split("test")
    torch.set_num_threads(2)
    _, accuracy = evaluate(loaded.model, images, labels, loaded.normalization)
    assert accuracy >= MIN_ACCURACY
    recorded = loaded.extra["test_accuracy"]
    assert abs(accuracy - recorded) <= 1 / len(labels)  # the metadata's figure, up to one image


def test_load_falls_back_to_them_and_says_so(tmp_path: Path, monkeypatch, caplog, trained_run: Path) -> None:
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="lenet5"):
        predictor = lenet5.load()
    assert predictor.path == PRETRAINED
    lines = [record.getMessage() for record in caplog.records if record.name.startswith("lenet5")]
    assert len(lines) == 1 and "pretrained lab weights" in lines[0] and "test accuracy" in lines[0]
    assert predictor.predict_one(digit_png(tmp_path)).digit == int(load_split("test")[1][0])
    shutil.copytree(trained_run, tmp_path / "runs" / "train" / "exp")  # a run of one's own wins
    caplog.clear()
    assert lenet5.load().path.resolve() == tmp_path / "runs" / "train" / "exp" / "best.safetensors"
    assert not caplog.records


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lenet5", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)


def test_predict_and_inspect_use_them_without_a_run(tmp_path: Path, trained_run: Path) -> None:
    image = digit_png(tmp_path)
    result = _cli(tmp_path, "predict", str(image), "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("\n") == 1 and "pretrained lab weights" in result.stderr
    assert result.stdout.splitlines()[1].split(",")[1] == str(int(load_split("test")[1][0]))
    explicit = _cli(tmp_path, "predict", str(image), "--weights", str(trained_run))
    assert explicit.returncode == 0 and "pretrained" not in explicit.stderr  # --weights wins
    report = _cli(tmp_path, "inspect", "--digits", "1", "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    assert report.stderr.count("pretrained lab weights") == 1
    assert str(PRETRAINED) in (tmp_path / "report" / "report.json").read_text()


def test_serve_uses_them_without_a_run(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "lenet5", "serve", "--port", str(port), "--workers", "1"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first_error_line = server.stderr.readline()
        first_output_line = server.stdout.readline()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "pretrained lab weights" in first_error_line
    assert first_output_line.startswith(f"serving {PRETRAINED}")


@pytest.mark.slow
def test_make_weights_reproduces_them(tmp_path: Path) -> None:
    """The documented command, run again into a scratch file, gives the same model."""
    out = tmp_path / "lab.safetensors"
    result = subprocess.run(["make", "weights", f"PRETRAINED={out}", f"WEIGHTS_RUN={tmp_path / 'runs' / 'lab'}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stderr
    shipped, remade = read_metadata(PRETRAINED), read_metadata(out)
    assert remade["config"] == shipped["config"]
    assert abs(remade["extra"]["test_accuracy"] - shipped["extra"]["test_accuracy"]) <= 0.002
    same = all(torch.equal(a, b) for a, b in zip(load_model(out).model.state_dict().values(),
                                                 load_model(PRETRAINED).model.state_dict().values()))
    print(f"bitwise identical to the shipped weights: {same}")
