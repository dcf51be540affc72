"""Run folders: runs/train/exp, exp2, exp3 ... and the files each one holds."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from .checkpoint import atomic_write_text


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
