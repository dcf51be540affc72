"""A workspace full of bad inputs, and a harness that runs ``lenet5`` on them in-process.

Shared by the error catalogue test (``docs/errors.md``, every row run) and the broad
bad-input probe (``tests/probe_bad_inputs.py``). A command runs through ``lenet5.cli.main``
with stdout/stderr captured and an alarm as a hang detector, and its outcome is sorted into
the classes the catalogue cares about: a clean exit, a clear error, a traceback or a hang.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import shlex
import signal
import struct
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lenet5.config import TrainConfig
from lenet5.data.mnist import load_split
from lenet5.model import LeNet5
from lenet5.preprocess import Normalization
from lenet5.weights import save_weights

TRAIN_IMAGES, TEST_IMAGES = 300, 100
# Small enough that a probe that trains finishes in a second or two.
QUICK = "--data-dir data --epochs 1 --val-size 50 --batch-size 64 --threads 1"
HANG_SECONDS = 60


class Hang(Exception):
    """Raised by the alarm when a command runs past :data:`HANG_SECONDS`."""


@dataclass
class Outcome:
    kind: str  # "ok" (exit 0), "error" (exit 2), "failed" (exit 1), "traceback", "hang", or "exit N"
    code: int | None
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


def idx(array: np.ndarray, code: int = 0x08, shape: tuple[int, ...] | None = None) -> bytes:
    shape = array.shape if shape is None else shape
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + array.tobytes()


def _write_split(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(idx(images))
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(idx(labels))


def _data_folders(root: Path) -> None:
    train_images, train_labels = (t.numpy() for t in load_split("train"))
    test_images, test_labels = (t.numpy() for t in load_split("test"))
    train = (train_images[:TRAIN_IMAGES], train_labels[:TRAIN_IMAGES].astype(np.uint8))
    test = (test_images[:TEST_IMAGES], test_labels[:TEST_IMAGES].astype(np.uint8))
    _write_split(root / "data", "train", *train)
    _write_split(root / "data", "t10k", *test)
    _write_split(root / "data-empty-test", "train", *train)
    _write_split(root / "data-empty-test", "t10k", test[0][:0], test[1][:0])
    _write_split(root / "data-empty-train", "train", train[0][:0], train[1][:0])
    _write_split(root / "data-empty-train", "t10k", *test)
    variants = {
        # 2**32-1 images of 2**32-1 x 2**32-1 pixels: the size overflows int64
        "data-overflow": idx(train[0], shape=(0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)),
        "data-truncated": idx(train[0])[:-100],
        "data-bad-magic": b"\x01\x02" + idx(train[0])[2:],
        "data-wrong-shape": idx(train[0].reshape(TRAIN_IMAGES, 28 * 28)),
        "data-float": idx(train[0].astype(">f4"), code=0x0D),
        "data-corrupt-gz": gzip.compress(idx(train[0]))[:200],
    }
    for name, raw in variants.items():
        _write_split(root / name, "train", *train)
        _write_split(root / name, "t10k", *test)
        (root / name / "train-images-idx3-ubyte").write_bytes(raw)
    _write_split(root / "data-labels-11", "train", train[0], np.full(TRAIN_IMAGES, 11, np.uint8))
    _write_split(root / "data-labels-11", "t10k", *test)
    _write_split(root / "data-count-mismatch", "train", train[0], train[1][:-1])
    _write_split(root / "data-count-mismatch", "t10k", *test)
    _write_split(root / "data-flat", "train", np.zeros_like(train[0]), train[1])
    _write_split(root / "data-flat", "t10k", *test)
    (root / "data-missing-files").mkdir()


def _weights(root: Path) -> None:
    torch.manual_seed(0)
    # Relative data_dir: the workspace is the cwd, so eval and --resume stay tiny and offline.
    config, model = TrainConfig(data_dir="data", epochs=1, val_size=50, batch_size=64), LeNet5()
    norm = Normalization("[-1,1]", 0.5, 0.5)
    save_weights(root / "model.safetensors", model, config, norm)
    run = root / "run"
    run.mkdir()
    save_weights(run / "best.safetensors", model, config, norm, {"epoch": 1})
    (run / "config.json").write_text(config.to_json())
    from safetensors.torch import save

    tensors = {k: v.detach().clone() for k, v in model.state_dict().items()}
    good_meta = {"format": "lenet5/1", "config": config.to_json(), "normalization": json.dumps(norm.to_dict()),
                 "extra": "{}"}
    broken = {
        "nan": ({k: torch.full_like(v, float("nan")) for k, v in tensors.items()}, good_meta),
        "no-format": (tensors, {k: v for k, v in good_meta.items() if k != "format"}),
        "no-config": (tensors, {k: v for k, v in good_meta.items() if k != "config"}),
        "config-not-json": (tensors, {**good_meta, "config": "{not json"}),
        "config-a-list": (tensors, {**good_meta, "config": "[1, 2]"}),
        "unknown-activation": (tensors, {**good_meta, "config": json.dumps({"model": {"activation": "swish"}})}),
        "bad-dropout": (tensors, {**good_meta, "config": json.dumps({"model": {"dropout": 5}})}),
        "epochs-a-string": (tensors, {**good_meta, "config": json.dumps({"epochs": "ten"})}),
        "no-normalization": (tensors, {k: v for k, v in good_meta.items() if k != "normalization"}),
        "zero-std": (tensors, {**good_meta, "normalization": json.dumps({"mode": "x", "mean": 0, "std": 0})}),
        "normalization-extra-key": (tensors, {**good_meta, "normalization": json.dumps({"mode": "x", "mean": 0,
                                                                                        "std": 1, "oops": 1})}),
        "extra-a-list": (tensors, {**good_meta, "extra": "[]"}),
        "wrong-architecture": ({k: v for k, v in tensors.items() if not k.startswith("c1.")}, good_meta),
        "relu-config-tanh-weights": (tensors, {**good_meta, "config": json.dumps({"model": {"batchnorm": True}})}),
    }
    for name, (weights, metadata) in broken.items():
        (root / f"{name}.safetensors").write_bytes(save(weights, metadata=metadata))
    (root / "empty.safetensors").write_bytes(b"")
    (root / "garbage.safetensors").write_bytes(os.urandom(256))
    (root / "huge-header.safetensors").write_bytes(struct.pack("<Q", 2**62) + b"{}")
    folders = {"run-config-not-json": "{oops", "run-config-a-list": "[]",
               "run-config-invalid": json.dumps({"lr": -1}), "run-bad-state": config.to_json()}
    for name, text in folders.items():
        (root / name).mkdir()
        (root / name / "config.json").write_text(text)
    (root / "run-bad-state" / "state.pt").write_bytes(b"not a pickle")
    for name, files in {"run-bad-summary": {"summary.json": "{nan"}, "run-bad-metrics": {"metrics.csv": "epoch,x\n1,abc\n"},
                        "run-summary-a-list": {"summary.json": "[1]"}}.items():
        (root / name).mkdir()
        save_weights(root / name / "best.safetensors", model, config, norm, {"epoch": 1})
        for file_name, text in files.items():
            (root / name / file_name).write_text(text)
    (root / "no-weights-run").mkdir()


def _images(root: Path) -> None:
    from drawn_digits import as_png, draw_digit
    from PIL import Image

    digit = draw_digit(3, canvas=(120, 120))
    (root / "digit.png").write_bytes(as_png(digit))
    buffer = io.BytesIO()
    Image.new("L", (64, 64), 255).save(buffer, format="PNG")
    (root / "blank.png").write_bytes(buffer.getvalue())
    (root / "empty.png").write_bytes(b"")
    (root / "text.png").write_bytes(b"this is not an image\n")
    (root / "truncated.png").write_bytes(as_png(digit)[:300])
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, format="PNG")
    (root / "bomb.png").write_bytes(bomb.getvalue())
    (root / "no-images").mkdir()
    (root / "no-images" / "notes.txt").write_text("no pictures here")
    (root / "images").mkdir()
    (root / "images" / "digit.png").write_bytes(as_png(digit))
    os.mkfifo(root / "fifo.png")
    (root / "big.png").write_bytes(bytes(5 * 2**20))  # over the web API's default 4 MiB limit
    (root / "form-without-file.txt").write_bytes(
        b'--x\r\nContent-Disposition: form-data; name="other"\r\n\r\nhello\r\n--x--\r\n')
    (root / "a-file").write_text("in the way")
    os.symlink("loop.png", root / "loop.png")  # a symlink to itself
    (root / "garbage.onnx").write_bytes(os.urandom(300))


def make_workspace(root: Path) -> Path:
    """Create every bad (and a few good) input under ``root``; commands run with ``root`` as cwd."""
    _data_folders(root)
    _weights(root)
    _images(root)
    return root


def run_cli(argv: list[str] | str, *, timeout: int = HANG_SECONDS) -> Outcome:
    """Run ``lenet5 ARGV`` in this process and classify how it ended."""
    from lenet5.cli import main

    if isinstance(argv, str):
        argv = shlex.split(argv.replace("{QUICK}", QUICK))
    out, err = io.StringIO(), io.StringIO()

    def alarm(signum, frame):  # noqa: ARG001 - signal handler signature
        raise Hang()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(timeout)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code if isinstance(exc.code, int) else 2
    except Hang:
        return Outcome("hang", None, out.getvalue(), err.getvalue())
    except BaseException:  # noqa: BLE001 - a traceback is exactly what is being looked for
        return Outcome("traceback", None, out.getvalue(), err.getvalue() + traceback.format_exc())
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    kind = {0: "ok", 1: "failed", 2: "error"}.get(code, f"exit {code}")
    return Outcome(kind, code, out.getvalue(), err.getvalue())


def web_client(root: Path):
    """A TestClient on the app serving ``root/model.safetensors`` with the default limits."""
    from fastapi.testclient import TestClient

    from lenet5.predict import load
    from lenet5.web.app import create_app

    return TestClient(create_app(load(root / "model.safetensors")), raise_server_exceptions=False)


def run_http(client, request: str, root: Path) -> tuple[int, str]:
    """Run ``METHOD PATH [(CONTENT-TYPE)] [< FILE]``; return the status and the error (or body) text."""
    head, _, body_file = request.partition(" < ")
    method, path, *rest = head.split(" ", 2)
    headers = {"content-type": rest[0].strip("()")} if rest else {}
    content = (root / body_file.strip()).read_bytes() if body_file else None
    response = client.request(method, path, content=content, headers=headers)
    try:
        answer = response.json()
    except ValueError:
        return response.status_code, "(not JSON) " + response.text[:200]
    return response.status_code, answer.get("error", json.dumps(answer)) if isinstance(answer, dict) else str(answer)


def empty_folders(root: Path, before: set[Path]) -> list[Path]:
    """Folders under ``root`` that are empty now and were not there before (left by a failed command)."""
    return [p for p in root.rglob("*") if p.is_dir() and p not in before and not any(p.iterdir())]
