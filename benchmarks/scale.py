"""Scaling out on one machine: DDP training processes, and compare workers on PostgreSQL.

Two measurements, each side by side in one run so the ratio survives a busy machine:

* training: ``lenet5 train`` as 1 process x 2 threads against ``lenet5 train --nproc 2`` (DDP,
  gloo) as 2 processes x 1 thread, same seed, same global batch; 1 process x 1 thread for
  scale. img/s is training images
  over fit's own epoch ``seconds`` (validation included, process start and test set not).
  The arms alternate for ``--repeats`` rounds.
* studies: one ``lenet5 compare`` grid on a fresh PostgreSQL database, run by 1 compare
  process with 2 threads, then by 2 compare processes with 1 thread each (as two machines
  would), wall time from start until every process has exited.

A throwaway PostgreSQL server is started for the study part (``initdb``/``pg_ctl``, as the
tests do); where none can be had, that part says so and is skipped (or pass ``--skip-studies``).

    .venv/bin/python benchmarks/scale.py               # ~5 min on 2 cores
    .venv/bin/python benchmarks/scale.py --quick       # seconds-long smoke test
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the throwaway PostgreSQL server the tests use

ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
TRAIN_ARMS = {  # name: (extra flags, processes, threads per process)
    "1 process x 1 thread": (["--threads", "1"], 1, 1),  # what each DDP process has
    "1 process x 2 threads": (["--threads", "2"], 1, 2),
    "DDP 2 processes x 1 thread": (["--threads", "1", "--nproc", "2"], 2, 1),
}


def train_images_per_second(project: Path, name: str, flags: list[str], threads: int) -> tuple[float, int]:
    """Run one ``lenet5 train``; return (mean img/s over its epochs, training images)."""
    env = {**ENV, "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, "-m", "lenet5", "train", *flags, "--project", str(project), "--name", name]
    subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    run_dir = max(project.glob(f"{name}*"), key=lambda p: p.stat().st_mtime)
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    images = int(json.loads((run_dir / "config.json").read_text())["train_subset"])
    return statistics.mean(images / float(row["seconds"]) for row in rows), images


def bench_training(args: argparse.Namespace, scratch: Path) -> None:
    common = ["--train-subset", str(args.train_images), "--val-size", "1000", "--epochs", str(args.epochs),
              "--batch-size", "128", "--patience", "0"]
    speeds: dict[str, list[float]] = {arm: [] for arm in TRAIN_ARMS}
    for round_number in range(args.repeats):
        for arm, (flags, _, threads) in TRAIN_ARMS.items():
            speed, _ = train_images_per_second(scratch / "train", f"r{round_number}", common + flags, threads)
            speeds[arm].append(speed)
    base = statistics.mean(speeds["1 process x 2 threads"])
    print(f"\nTraining: {args.train_images:,} images x {args.epochs} epochs, batch 128, {args.repeats} rounds\n")
    print("| arm | processes x threads | img/s (mean ± std) | vs 1 process |")
    print("|---|---|---|---|")
    for arm, (_, processes, threads) in TRAIN_ARMS.items():
        values = speeds[arm]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"| {arm} | {processes} x {threads} | {statistics.mean(values):,.0f} ± {spread:,.0f} | "
              f"{statistics.mean(values) / base:.2f}x |")


def compare_wall_seconds(url: str, workers: int, threads: int, scratch: Path, grid: list[str]) -> float:
    """Start ``workers`` compare processes on one study at once; seconds until all have exited."""
    began = time.perf_counter()
    processes = [subprocess.Popen([sys.executable, "-m", "lenet5", *grid, "--threads", str(threads), "--project",
                                   str(scratch / f"compare-{workers}-{i}"), "--storage", url],
                                  env={**ENV, "OMP_NUM_THREADS": str(threads)}, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for i in range(workers)]
    for process in processes:
        _, err = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"compare failed: {err.strip()}")
    return time.perf_counter() - began


def bench_studies(args: argparse.Namespace, scratch: Path) -> None:
    from postgres_server import Unavailable, throwaway_server

    grid = ["compare", "--grid", "activation=tanh,relu", "--seeds", str(args.seeds), "--name", "scale",
            "--epochs", "1", "--train-subset", str(args.study_images), "--val-size", "500"]
    try:
        with throwaway_server() as server:
            one = compare_wall_seconds(server.create_database(), 1, 2, scratch, grid)
            two = compare_wall_seconds(server.create_database(), 2, 1, scratch, grid)
    except Unavailable as exc:
        print(f"\nStudies: skipped ({exc})")
        return
    trials = 2 * args.seeds
    print(f"\nStudies on PostgreSQL: {trials} trials of {args.study_images:,} images x 1 epoch\n")
    print("| workers | threads each | wall time | vs 1 worker |")
    print("|---|---|---|---|")
    print(f"| 1 | 2 | {one:.1f} s | 1.00x |")
    print(f"| 2 (separate processes) | 1 | {two:.1f} s | {one / two:.2f}x faster |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, not a measurement")
    parser.add_argument("--train-images", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3, help="seeds per variant in the study (2 variants)")
    parser.add_argument("--study-images", type=int, default=5000)
    parser.add_argument("--skip-studies", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.train_images, args.epochs, args.repeats, args.seeds, args.study_images = 1000, 1, 1, 1, 300
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; other load on the machine changes the numbers")
    with tempfile.TemporaryDirectory() as scratch:
        bench_training(args, Path(scratch))
        if not args.skip_studies:
            bench_studies(args, Path(scratch))


if __name__ == "__main__":
    main()
