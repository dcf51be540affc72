"""The server under pressure: bounded requests in flight, stalled and vanishing uploads, worker processes.

Real sockets on loopback against a real uvicorn (in a thread, or `lenet5 serve` in its own
process), since a test client cannot stall halfway through a body.
"""

from __future__ import annotations

import io
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from email.message import Message
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi")
with warnings.catch_warnings():  # starlette asks for httpx2, which this environment does not have
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient  # noqa: E402
from live_server import live_server  # noqa: E402

from lenet5.data.mnist import load_split  # noqa: E402
from lenet5.predict import Predictor, load  # noqa: E402
from lenet5.web.app import PAGE_HEADERS, create_app  # noqa: E402
from lenet5.web.limits import INLINE_PIXELS  # noqa: E402
from lenet5.web.service import DigitService  # noqa: E402

DECLARED_BYTES = 50_000  # what a stalled upload promises...
SENT_BYTES = 100  # ...and what it actually sends
ANSWER_WITHIN_S = 0.1


@pytest.fixture(scope="module")
def predictor(trained_run: Path) -> Predictor:
    return load(trained_run)


@pytest.fixture(scope="module")
def digit_png() -> bytes:
    """An MNIST test digit drawn dark on white at 140x140, and its label."""
    image = Image.fromarray(255 - load_split("test")[0][0].numpy()).resize((140, 140))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def stalled_upload(url: str) -> socket.socket:
    """A connection that sends the headers and the first bytes of a PNG body, then nothing."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    head = (f"POST /api/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/png\r\n"
            f"Content-Length: {DECLARED_BYTES}\r\n\r\n").encode()
    sock.sendall(head + b"\x89PNG\r\n\x1a\n" + b"\0" * (SENT_BYTES - 8))
    return sock


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


@contextmanager
def stalled_uploads(url: str, count: int, app) -> Iterator[list[socket.socket]]:
    """``count`` stalled uploads, each admitted by the server before the block runs."""
    with ExitStack() as stack:
        before = app.state.admission.in_flight
        sockets = [stack.enter_context(stalled_upload(url)) for _ in range(count)]
        wait_for(lambda: app.state.admission.in_flight == before + count)
        yield sockets


def post(url: str, body: bytes, query: str = "") -> tuple[int, Message, float]:
    """Status, headers and seconds taken for one fresh-connection upload."""
    request = urllib.request.Request(f"{url}/api/predict{query}", data=body, headers={"Content-Type": "image/png"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return response.status, response.headers, time.perf_counter() - start
    except urllib.error.HTTPError as error:
        error.read()
        return error.code, error.headers, time.perf_counter() - start


def test_small_images_are_analysed_on_the_loop_and_big_ones_on_the_prediction_thread(
        predictor: Predictor, digit_png: bytes, monkeypatch) -> None:
    """The page's canvas costs less than a thread hand-off; a photo must not hold up the loop."""
    threads = []
    original = DigitService.analyse

    def recording(self, *args, **kwargs):
        threads.append(threading.current_thread().name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DigitService, "analyse", recording)
    side = math.isqrt(INLINE_PIXELS) + 1  # one pixel too many each way
    big = io.BytesIO()
    Image.open(io.BytesIO(digit_png)).resize((side, side)).save(big, format="PNG")
    with TestClient(create_app(predictor)) as client:
        for body in (digit_png, big.getvalue()):
            response = client.post("/api/predict", content=body, headers={"Content-Type": "image/png"})
            assert response.status_code == 200, response.text
        assert client.post("/api/predict", content=b"not an image", headers={"Content-Type": "image/png"}
                           ).status_code == 400
    small_thread, big_thread, garbage_thread = threads
    assert big_thread.startswith("lenet5-predict")
    assert not small_thread.startswith("lenet5-predict") and small_thread == garbage_thread


def test_maps_0_answers_the_same_without_images(predictor: Predictor, digit_png: bytes) -> None:
    with TestClient(create_app(predictor)) as client:
        full = client.post("/api/predict", content=digit_png, headers={"Content-Type": "image/png"}).json()
        lean = client.post("/api/predict?maps=0", content=digit_png, headers={"Content-Type": "image/png"}).json()
        assert set(lean) == {"digit", "probability", "probabilities", "notes"}
        assert {key: full[key] for key in lean} == lean
        assert {"image", "feature_maps"} <= set(full)
        bad = client.post("/api/predict?maps=sometimes", content=digit_png, headers={"Content-Type": "image/png"})
        assert bad.status_code == 422 and "maps" in bad.json()["error"]
        schema = client.get("/openapi.json").json()["paths"]["/api/predict"]["post"]
        assert [p["name"] for p in schema["parameters"]] == ["maps"]
        assert {"408", "503"} <= set(schema["responses"])


