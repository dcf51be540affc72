"""File safety in one place: atomic writes, CSV tables and run folders.

Every file the tool writes goes through :func:`atomic_write_bytes`, so a crash leaves either
the old file or the new one, never half of one. Run folders (``runs/train/exp``, ``exp2``...)
are made here too, under the roots named in :data:`RUN_ROOTS`.
"""

from __future__ import annotations

import csv
import io
import os
import re
import uuid
from pathlib import Path

RUNS = Path("runs")
# Where each command puts its run folders: runs/train/exp, runs/eval/exp, ...
TRAIN_RUNS = RUNS / "train"
EVAL_RUNS = RUNS / "eval"
INSPECT_RUNS = RUNS / "inspect"
COMPARE_RUNS = RUNS / "compare"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name beside the target (same filesystem, so the rename is atomic); opened with
    # plain open() so the file gets the usual umask permissions, unlike mkstemp's 0600.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def next_run_dir(root: Path, name: str = "exp") -> Path:
    """Create and return ``root/name``, or ``name2``, ``name3``... if it is taken."""
    root.mkdir(parents=True, exist_ok=True)
    taken = {p.name for p in root.iterdir()}
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name}{number}"
    path = root / candidate
    path.mkdir()
    return path


def write_csv(path: Path, rows: list[dict]) -> None:
    """Write rows (dicts with the same keys) as CSV, atomically."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def read_csv(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def natural_key(path: Path) -> tuple:
    """Sort exp2 before exp10."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name))
