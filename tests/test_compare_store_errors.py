"""Study stores that cannot be used: an unreachable server, tables from an older Optuna."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from contextlib import closing

import pytest

from lenet5.cli import main

GRID = ["compare", "--grid", "lr=0.1,0.2", "--seeds", "1", "--epochs", "1", "--train-subset", "100"]
OLD_OPTUNA_REVISION = "v3.0.0.a"  # the schema optuna 3.0 left; later versions need `optuna storage upgrade`


def one_error_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("lenet5: error: "), err
    return err


def test_a_refused_connection_is_one_line_naming_the_host(tmp_path, capsys):
    pytest.importorskip("psycopg")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(GRID + ["--project", str(tmp_path), "--storage", f"postgresql://me@127.0.0.1:{port}/db"]) == 2
    err = one_error_line(capsys.readouterr().err)
    assert f"cannot reach the study database on 127.0.0.1:{port}" in err and "refused" in err.lower()


def test_a_silent_server_times_out_in_one_line(tmp_path, capsys, monkeypatch):
    """A host that accepts the connection and never answers: the connect timeout ends the wait."""
    pytest.importorskip("psycopg")
    from lenet5.compare import store

    monkeypatch.setattr(store, "CONNECT_TIMEOUT", 2)  # libpq's smallest
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        held: list[socket.socket] = []
        threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True).start()
        began = time.monotonic()
        code = main(GRID + ["--project", str(tmp_path), "--storage",
                            f"postgresql://me:secret@127.0.0.1:{server.getsockname()[1]}/db"])
        elapsed = time.monotonic() - began
    assert code == 2 and elapsed < 20
    err = one_error_line(capsys.readouterr().err)
    assert "cannot reach the study database on 127.0.0.1:" in err and "timeout" in err.lower()
    assert "secret" not in err  # the password is never printed


def test_tables_from_an_older_optuna_are_a_clear_error(tmp_path, capsys):
    from lenet5.compare.store import open_storage

    db = tmp_path / "old.db"
    open_storage(f"sqlite:///{db}")  # today's schema, then marked as an older Optuna's
    with closing(sqlite3.connect(db)) as connection, connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (OLD_OPTUNA_REVISION,))
    assert main(GRID + ["--project", str(tmp_path), "--storage", f"sqlite:///{db}"]) == 2
    err = one_error_line(capsys.readouterr().err)
    assert "was made by an incompatible Optuna version" in err and "optuna storage upgrade" in err