@pytest.mark.parametrize("path", ["/", "/docs", "/static/index.html", "/static/docs.html"])
def test_every_html_page_has_the_same_security_policy(predictor: Predictor, path: str) -> None:
    with TestClient(create_app(predictor)) as client:
        response = client.get(path)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    for header, value in PAGE_HEADERS.items():
        assert response.headers[header] == value


def test_stalled_uploads_do_not_starve_a_real_request(predictor: Predictor, digit_png: bytes) -> None:
    app = create_app(predictor, max_in_flight=16)
    with live_server(app) as url, stalled_uploads(url, 12, app):
        assert post(url, digit_png)[0] == 200  # the first request pays for warming up
        # Best of three, since the machine is shared: a starved request would wait for the
        # stalled ones (10 s), so even the fastest would be far over the limit.
        timings = [post(url, digit_png) for _ in range(3)]
        assert all(status == 200 for status, _, _ in timings)
        assert min(seconds for _, _, seconds in timings) < ANSWER_WITHIN_S, timings


def test_past_the_bound_the_answer_is_503_at_once(predictor: Predictor, digit_png: bytes) -> None:
    app = create_app(predictor, max_in_flight=4)
    with live_server(app) as url:
        with stalled_uploads(url, 4, app):
            status, headers, seconds = post(url, digit_png)
            assert status == 503 and headers.get("Retry-After") == "1", (status, headers.items())
            assert seconds < 5  # not queued behind the stalled uploads (10 s timeout)
            with urllib.request.urlopen(f"{url}/healthz", timeout=10) as health:
                assert health.status == 200  # the rest of the server still answers
        wait_for(lambda: app.state.admission.in_flight == 0)  # hung-up uploads give their places back
        assert post(url, digit_png)[0] == 200


def test_a_stalled_upload_gets_408_and_frees_its_place(predictor: Predictor) -> None:
    app = create_app(predictor, upload_timeout=0.3)
    with live_server(app) as url, stalled_upload(url) as sock:
        sock.settimeout(10)
        reply = b""
        while b"stalled" not in reply and (chunk := sock.recv(4096)):  # headers and body may come apart
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 408") and b"stalled" in reply, reply
        wait_for(lambda: app.state.admission.in_flight == 0)


def test_a_client_hanging_up_mid_upload_is_one_log_line(predictor: Predictor, caplog) -> None:
    app = create_app(predictor)
    web_log = logging.getLogger("lenet5.web")
    web_log.addHandler(caplog.handler)  # wherever "lenet5" propagates, the test sees these records
    try:
        with caplog.at_level(logging.INFO), live_server(app) as url:
            stalled_upload(url).close()
            wait_for(lambda: any("hung up" in r.getMessage() for r in caplog.records))
            wait_for(lambda: app.state.admission.in_flight == 0)
    finally:
        web_log.removeHandler(caplog.handler)
    lines = [r.getMessage() for r in caplog.records if r.name == "lenet5.web"]
    assert len(set(lines)) == 1 and f"after {SENT_BYTES} of {DECLARED_BYTES:,} bytes" in lines[0], lines
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "Traceback" not in caplog.text


def _answers(url: str, body: bytes) -> bool:
    try:
        return post(url, body)[0] == 200
    except OSError:  # not listening yet
        return False


def _workers(server_pid: int) -> list[int]:
    """The server's worker processes (multiprocessing's resource tracker is a child too)."""
    children = [int(pid) for task in Path(f"/proc/{server_pid}/task").iterdir()
                for pid in (task / "children").read_text().split()]
    return [pid for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads worker processes from /proc")
def test_two_workers_serve_and_a_dead_one_is_replaced(trained_run: Path, digit_png: bytes, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with open(log, "w") as log_file:
        server = subprocess.Popen([sys.executable, "-m", "lenet5", "serve", "--weights", str(trained_run),
                                   "--port", str(port), "--workers", "2"], stdout=log_file, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(_workers(server.pid)) == 2 and _answers(url, digit_png), timeout=120)
        first, second = _workers(server.pid)
        os.kill(first, signal.SIGKILL)
        assert post(url, digit_png)[0] == 200  # the other worker keeps answering
        wait_for(lambda: len(_workers(server.pid)) == 2 and first not in _workers(server.pid), timeout=120)
        assert second in _workers(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "with 2 workers" in log.read_text()
