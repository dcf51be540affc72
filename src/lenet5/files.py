"""File safety in one place: atomic writes, safe reads, CSV tables and run folders.

Every file the tool writes goes through :func:`atomic_write_bytes`, so a crash leaves either
the old file or the new one, never half of one (a crash can leave a hidden temp file, which
:func:`remove_partial_writes` clears). Every file it reads goes through :func:`read_bytes`,
which accepts regular files only (a FIFO would hang) and turns OSError into one
:class:`Lenet5Error` naming the file and the reason. Run folders (``runs/train/exp``,
``exp2``...) are made here too, race-free.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import re
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import Lenet5Error
from .faults import fault_point

RUNS = Path("runs")
# Where each command puts its run folders: runs/train/exp, runs/eval/exp, ...
TRAIN_RUNS = RUNS / "train"
EVAL_RUNS = RUNS / "eval"
INSPECT_RUNS = RUNS / "inspect"
COMPARE_RUNS = RUNS / "compare"


TEMP_SUFFIX = ".tmp"
TEMP_HEX = 12  # random hex digits in a temp file's name
TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{%d}%s$" % (TEMP_HEX, re.escape(TEMP_SUFFIX)))
# Names a run folder may not take: they would escape --project or mean "this folder".
RESERVED_NAMES = {"", ".", ".."}


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one."""
    path = Path(path)
    try:
        _write_then_rename(path, data)
    except OSError as exc:  # disk full, read-only, a folder or a file in the way: one clear line
        raise Lenet5Error(f"{path}: cannot write the file ({_reason(exc)})") from None


