"""Separate ``lenet5 compare`` processes sharing one study, as machines would: PostgreSQL and SQLite.

Each process gets its own project folder (its own disk, as on another machine) and the same
``--storage`` URL. Every grid point must be trained exactly once across them, a process
killed mid-trial must be covered by the other, and the report must not depend on who ran what.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from postgres_server import postgres  # noqa: F401 (the fixture)

GRID = ["compare", "--grid", "activation=tanh,relu", "--seeds", "2", "--name", "shared", "--optimizer", "adam",
        "--lr", "0.003", "--epochs", "1", "--train-subset", "300", "--val-size", "100", "--batch-size", "32",
        "--threads", "1"]
POINTS = {(a, s) for a in ("activation=tanh", "activation=relu") for s in ("0", "1")}
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
RUN_TIMEOUT = 300  # seconds for a whole compare on a busy 2-core machine
START_WAIT = 240  # seconds to wait for a process's first trial before giving up


def start(project: Path, url: str) -> subprocess.Popen:
    project.mkdir(parents=True, exist_ok=True)
    log = open(project / "compare.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "lenet5", *GRID, "--project", str(project), "--storage", url],
                            env=ENV, stdout=log, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen, project: Path) -> str:
    process.wait(timeout=RUN_TIMEOUT)
    return (project / "compare.log").read_text()


def started(project: Path) -> list[tuple[str, str]]:
    path = project / "shared" / "started.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return [tuple(line.split("\t")[:2]) for line in lines]


def results(report: str) -> list[str]:
    """The verdicts and the result table without its timing columns (wall time differs run to run)."""
    lines = [line for line in report.splitlines() if line.startswith("- best variant")]
    for line in report.splitlines():
        if line.startswith("| activation="):
            lines.append("|".join(line.split("|")[:-3]))  # drop "s to val acc" and "wall time"
    return lines


def run_pair(tmp_path: Path, url: str) -> tuple[list[str], list[list[tuple[str, str]]]]:
    """Two compare processes started at the same moment on one (empty) study store."""
    projects = [tmp_path / "machine1", tmp_path / "machine2"]
    processes = [start(project, url) for project in projects]
    logs = [finish(process, project) for process, project in zip(processes, projects)]
    assert [p.returncode for p in processes] == [0, 0], "\n\n".join(logs)
    reports = [(project / "shared" / "report.md").read_text() for project in projects]
    assert results(reports[0]) == results(reports[1])
    assert "| activation=tanh | 2/2 |" in reports[0] and "| activation=relu | 2/2 |" in reports[0]
    return results(reports[0]), [started(project) for project in projects]


def assert_each_point_once_by_both(starts: list[list[tuple[str, str]]]) -> None:
    assert all(starts), f"a process trained nothing: {starts}"
    everything = [point for mine in starts for point in mine]
    assert sorted(everything) == sorted(POINTS), f"a point ran twice or never: {starts}"


@pytest.fixture(scope="module")
def sqlite_results(tmp_path_factory) -> list[str]:
    """Two processes on one SQLite file: each point once, both train; the reference report."""
    tmp_path = tmp_path_factory.mktemp("sqlite_pair")
    report, starts = run_pair(tmp_path, f"sqlite:///{tmp_path / 'shared.db'}")
    assert_each_point_once_by_both(starts)
    return report


def test_two_processes_share_a_sqlite_study(sqlite_results):
    assert len(sqlite_results) == 3  # one verdict, two variants


def test_two_processes_share_a_postgres_study_and_report_as_sqlite_does(tmp_path, postgres, sqlite_results):  # noqa: F811
    report, starts = run_pair(tmp_path, postgres.create_database())
    assert_each_point_once_by_both(starts)
    assert report == sqlite_results  # same seeds, same numbers, whichever store and worker


@pytest.mark.parametrize("backend", ["postgres", pytest.param("sqlite", marks=pytest.mark.slow)])
def test_killing_one_process_mid_trial_lets_the_other_finish(tmp_path, request, backend):
    url = request.getfixturevalue("postgres").create_database() if backend == "postgres" \
        else f"sqlite:///{tmp_path / 'shared.db'}"
    victim_dir, survivor_dir = tmp_path / "victim", tmp_path / "survivor"
    victim, survivor = start(victim_dir, url), start(survivor_dir, url)
    deadline = time.monotonic() + START_WAIT
    while not started(victim_dir) and time.monotonic() < deadline and victim.poll() is None:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)  # mid-trial, no chance to clean up
    victim.wait()
    killed = started(victim_dir)
    assert len(killed) == 1, (victim_dir / "compare.log").read_text()
    log = finish(survivor, survivor_dir)
    assert survivor.returncode == 0, log
    report = (survivor_dir / "shared" / "report.md").read_text()
    assert "| activation=tanh | 2/2 |" in report and "| activation=relu | 2/2 |" in report
    # The survivor trained everything, including the killed point, and nothing twice.
    assert sorted(started(survivor_dir)) == sorted(POINTS)


def test_workers_started_together_on_an_empty_database_all_come_up(postgres):  # noqa: F811
    """Four processes open the same new study at one instant: the schema race must not kill any."""
    url = postgres.create_database()
    at = time.time() + 5  # long enough for every interpreter to import optuna first
    script = ("import sys, time; from lenet5.compare.store import open_optuna_study; "
              "from lenet5.compare.studies import grid_study; study = grid_study(['lr=0.1,0.2'], 'race'); "
              f"time.sleep(max(0.0, {at} - time.time())); "
              "open_optuna_study(study, sys.argv[1], {'grid': 1}); print('up')")
    processes = [subprocess.Popen([sys.executable, "-c", script, url], env=ENV, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=RUN_TIMEOUT)[0] for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, "\n".join(outputs)
    assert all(out.strip().endswith("up") for out in outputs)


def test_the_readme_url_works_as_written(postgres, tmp_path, capsys):  # noqa: F811
    from lenet5.compare.store import open_storage

    url = postgres.create_database()
    assert re.fullmatch(r"postgresql://lenet5@127\.0\.0\.1:\d+/t_\w+", url)
    assert open_storage(url).get_all_studies() == []
