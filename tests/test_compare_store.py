"""The study store: resume after a kill, and workers that never run a grid point twice."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest
from test_compare import TINY, started_points

from lenet5.cli import main
from lenet5.compare.store import open_storage

GRID = ["compare", "--grid", "activation=tanh,relu", "--seeds", "2", "--optimizer", "adam", "--lr", "0.003", *TINY]
KILL_DEADLINE = 240  # seconds to wait for the first trial before giving up


def finished_points(url: str, name: str) -> set[tuple[str, int]]:
    """Grid points whose trial finished, read straight from the store."""
    import optuna
    from optuna.trial import TrialState

    try:
        study = optuna.load_study(study_name=name, storage=open_storage(url))
    except KeyError:  # the file exists but the compare has not created its study in it yet
        return set()
    return {(t.params["variant"], t.params["seed"]) for t in study.get_trials(states=(TrialState.COMPLETE,))}


def study_created(db_path: Path, name: str) -> bool:
    """Whether the compare has created its study, read without touching the schema.

    Opening an Optuna storage on a database whose tables are still being created would race
    the compare process for the schema, so wait (read-only) until the study row exists.
    """
    if not db_path.exists():
        return False
    try:
        with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)) as db:
            return db.execute("SELECT 1 FROM studies WHERE study_name = ?", (name,)).fetchone() is not None
    except sqlite3.OperationalError:  # tables not there yet, or locked for a moment
        return False


def test_killed_compare_resumes_without_repeating_finished_trials(tmp_path, capsys):
    args = GRID + ["--project", str(tmp_path), "--name", "resume"]
    study_dir = tmp_path / "resume"
    url = f"sqlite:///{study_dir / 'study.db'}"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    log_path = tmp_path / "compare.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "lenet5", *args], env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + KILL_DEADLINE
    done: set[tuple[str, int]] = set()
    try:
        while not done and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.3)
            if study_created(study_dir / "study.db", "resume"):
                done = finished_points(url, "resume")
    finally:
        process.send_signal(signal.SIGKILL)  # no chance to clean up, like a power cut
        process.wait()
    assert done, f"no trial finished before the deadline; exit {process.returncode}:\n{log_path.read_text()}"
    assert len(done) < 4, "the compare finished before it could be killed"
    folders = {p: next(study_dir.glob(f"trials/*{p[0]}/seed{p[1]}")) / "summary.json" for p in done}
    stamps = {p: path.stat().st_mtime_ns for p, path in folders.items()}

    code = main(args)
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{len(done)} done" in out
    assert finished_points(url, "resume") == {(a, s) for a in ("activation=tanh", "activation=relu") for s in (0, 1)}
    starts = Counter(started_points(study_dir))
    for point, path in folders.items():
        assert starts[(point[0], str(point[1]))] == 1, f"{point} was trained again"
        assert path.stat().st_mtime_ns == stamps[point]
    assert sorted(starts) == sorted((a, str(s)) for a in ("activation=tanh", "activation=relu") for s in (0, 1))
    report = (study_dir / "report.md").read_text()
    assert "| activation=tanh | 2/2 |" in report and "| activation=relu | 2/2 |" in report


def test_two_workers_share_the_grid_without_running_a_point_twice(tmp_path):
    assert main(GRID + ["--project", str(tmp_path), "--name", "two", "--workers", "2"]) == 0
    starts = started_points(tmp_path / "two")
    assert len(starts) == 4 and len(set(starts)) == 4
    lines = (tmp_path / "two" / "started.log").read_text().splitlines()
    assert str(os.getpid()) not in {line.split("\t")[3] for line in lines}  # trials ran in the workers
    assert len(finished_points(f"sqlite:///{tmp_path / 'two' / 'study.db'}", "two")) == 4


def _claim_all(url: str, results) -> None:
    """Claim queued points until the queue is empty (runs in a spawned process)."""
    import optuna

    study = optuna.load_study(study_name="race", storage=open_storage(url))
    claimed = []
    while True:
        trial = study.ask()
        point = trial.user_attrs.get("point")
        if point is None:  # the queue is empty: ask() made a fresh trial
            break
        claimed.append(point)
    results.put(claimed)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_concurrent_claims_on_sqlite_never_hand_out_a_point_twice(tmp_path):
    """Without the store's BEGIN IMMEDIATE, four processes claim some of 40 points twice."""
    import optuna

    url = f"sqlite:///{tmp_path / 'race.db'}"
    study = optuna.create_study(study_name="race", storage=open_storage(url))
    for point in range(40):
        study.enqueue_trial({}, user_attrs={"point": point})
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=_claim_all, args=(url, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    claimed = [point for _ in workers for point in results.get(timeout=120)]
    for worker in workers:
        worker.join()
    assert sorted(claimed) == list(range(40))


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # ask() by hand, as a worker does inside optimize
def test_only_dead_claims_are_failed_and_queued_again(tmp_path, monkeypatch):
    from optuna.trial import TrialState

    from lenet5.compare import store as store_module
    from lenet5.compare.store import open_optuna_study, queue_missing
    from lenet5.compare.studies import grid_study

    monkeypatch.setattr(store_module, "CLAIM_GRACE", 0.2)
    study = grid_study(["lr=0.1,0.2,0.3"], "claims")
    optuna_study = open_optuna_study(study, f"sqlite:///{tmp_path / 'claims.db'}", {"grid": 1})
    assert queue_missing(optuna_study, study, 1) == (0, 0, 3)
    unsigned = optuna_study.ask()  # a worker killed between claiming and signing
    live = optuna_study.ask()
    live.set_user_attr("host", socket.gethostname())
    live.set_user_attr("pid", os.getpid())  # this process: alive
    dead = optuna_study.ask()
    dead.set_user_attr("host", socket.gethostname())
    dead.set_user_attr("pid", _dead_pid())
    assert queue_missing(optuna_study, study, 1) == (0, 1, 2)
    states = {t.number: t.state for t in optuna_study.get_trials()}
    assert states[unsigned.number] == states[dead.number] == TrialState.FAIL
    assert states[live.number] == TrialState.RUNNING
    assert queue_missing(optuna_study, study, 1) == (0, 1, 0)  # queued once, not again


def _dead_pid() -> int:
    """The pid of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid
