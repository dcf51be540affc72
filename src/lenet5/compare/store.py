"""The study store: an Optuna study that holds every trial of a comparison and its results.

Optuna's GridSampler owns the grid (variant x seed). Each grid point is put in the study's
queue (``enqueue_trial``) and a worker claims it by popping the queue, which the storage does
atomically; so worker processes, or machines sharing one database URL, never run a point
twice. (GridSampler left to itself hands an unfinished point to a second worker once every
point has started.) A SQLite file next to the report is the default store; any SQLAlchemy
URL (``postgresql://...``, ``mysql://...``) lets several machines share one study.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Lenet5Error
from ..extras import require
from .studies import Study

STORE_FILE = "study.db"
# Another machine's trial counts as dead once its heartbeat is this old (seconds).
HEARTBEAT_INTERVAL, GRACE_PERIOD = 30, 120
CLAIM_GRACE = 10  # seconds a worker may take between claiming a trial and signing it (host, pid)
SQLITE_TIMEOUT = 120  # seconds a writer waits for another process's lock before giving up
DONE_STATUSES = ("finished", "diverged")


class StoreError(Lenet5Error):
    """The study store cannot be opened or belongs to a different comparison."""


@dataclass
class TrialRecord:
    """One finished (or diverged) trial as the report sees it."""

    variant: str
    seed: int
    status: str
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    extras: dict[str, float] = field(default_factory=dict)


def default_url(study_dir: Path) -> str:
    return f"sqlite:///{(study_dir / STORE_FILE).resolve()}"


def _optuna():
    import warnings

    optuna = require("optuna", "compare", "lenet5 compare")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats and their retry callback are marked experimental; they are what we need.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def open_storage(url: str):
    """An RDB storage with a trial heartbeat, so trials of a dead machine get failed and retried."""
    optuna = _optuna()
    engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT}} if url.startswith("sqlite") else {}
    try:
        storage = optuna.storages.RDBStorage(
            url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_INTERVAL, grace_period=GRACE_PERIOD,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback())
    except Exception as exc:  # SQLAlchemy raises many types for a bad URL or unreachable server
        raise StoreError(f"cannot open study store {url!r}: {exc.__class__.__name__}: {exc}") from None
    if url.startswith("sqlite"):
        _serialize_sqlite(storage.engine)
    return storage


def _serialize_sqlite(engine) -> None:
    """Make every SQLite transaction take the write lock when it begins.

    Claiming a queued trial reads its state and then writes RUNNING. A server database locks
    the row (SELECT ... FOR UPDATE); SQLite ignores that, so two processes could both read
    WAITING and both run the trial. BEGIN IMMEDIATE makes the second wait and then read RUNNING.
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _manual_transactions(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN itself

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the hooks existed must not be reused


def grid_space(study: Study, seeds: int) -> dict[str, list[Any]]:
    return {"variant": study.labels(), "seed": list(range(seeds))}


def open_study(study: Study, seeds: int, url: str, fingerprint: dict[str, Any]):
    """Create or load the Optuna study; refuse one that was started with other options."""
    optuna = _optuna()
    sampler = optuna.samplers.GridSampler(grid_space(study, seeds), seed=0)
    store = optuna.create_study(study_name=study.name, storage=open_storage(url), sampler=sampler,
                                direction="maximize", load_if_exists=True)
    stored = store.user_attrs.get("fingerprint")
    if stored is None:
        store.set_user_attr("fingerprint", fingerprint)
    elif json.dumps(stored, sort_keys=True) != json.dumps(fingerprint, sort_keys=True):
        raise StoreError(f"study {study.name!r} in {url} was started with different options; "
                         f"re-run it with the same options, or pass --name to start a new one")
    return store


def _is_dead(store, trial) -> bool:
    """Whether a RUNNING trial's process is gone, as far as this machine can tell.

    A worker writes its host and pid right after claiming a trial; one that has not done so
    ``CLAIM_GRACE`` seconds after the claim died in between. A trial of another machine is
    left to the heartbeat.
    """
    attrs = trial.user_attrs
    if "pid" not in attrs:
        started = trial.datetime_start or datetime.datetime.now()
        wait = CLAIM_GRACE - (datetime.datetime.now() - started).total_seconds()
        if wait > 0:
            time.sleep(wait)
        attrs = store._storage.get_trial(trial._trial_id).user_attrs
        if "pid" not in attrs:
            return True
    if attrs.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(attrs["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


def point_of(trial) -> tuple[str, int] | None:
    params = trial.params or trial.system_attrs.get("fixed_params") or {}
    if "variant" not in params or "seed" not in params:
        return None
    return str(params["variant"]), int(params["seed"])


def queue_missing(store, study: Study, seeds: int) -> tuple[int, int]:
    """Fail trials whose process died here, queue every grid point nobody has or is doing.

    Returns:
        (points already done, points queued now).
    """
    optuna = _optuna()
    from optuna.trial import TrialState

    optuna.storages.fail_stale_trials(store)  # other machines' trials, by heartbeat
    taken: set[tuple[str, int]] = set()
    done: set[tuple[str, int]] = set()
    for trial in store.get_trials(deepcopy=False):
        point = point_of(trial)
        if point is None:
            continue
        if trial.state == TrialState.RUNNING and _is_dead(store, trial):
            # Killed without a chance to say so (SIGKILL, power cut): mark it and retry the point.
            store._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            continue
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED) and \
                trial.user_attrs.get("status") in DONE_STATUSES:
            done.add(point)
        elif trial.state in (TrialState.RUNNING, TrialState.WAITING):
            taken.add(point)
    queued = 0
    for label in study.labels():
        for seed in range(seeds):
            if (label, seed) not in done | taken:
                store.enqueue_trial({"variant": label, "seed": seed})
                queued += 1
    return len({p for p in done if p[1] < seeds}), queued


def mark_grid_point(store, trial_id: int, label: str, seed: int) -> None:
    """Tell GridSampler which of its grid points a queued trial is.

    Queued trials bypass the sampler's own choice, so it would not count them as visited;
    with these two attributes (the ones it sets on trials it samples itself) it does, and its
    ``is_exhausted`` and end-of-grid stop agree with the queue.
    """
    sampler = store.sampler
    point = {"variant": label, "seed": seed}
    grid_id = sampler._all_grids.index(tuple(point[name] for name in sampler._param_names))
    store._storage.set_trial_system_attr(trial_id, "search_space", sampler._search_space)
    store._storage.set_trial_system_attr(trial_id, "grid_id", grid_id)


def waiting_count(store) -> int:
    from optuna.trial import TrialState

    return len(store.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def trial_records(store, study: Study, seeds: int) -> list[TrialRecord]:
    """The done trials of the current grid, one per point (the first that finished)."""
    from optuna.trial import TrialState

    records: dict[tuple[str, int], TrialRecord] = {}
    labels = set(study.labels())
    for trial in store.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        point, attrs = point_of(trial), trial.user_attrs
        if point is None or point in records or point[0] not in labels or point[1] >= seeds:
            continue
        if attrs.get("status") not in DONE_STATUSES:
            continue
        records[point] = TrialRecord(point[0], point[1], attrs["status"], attrs.get("summary", {}),
                                     attrs.get("history", []), attrs.get("extras", {}))
    return sorted(records.values(), key=lambda r: (study.labels().index(r.variant), r.seed))
