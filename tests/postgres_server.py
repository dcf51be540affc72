"""A throwaway PostgreSQL server for tests: ``initdb`` and ``pg_ctl`` on a temp dir, loopback only.

Debian's ``postgresql`` package puts the server binaries under /usr/lib/postgresql/N/bin
(``.ci/run`` installs it when missing). PostgreSQL refuses to run as root, so as root the
server runs as the ``postgres`` user the package creates. Tests that need the server are
skipped, with the reason, only where none can be had.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN_GLOB = "/usr/lib/postgresql/*/bin"
USER = "lenet5"  # the database superuser initdb creates; trust auth on loopback, no password
START_TIMEOUT = 60  # seconds for pg_ctl to see the server accept connections


@dataclass
class Server:
    port: int

    def url(self, database: str) -> str:
        """The URL as the README writes it: ``postgresql://user@host/db``."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh, empty database on the server; returns its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, dbname="postgres", autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _binaries() -> Path | None:
    found = sorted(glob.glob(BIN_GLOB), key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)
    return Path(found[-1]) if found else None


def _as_server_user(command: list[str]) -> list[str]:
    """Run ``command`` as ``postgres`` when we are root (the server refuses root)."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Unavailable(Exception):
    """No PostgreSQL server can be started here; the message says why."""


@contextmanager
def throwaway_server() -> Iterator[Server]:
    """Start a PostgreSQL server on 127.0.0.1 in a temp dir; stop it and delete everything after.

    Raises:
        Unavailable: psycopg, the server binaries or a way to run them is missing, or it failed.
    """
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise Unavailable("the postgres extra is not installed: pip install -e '.[postgres]'") from None
    bin_dir = _binaries()
    if bin_dir is None:
        raise Unavailable(f"no PostgreSQL server binaries in {BIN_GLOB}: apt-get install -y postgresql")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        raise Unavailable("running as root without runuser: cannot start PostgreSQL as another user")
    home = Path(tempfile.mkdtemp(prefix="lenet5-pg-"))  # not pytest's tmp: the server user must reach it
    data, log = home / "data", home / "server.log"
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
    port = _free_port()
    try:
        setup = subprocess.run(_as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-U", USER,
                                                "--auth=trust", "--no-sync", "-E", "UTF8"]),
                               capture_output=True, text=True)
        if setup.returncode != 0:
            raise Unavailable(f"initdb failed: {setup.stderr.strip().splitlines()[-1:]}")
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {home} -c fsync=off -c max_connections=200"
        start = subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o",
                                                options, "-w", "-t", str(START_TIMEOUT), "start"]),
                               capture_output=True, text=True)
        if start.returncode != 0:
            raise Unavailable(f"PostgreSQL did not start: {log.read_text()[-500:] if log.exists() else start.stderr}")
        yield Server(port)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                           capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Server]:
    """A PostgreSQL server for the whole test session; the test is skipped, with why, if none can start."""
    with ExitStack() as stack:
        try:
            server = stack.enter_context(throwaway_server())
        except Unavailable as exc:
            pytest.skip(str(exc))
        yield server
