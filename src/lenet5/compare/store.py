"""The trial store: an Optuna study that holds every trial of a comparison and its results.

The grid (variant x seed) is a queue: each point that nobody has done or is doing is put in
the Optuna study with ``enqueue_trial``, and a worker claims one by asking for a trial, which
the storage pops atomically. Two workers that queue the same missing point at the same moment
(two machines starting together) make two trials for it; the one with the lower trial number
trains it and the other stands down (:func:`first_claim`), so every point is trained once.

A SQLite file next to the report is the default store; a database URL
(``postgresql://user@host/db``) lets several machines share one study. Only Optuna's public
API is used. Names: ``study`` is this project's :class:`~lenet5.compare.studies.Study` (what
to compare); ``optuna_study`` is the Optuna study that stores its trials.
"""

from __future__ import annotations

import datetime
import json
import os
import random
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
CLAIM_POLL = 0.25  # seconds between looks at a claim that is not signed yet
SQLITE_TIMEOUT = 120  # seconds a writer waits for another process's lock before giving up
CONNECT_TIMEOUT = 10  # seconds to reach a database server before saying it cannot be reached
SCHEMA_ATTEMPTS = 6  # tries to create the tables while other workers may be creating them too
DONE_STATUSES = ("finished", "diverged")
GRID_POINT = "grid_point"  # the user attribute that names a queued trial's [variant, seed]
# URL schemes without a driver, and the driver the ``postgres`` extra installs (psycopg 3).
POSTGRES_SCHEMES = ("postgresql", "postgres")
POSTGRES_DRIVER = "postgresql+psycopg"


class StoreError(Lenet5Error):
    """The trial store cannot be opened or belongs to a different comparison."""


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
    # Heartbeats are marked experimental; they are what tells a dead machine's trial.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def database_url(url: str) -> str:
    """``url`` with a driver SQLAlchemy can load: ``postgresql://`` means psycopg 3."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in POSTGRES_SCHEMES:
        require("psycopg", "postgres", f"the study store {scheme}://...")
        return f"{POSTGRES_DRIVER}://{rest}"
    return url


def open_storage(url: str):
    """An RDB storage with a trial heartbeat, so trials of a dead machine get failed and retried.

    Raises:
        StoreError: the server cannot be reached within :data:`CONNECT_TIMEOUT`, or the
            tables were made by an Optuna version this one cannot read.
    """
    optuna = _optuna()
    url = database_url(url)
    engine_kwargs = _engine_kwargs(url)
    if not url.startswith("sqlite"):
        _check_reachable(url, engine_kwargs)
    storage = _create_tables(optuna, url, engine_kwargs)
    if url.startswith("sqlite"):
        _serialize_sqlite(storage.engine)
    return storage


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_TIMEOUT}}
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT}}
    return {}


def _safe(url: str) -> str:
    """The URL as it may be printed: without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _check_reachable(url: str, engine_kwargs: dict[str, Any]) -> None:
    """One connection with a timeout, so an unreachable server is one line, not a hang or a traceback."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        engine = sqlalchemy.create_engine(url, **engine_kwargs)
    except Exception as exc:  # a malformed URL or a dialect SQLAlchemy does not know
        raise StoreError(f"cannot open study store {url!r}: {exc.__class__.__name__}: {exc}") from None
    where = f"{parsed.host or 'localhost'}{f':{parsed.port}' if parsed.port else ''}"
    try:
        with engine.connect():
            pass
    except Exception as exc:  # the driver's OperationalError, a DNS failure, a timeout
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StoreError(f"cannot reach the study database on {where} ({_safe(url)}): {reason}") from None
    finally:
        engine.dispose()


def _create_tables(optuna, url: str, engine_kwargs: dict[str, Any]):
    """Open the storage, creating Optuna's tables if needed, retried while other workers race.

    Workers started together on an empty database all try to create the tables (PostgreSQL:
    ``CREATE TYPE``, then the version rows); all but one fail on a duplicate. A retry finds
    the tables made and opens them.
    """
    import sqlalchemy.exc

    for attempt in range(1, SCHEMA_ATTEMPTS + 1):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_INTERVAL,
                                              grace_period=GRACE_PERIOD)
        except RuntimeError as exc:  # Optuna's own schema check: tables from another version
            raise StoreError(f"study store {_safe(url)} was made by an incompatible Optuna version: "
                             f"{' '.join(str(exc).split())}") from None
        except sqlalchemy.exc.SQLAlchemyError as exc:
            if attempt == SCHEMA_ATTEMPTS:
                reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
                raise StoreError(f"cannot open study store {_safe(url)}: {reason}") from None
            time.sleep(random.uniform(0.1, 0.5) * attempt)  # jitter: the racers must not collide again
    raise AssertionError("unreachable")


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


def open_optuna_study(study: Study, url: str, fingerprint: dict[str, Any]):
    """Create or load the Optuna study that stores ``study``'s trials; refuse one started with other options."""
    optuna = _optuna()
    # The queue decides every trial's parameters; the sampler is never consulted for them.
    optuna_study = optuna.create_study(study_name=study.name, storage=open_storage(url),
                                       sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize",
                                       load_if_exists=True)
    stored = optuna_study.user_attrs.get("fingerprint")
    if stored is None:
        optuna_study.set_user_attr("fingerprint", fingerprint)
    elif json.dumps(stored, sort_keys=True) != json.dumps(fingerprint, sort_keys=True):
        raise StoreError(f"study {study.name!r} in {url} was started with different options; "
                         f"re-run it with the same options, or pass --name to start a new one")
    return optuna_study


