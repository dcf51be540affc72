"""The file-safety layer: safe reads, race-free run folders, output checks, crash leftovers."""

from __future__ import annotations

import errno
import json
import os
import struct
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import torch

from lenet5.data.mnist import load_split
from lenet5.errors import DataError, Lenet5Error
from lenet5.files import (
    TEMP_NAME,
    atomic_write_bytes,
    check_dir_target,
    check_run_name,
    next_run_dir,
    output_folder,
    read_bytes,
    remove_partial_writes,
)


def test_read_bytes_names_the_file_and_the_os_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.idx"
    path.write_bytes(b"x")

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(os, "open", denied)  # tests run as root, where chmod 000 would not stop a read
    with pytest.raises(DataError, match=r"locked.idx: cannot read the file \(Permission denied\)$"):
        read_bytes(path, DataError)


def test_read_bytes_refuses_a_fifo_instead_of_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # no writer: a plain open() for reading would block forever
    with pytest.raises(Lenet5Error, match="pipe.png: not a regular file"):
        read_bytes(fifo)


def test_read_bytes_says_missing_and_folder_apart(tmp_path: Path) -> None:
    with pytest.raises(Lenet5Error, match="file not found"):
        read_bytes(tmp_path / "nowhere")
    with pytest.raises(Lenet5Error, match="is a folder, not a file"):
        read_bytes(tmp_path)


@pytest.mark.parametrize("name", ["a/b", "..", ".", "", "/tmp/x", "a\\b", "x\0y"])
def test_run_names_that_escape_the_project_are_refused(name: str) -> None:
    with pytest.raises(Lenet5Error, match="--name"):
        check_run_name(name)


def make_runs(root: str, count: int) -> list[str]:
    return [next_run_dir(Path(root)).name for _ in range(count)]


def test_concurrent_processes_never_share_a_run_folder(tmp_path: Path) -> None:
    with ProcessPoolExecutor(max_workers=4) as pool:
        names = [name for batch in pool.map(make_runs, [str(tmp_path)] * 4, [10] * 4) for name in batch]
    assert len(names) == 40 and len(set(names)) == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


def test_output_checks_create_nothing_and_name_the_problem(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(Lenet5Error, match="--out .*a-file: is a file, not a folder"):
        check_dir_target(blocker, "--out")
    with pytest.raises(Lenet5Error, match="a-file is a file, not a folder"):
        check_dir_target(blocker / "deeper" / "still", "--out")
    check_dir_target(tmp_path / "new" / "nested", "--out")
    assert not (tmp_path / "new").exists()


def test_a_failed_command_removes_the_folders_it_made(tmp_path: Path) -> None:
    root = tmp_path / "runs" / "train"
    with pytest.raises(DataError):
        with output_folder(None, root) as run_dir:
            assert run_dir.is_dir()
            raise DataError("bad data found before anything was written")
    assert not (tmp_path / "runs").exists()  # the run folder and the roots it created are gone
    with pytest.raises(DataError):
        with output_folder(None, root) as run_dir:
            (run_dir / "config.json").write_text("{}")
            raise DataError("diverged after writing")
    assert (run_dir / "config.json").is_file()  # a folder with something in it is kept


def test_write_problems_are_one_error_line(tmp_path: Path) -> None:
    folder = tmp_path / "taken"
    folder.mkdir()
    with pytest.raises(Lenet5Error, match="taken: cannot write the file"):
        atomic_write_bytes(folder, b"x")  # the target is a folder
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


def test_partial_writes_from_a_crash_are_cleared(tmp_path: Path) -> None:
    leftover = tmp_path / ".state.pt.0123456789ab.tmp"
    leftover.write_bytes(b"half")
    keep = tmp_path / ".hidden-but-mine.tmp"
    keep.write_bytes(b"x")
    assert TEMP_NAME.match(leftover.name) and not TEMP_NAME.match(keep.name)
    assert remove_partial_writes(tmp_path) == [leftover]
    assert keep.exists() and not leftover.exists()


def test_an_empty_test_split_writes_null_not_nan(tmp_path: Path) -> None:
    from lenet5.config import TrainConfig
    from lenet5.train import fit

    data = tmp_path / "data"
    data.mkdir()
    for split, prefix, count in (("train", "train", 200), ("test", "t10k", 0)):
        images, labels = load_split(split)
        for kind, tensor in (("images-idx3", images[:count]), ("labels-idx1", labels[:count].to(torch.uint8))):
            shape = tuple(tensor.shape)
            header = bytes([0, 0, 0x08, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
            (data / f"{prefix}-{kind}-ubyte").write_bytes(header + tensor.numpy().tobytes())
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    summary = fit(TrainConfig(data_dir=str(data), epochs=1, val_size=50, batch_size=50), run_dir, log=lambda _: None)
    written = json.loads((run_dir / "summary.json").read_text())  # the strict parser below refuses NaN
    json.loads((run_dir / "summary.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert written["test_accuracy"] is None and summary["test_accuracy"] is None