def _write_then_rename(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name beside the target (same filesystem, so the rename is atomic); opened with
    # plain open() so the file gets the usual umask permissions, unlike mkstemp's 0600.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:TEMP_HEX]}{TEMP_SUFFIX}")
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        fault_point("mid-write", path.name)  # crash tests kill here: temp file complete, not yet renamed
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_partial_writes(folder: Path) -> list[Path]:
    """Delete the temp files a crash inside :func:`atomic_write_bytes` left in ``folder``."""
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if TEMP_NAME.match(p.name) and p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def check_run_name(name: str, flag: str = "--name") -> str:
    """A run folder name must be one plain path component, so it cannot escape its root."""
    if name in RESERVED_NAMES or "/" in name or "\\" in name or "\0" in name or Path(name).is_absolute():
        raise Lenet5Error(f"invalid {flag} {name!r}: must be a plain folder name (no '/', no '..', not empty)")
    return name


def check_dir_target(path: Path, flag: str) -> Path:
    """Fail now, before any work, if folder ``path`` could not be created or written; create nothing.

    Checking without creating means a command that fails later leaves no empty folder behind.
    """
    path = Path(path)
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent  # the folder `mkdir -p` would start from
    if not existing.is_dir():
        where = "is a file, not a folder" if existing == path else f"{existing} is a file, not a folder"
        raise Lenet5Error(f"{flag} {path}: {where}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise Lenet5Error(f"{flag} {path}: {existing} is not writable")
    return path


def _missing_folders(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not path.exists() and path.parent != path:
        missing.append(path)
        path = path.parent
    return missing


@contextlib.contextmanager
def output_folder(out: Path | None, root: Path, *, name: str = "exp", flag: str = "--out") -> Iterator[Path]:
    """Yield ``out`` (created) or a fresh run folder ``root/name``; undo the creation if the body fails.

    A command that fails after making its folder (bad data found, weights that will not load)
    removes the folders it created, as long as nothing was written into them.
    """
    check_dir_target(out if out is not None else root, flag)
    created = _missing_folders(Path(out if out is not None else root))
    try:
        if out is None:
            path = next_run_dir(root, name, flag)
            created.insert(0, path)
        else:
            path = Path(out)
            path.mkdir(parents=True, exist_ok=True)
        yield path
    except BaseException:
        for folder in created:  # deepest first, so a parent is empty once its child is gone
            with contextlib.suppress(OSError):
                folder.rmdir()  # refuses a folder with anything in it
        raise


def next_run_dir(root: Path, name: str = "exp", flag: str = "--project") -> Path:
    """Create and return ``root/name``, or ``name2``, ``name3``... if it is taken.

    Race-free: ``mkdir`` without ``exist_ok`` either creates the folder or fails, so two
    processes starting at once can never be handed the same one.
    """
    check_run_name(name)
    check_dir_target(root, flag)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Lenet5Error(f"{flag} {root}: cannot create the folder ({_reason(exc)})") from None
    number = 1
    while True:
        path = root / (name if number == 1 else f"{name}{number}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            number += 1
        except OSError as exc:
            raise Lenet5Error(f"{flag} {root}: cannot create a run folder there ({_reason(exc)})") from None


def read_bytes(path: Path, error: type[Lenet5Error] = Lenet5Error) -> bytes:
    """The contents of regular file ``path``; any problem becomes one ``error`` naming it.

    The file is opened non-blocking and checked with fstat before reading, so a FIFO or a
    device is refused instead of hanging, with no race between the check and the read. The
    error carries ``path`` and ``reason`` attributes for callers that word it their own way.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise _failure(error, path, exc) from None
    try:
        problem = _not_regular(os.fstat(fd).st_mode)
        if problem:
            raise _failure(error, path, problem)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    except OSError as exc:
        raise _failure(error, path, exc) from None
    finally:
        os.close(fd)


def read_text(path: Path, error: type[Lenet5Error] = Lenet5Error) -> str:
    """Like :func:`read_bytes`, decoded as UTF-8 (a binary file is a clear error too)."""
    try:
        return read_bytes(path, error).decode("utf-8")
    except UnicodeDecodeError:
        raise _failure(error, path, "not a UTF-8 text file") from None


def check_regular_file(path: Path, error: type[Lenet5Error] = Lenet5Error) -> Path:
    """Raise ``error`` unless ``path`` is a readable regular file (for readers that open it themselves)."""
    try:
        problem = _not_regular(os.stat(path).st_mode)
    except OSError as exc:
        raise _failure(error, path, exc) from None
    if problem:
        raise _failure(error, path, problem)
    if not os.access(path, os.R_OK):
        raise _failure(error, path, f"cannot read the file ({os.strerror(errno.EACCES)})")
    return path


def _not_regular(mode: int) -> str | None:
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(mode):
        return "not a regular file (a pipe, socket or device)"
    return None


def _failure(error: type[Lenet5Error], path: Path, problem: OSError | str) -> Lenet5Error:
    """``error("PATH: reason")`` with ``path`` and ``reason`` attached."""
    if isinstance(problem, FileNotFoundError):
        reason = "file not found"
    elif isinstance(problem, OSError):
        reason = f"cannot read the file ({_reason(problem)})"
    else:
        reason = problem
    exc = error(f"{path}: {reason}")
    exc.path, exc.reason = Path(path), reason
    return exc


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def write_csv(path: Path, rows: list[dict]) -> None:
    """Write rows (dicts with the same keys) as CSV, atomically."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def read_csv(path: Path) -> list[dict[str, float]]:
    """A table of numbers written by :func:`write_csv`; a damaged one is one clear error."""
    try:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(read_text(path)))]
    except (ValueError, TypeError, csv.Error) as exc:  # a non-number, a short row (None), a bad quote
        raise Lenet5Error(f"{path}: not a table of numbers ({exc})") from None


def read_json(path: Path) -> Any:
    """A JSON file; unreadable or invalid JSON is one error naming the file."""
    try:
        return json.loads(read_text(path))
    except ValueError as exc:
        raise Lenet5Error(f"{path}: not valid JSON ({exc})") from None


def natural_key(path: Path) -> tuple:
    """Sort exp2 before exp10."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name))
