"""Downloading against real local HTTP mirrors: failures fall through, bad bytes never land.

One ``http.server`` on 127.0.0.1 plays every mirror: ``/good/`` serves copies of the bundled
MNIST files, ``/corrupt/`` the same files with one byte flipped, ``/missing/`` answers 404
and ``/cut/`` promises the whole file but hangs up halfway. A closed port refuses
connections and a socket that listens but never answers stands in for a dead host.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lenet5.cli import main
from lenet5.data.download import download_dataset
from lenet5.data.mnist import DATASETS, bundled_dir
from lenet5.errors import DataError

NAMES = list(DATASETS["mnist"].md5)


class MirrorHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the mirror folder; under /cut/ it sends half the bytes of a full-length promise."""

    def do_GET(self) -> None:
        if not self.path.startswith("/cut/"):
            return super().do_GET()
        body = (Path(self.directory) / "good" / self.path.removeprefix("/cut/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mirrors")
    shutil.copytree(bundled_dir(), root / "good")
    (root / "corrupt").mkdir()
    (root / "missing").mkdir()
    for name in NAMES:
        packed = bytearray((root / "good" / name).read_bytes())
        packed[-1] ^= 0xFF
        (root / "corrupt" / name).write_bytes(bytes(packed))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(MirrorHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def refused() -> str:
    """A URL on a port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


@pytest.fixture
def silent() -> Iterator[str]:
    """A URL whose host accepts the connection (the kernel does) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/mnist/"


def same_bytes(folder: Path) -> bool:
    return all((folder / name).read_bytes() == (bundled_dir() / name).read_bytes() for name in NAMES)


def test_falls_through_bad_mirrors_to_the_good_one(server: str, refused: str, tmp_path: Path) -> None:
    lines: list[str] = []
    mirrors = [refused, f"{server}/missing/", f"{server}/corrupt", f"{server}/cut/", f"{server}/good/"]
    paths = download_dataset("mnist", tmp_path / "mnist", mirrors=mirrors, timeout=5, log=lines.append)
    assert paths == [tmp_path / "mnist" / name for name in NAMES]
    assert same_bytes(tmp_path / "mnist")
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(NAMES)  # no .part left over
    assert all("\n" not in line for line in lines)
    for name in NAMES:
        about = [line for line in lines if name in line]
        assert len(about) == 5  # four failures and the success, one line each
        assert "connection refused; trying the next mirror" in about[0]
        assert "HTTP 404" in about[1]
        assert f"/corrupt/{name}: served" in about[2] and f"expected {DATASETS['mnist'].md5[name]}" in about[2]
        assert f"/cut/{name}: connection closed after" in about[3]
        assert "md5 ok" in about[4] and f"/good/{name}" in about[4]


def test_timeout_moves_on_to_the_next_mirror(server: str, silent: str, tmp_path: Path) -> None:
    lines: list[str] = []
    download_dataset("mnist", tmp_path, mirrors=[silent, f"{server}/good/"], timeout=0.2, log=lines.append)
    assert same_bytes(tmp_path)
    assert sum("timed out; trying the next mirror" in line for line in lines) == len(NAMES)


def test_all_mirrors_bad_raises_and_leaves_nothing(server: str, refused: str, tmp_path: Path) -> None:
    mirrors = [f"{server}/missing/", f"{server}/corrupt/", f"{server}/cut/", refused]
    with pytest.raises(DataError) as caught:
        download_dataset("mnist", tmp_path / "out", mirrors=mirrors, log=lambda _: None)
    message = str(caught.value)
    assert message.startswith("train-images-idx3-ubyte.gz: no mirror delivered a good copy")
    for mirror in mirrors:
        assert mirror.rstrip("/") + "/train-images-idx3-ubyte.gz" in message
    assert "HTTP 404" in message and "md5" in message and "connection refused" in message
    assert not (tmp_path / "out").exists()  # the folder is made by the first good file, so nothing is left


def test_present_good_files_are_not_downloaded_again(server: str, tmp_path: Path) -> None:
    shutil.copytree(bundled_dir(), tmp_path, dirs_exist_ok=True)
    before = {name: (tmp_path / name).stat().st_mtime_ns for name in NAMES}
    lines: list[str] = []
    # Only a 404 mirror: any attempt to fetch would fail the call.
    download_dataset("mnist", tmp_path, mirrors=[f"{server}/missing/"], log=lines.append)
    assert lines == [f"{tmp_path / name}: already present, md5 ok" for name in NAMES]
    assert {name: (tmp_path / name).stat().st_mtime_ns for name in NAMES} == before


def test_a_corrupt_local_file_is_replaced(server: str, tmp_path: Path) -> None:
    shutil.copytree(bundled_dir(), tmp_path, dirs_exist_ok=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not the labels")
    lines: list[str] = []
    download_dataset("mnist", tmp_path, mirrors=[f"{server}/good/"], log=lines.append)
    assert same_bytes(tmp_path)
    assert sum("downloaded" in line for line in lines) == 1


def test_a_failed_download_keeps_the_old_file_as_it_was(server: str, tmp_path: Path) -> None:
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"an old partial copy")
    with pytest.raises(DataError):
        download_dataset("mnist", tmp_path, mirrors=[f"{server}/corrupt/"], log=lambda _: None)
    assert [p.name for p in tmp_path.iterdir()] == ["train-images-idx3-ubyte.gz"]
    assert (tmp_path / "train-images-idx3-ubyte.gz").read_bytes() == b"an old partial copy"


def test_each_dataset_is_checked_against_its_own_md5(server: str, tmp_path: Path) -> None:
    # The MNIST files are not Fashion-MNIST: the fashion-mnist sums must reject them.
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: no mirror delivered.*expected 8d4fb7e6"):
        download_dataset("fashion-mnist", tmp_path, mirrors=[f"{server}/good/"], log=lambda _: None)
    assert list(tmp_path.iterdir()) == []


def test_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown dataset 'kmnist'"):
        download_dataset("kmnist", tmp_path)


def test_cli_download(server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "mnist"
    code = main(["data", "download", "--dataset", "mnist", "--dest", str(dest),
                 "--mirror", f"{server}/missing/", "--mirror", f"{server}/good/"])
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    assert [line for line in out if line.startswith("ok ")] == [f"ok {dest / name}" for name in NAMES]
    assert same_bytes(dest)
    assert main(["data", "verify", "--dir", str(dest)]) == 0


def test_cli_download_failure_is_one_error_line(server: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["data", "download", "--dest", str(tmp_path), "--mirror", f"{server}/missing/"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lenet5: error: train-images-idx3-ubyte.gz: no mirror")
