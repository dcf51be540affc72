"""Run a study's trials: each one a normal training run with its own run folder.

``run_compare`` queues the grid points that are not done yet, then runs ``workers``
processes (or the current one) that each pull points from the store until it is empty, and
then wait for the points other workers (or machines) are still training, taking over any
whose worker died. An interrupted compare therefore resumes where it stopped: finished
trials stay finished, and a trial killed midway continues from its last finished epoch (its
run folder keeps state.pt).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .store import (
    GRID_POINT,
    default_url,
    first_claim,
    open_optuna_study,
    queue_missing,
    waiting_count,
)
from .studies import Study, folder_name

STARTED_LOG = "started.log"  # one line per trial start, appended: proof of what ran when
POLL_SECONDS = 2.0  # how often an idle worker looks at the trials others are still training


@dataclass
class CompareJob:
    """Everything a worker process needs to run trials (plain data, so it pickles)."""

    study: Study
    seeds: int
    root: Path
    url: str
    threads: int = 1

    @property
    def study_dir(self) -> Path:
        return self.root / self.study.name

    def fingerprint(self) -> dict[str, Any]:
        """What must not change between a compare and its resumption: what the trials train.

        Claims and wording may change; a report is re-rendered from the stored results.
        """
        trained = {"base": self.study.base, "variants": [[v.label, v.options] for v in self.study.variants]}
        return json.loads(json.dumps(trained, default=str))

    def run_dir(self, label: str, seed: int) -> Path:
        index = self.study.labels().index(label)
        return self.study_dir / "trials" / f"{index}-{folder_name(label)}" / f"seed{seed}"


def run_compare(job: CompareJob, workers: int = 1, log: Callable[[str], None] = print) -> None:
    """Run every grid point of ``job`` that is not done yet, with ``workers`` processes."""
    job.study_dir.mkdir(parents=True, exist_ok=True)
    job.url = job.url or default_url(job.study_dir)
    optuna_study = open_optuna_study(job.study, job.url, job.fingerprint())
    done, running, queued = queue_missing(optuna_study, job.study, job.seeds)
    total = len(job.study.variants) * job.seeds
    elsewhere = f", {running} running elsewhere" if running else ""
    log(f"compare {job.study.name}: {total} trials ({len(job.study.variants)} variants x {job.seeds} seeds); "
        f"{done} done{elsewhere}, {queued} queued now; store {job.url}")
    if workers <= 1:
        work(job, log)
        return
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch thread pools
    processes = [context.Process(target=work, args=(job,), name=f"worker{i + 1}") for i in range(workers)]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        for process in processes:
            process.join()
        raise
    failed = [p.name for p in processes if p.exitcode != 0]
    if failed:
        from ..errors import Lenet5Error

        raise Lenet5Error(f"{', '.join(failed)} stopped with an error (see above); re-run the same command "
                          f"to retry the unfinished trials")


def work(job: CompareJob, log: Callable[[str], None] | None = None) -> None:
    """One worker: train queued grid points until none is queued or being trained elsewhere."""
    import torch

    torch.set_num_threads(job.threads)
    name = multiprocessing.current_process().name
    log = log or (lambda line: print(f"[{name}] {line}", flush=True))
    optuna_study = open_optuna_study(job.study, job.url, job.fingerprint())
    while True:
        if waiting_count(optuna_study) > 0:
            # One trial per call: optimize pops the queue and keeps the trial's heartbeat.
            optuna_study.optimize(lambda trial: run_trial(trial, job, log), n_trials=1, gc_after_trial=False)
            continue
        # Nothing queued: requeue the points of dead workers; wait while others still train.
        _, running, queued = queue_missing(optuna_study, job.study, job.seeds)
        if queued == 0 and running == 0:
            return
        if queued == 0:
            time.sleep(POLL_SECONDS)


def run_trial(trial, job: CompareJob, log: Callable[[str], None]) -> float:
    """Optuna objective: train one grid point; returns its test accuracy."""
    import optuna

    from ..errors import NonFiniteLossError
    from ..files import read_csv
    from ..train import fit

    point = trial.user_attrs.get(GRID_POINT)
    if point is None:
        # Not from the queue: another worker took the last point between our check and ask.
        trial.set_user_attr("status", "skipped")
        raise optuna.TrialPruned("no queued grid point left")
    if not first_claim(trial.study, trial.number, tuple(point)):
        # Two workers queued this point at once; the lower-numbered trial trains it.
        trial.set_user_attr("status", "duplicate")
        raise optuna.TrialPruned(f"grid point {point} is another trial's")
    trial.set_user_attr("host", socket.gethostname())  # sign the claim first: see store._is_dead
    trial.set_user_attr("pid", os.getpid())
    # The queued values: suggest records them as the trial's parameters.
    label = trial.suggest_categorical("variant", job.study.labels())
    seed = trial.suggest_categorical("seed", list(range(job.seeds)))
    config = job.study.config(label, seed, {"threads": job.threads})
    run_dir = job.run_dir(label, seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(job.study_dir / STARTED_LOG, "a") as started:  # O_APPEND: whole lines, even from many processes
        started.write(f"{label}\t{seed}\t{trial.number}\t{os.getpid()}\t{time.time():.3f}\n")
    resume = _can_resume(run_dir, config)
    log(f"trial {trial.number}: {label!r} seed {seed}{' (resuming)' if resume else ''} -> {run_dir}")
    history: list[dict[str, float]] = []

    def on_epoch_end(row: dict[str, float]) -> None:
        history.append(row)
        trial.set_user_attr("history", history)  # live progress, visible to every machine

    started_at = time.perf_counter()
    try:
        summary = fit(config, run_dir, resume=resume, on_epoch_end=on_epoch_end, log=lambda _: None)
    except NonFiniteLossError as exc:
        # Divergence is a result, not a crash: record it and never retry it.
        trial.set_user_attr("summary", {"status": "diverged", "error": str(exc),
                                        "wall_seconds": time.perf_counter() - started_at})
        trial.set_user_attr("history", _rows(run_dir, read_csv))
        trial.set_user_attr("status", "diverged")
        log(f"trial {trial.number}: {label!r} seed {seed} diverged ({exc})")
        raise optuna.TrialPruned(str(exc)) from None
    summary["wall_seconds"] = time.perf_counter() - started_at
    trial.set_user_attr("history", _rows(run_dir, read_csv))
    trial.set_user_attr("extras", measure_extras(job.study.extras, run_dir, config))
    trial.set_user_attr("summary", _finite(summary))
    trial.set_user_attr("status", "finished")
    log(f"trial {trial.number}: {label!r} seed {seed} test accuracy {summary['test_accuracy']:.2%} "
        f"in {summary['wall_seconds']:.0f} s")
    return float(summary["test_accuracy"])


def _can_resume(run_dir: Path, config) -> bool:
    """A killed trial's folder continues from its last epoch if it was training the same config."""
    config_path, state_path = run_dir / "config.json", run_dir / "state.pt"
    if not (config_path.is_file() and state_path.is_file()):
        return False
    return json.loads(config_path.read_text()) == json.loads(config.to_json())


def _rows(run_dir: Path, read_csv) -> list[dict[str, float]]:
    path = run_dir / "metrics.csv"
    return [_finite(row) for row in read_csv(path)] if path.is_file() and path.stat().st_size else []


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN/inf: store them as None."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()}


def measure_extras(names: tuple[str, ...], run_dir: Path, config) -> dict[str, float]:
    """Per-study measurements beyond fit's summary (see :mod:`lenet5.compare.extras`)."""
    if not names:
        return {}
    from .extras import EXTRAS

    return {name: EXTRAS[name](run_dir, config) for name in names}