def point_of(trial) -> tuple[str, int] | None:
    """The (variant, seed) a stored trial is for: its queue label, or its parameters once it ran."""
    point = trial.user_attrs.get(GRID_POINT)
    if point is not None:
        return str(point[0]), int(point[1])
    params = trial.params
    if "variant" not in params or "seed" not in params:
        return None
    return str(params["variant"]), int(params["seed"])


def _is_done(trial) -> bool:
    from optuna.trial import TrialState

    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) and trial.user_attrs.get("status") in DONE_STATUSES


def _running(optuna_study, number: int):
    """The stored trial ``number`` if it is still running, re-read from the database."""
    from optuna.trial import TrialState

    return next((t for t in optuna_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                 if t.number == number), None)


def _is_dead(optuna_study, trial) -> bool:
    """Whether a RUNNING trial's process is gone, as far as this machine can tell.

    A worker writes its host and pid right after claiming a trial; one that has not done so
    ``CLAIM_GRACE`` seconds after the claim died in between. A trial of another machine is
    left to the heartbeat.
    """
    attrs = trial.user_attrs
    started = trial.datetime_start or datetime.datetime.now()
    while "pid" not in attrs:
        if (datetime.datetime.now() - started).total_seconds() > CLAIM_GRACE:
            return True
        time.sleep(CLAIM_POLL)
        current = _running(optuna_study, trial.number)
        if current is None:  # it finished meanwhile
            return False
        attrs = current.user_attrs
    if attrs.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(attrs["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


def queue_missing(optuna_study, study: Study, seeds: int) -> tuple[int, int, int]:
    """Fail trials whose process died, queue every grid point nobody has done or is doing.

    Returns:
        (points done, points being trained now, points queued now).
    """
    optuna = _optuna()
    from optuna.trial import TrialState

    optuna.storages.fail_stale_trials(optuna_study)  # other machines' trials, by heartbeat
    taken: set[tuple[str, int]] = set()
    done: set[tuple[str, int]] = set()
    running: set[tuple[str, int]] = set()
    for trial in optuna_study.get_trials(deepcopy=False):
        point = point_of(trial)
        if point is None:
            continue
        if trial.state == TrialState.RUNNING and _is_dead(optuna_study, trial):
            # Killed without a chance to say so (SIGKILL, power cut): mark it and retry the point.
            optuna_study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            continue
        if _is_done(trial):
            done.add(point)
        elif trial.state in (TrialState.RUNNING, TrialState.WAITING):
            taken.add(point)
            if trial.state == TrialState.RUNNING:
                running.add(point)
    queued = 0
    for label in study.labels():
        for seed in range(seeds):
            if (label, seed) not in done | taken:
                optuna_study.enqueue_trial({"variant": label, "seed": seed}, user_attrs={GRID_POINT: [label, seed]})
                queued += 1
    in_grid = {(label, seed) for label in study.labels() for seed in range(seeds)}
    return len(done & in_grid), len((running - done) & in_grid), queued


def first_claim(optuna_study, number: int, point: tuple[str, int]) -> bool:
    """Whether trial ``number`` is the one to train ``point``: no lower-numbered trial has it.

    The lowest-numbered trial of a point that is queued, running or done wins; every trial
    is stored (queued) before anyone claims it, so all claimants agree on which it is.
    """
    from optuna.trial import TrialState

    for other in optuna_study.get_trials(deepcopy=False):
        if other.number >= number or point_of(other) != point:
            continue
        if other.state in (TrialState.WAITING, TrialState.RUNNING) or _is_done(other):
            return False
    return True


def waiting_count(optuna_study) -> int:
    from optuna.trial import TrialState

    return len(optuna_study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def trial_records(optuna_study, study: Study, seeds: int) -> list[TrialRecord]:
    """The done trials of the current grid, one per point (the first that finished)."""
    from optuna.trial import TrialState

    records: dict[tuple[str, int], TrialRecord] = {}
    labels = set(study.labels())
    for trial in optuna_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        point, attrs = point_of(trial), trial.user_attrs
        if point is None or point in records or point[0] not in labels or point[1] >= seeds:
            continue
        if attrs.get("status") not in DONE_STATUSES:
            continue
        records[point] = TrialRecord(point[0], point[1], attrs["status"], attrs.get("summary", {}),
                                     attrs.get("history", []), attrs.get("extras", {}))
    return sorted(records.values(), key=lambda r: (study.labels().index(r.variant), r.seed))
