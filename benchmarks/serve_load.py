"""Load test for `lenet5 serve`: N concurrent clients on loopback for a fixed time.

Each client keeps one HTTP connection open and posts 280x280 PNG digits (MNIST test images
drawn black on white, like the page's canvas) to /api/predict as fast as answers come back.
Prints requests/s, p50/p99 latency and the error count for each client count; exits 1 if
any request failed, so the error count must be zero.

    python benchmarks/serve_load.py --weights RUN [--clients 1 4 16] [--seconds 10]
    python benchmarks/serve_load.py --url http://127.0.0.1:8000 [--clients 8]

With --weights it starts `lenet5 serve` itself, in its own process; with --url it drives a
server that is already running. Either way the clients run in this separate process.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

from lenet5.data.mnist import load_split

PAD_SIZE = 280  # the page's canvas, in pixels


@dataclass
class ClientLog:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    correct: int = 0


def canvas_pngs(count: int) -> list[tuple[bytes, int]]:
    """The first ``count`` MNIST test digits as the page would send them: dark ink on white, 280x280."""
    images, labels = load_split("test")
    pngs = []
    for image, label in zip(images[:count], labels[:count]):
        drawing = Image.fromarray(255 - image.numpy()).resize((PAD_SIZE, PAD_SIZE), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        drawing.save(buffer, format="PNG")
        pngs.append((buffer.getvalue(), int(label)))
    return pngs


def run_client(host: str, port: int, pngs: list[tuple[bytes, int]], offset: int, stop_at: float,
               log: ClientLog) -> None:
    """Post images back to back on one keep-alive connection until ``stop_at``."""
    connection = http.client.HTTPConnection(host, port, timeout=60)
    index = offset
    while time.perf_counter() < stop_at:
        png, label = pngs[index % len(pngs)]
        index += 1
        start = time.perf_counter()
        try:
            connection.request("POST", "/api/predict", body=png, headers={"Content-Type": "image/png"})
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            log.errors.append(f"{type(exc).__name__}: {exc}")
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=60)
            continue
        log.latencies.append(time.perf_counter() - start)
        if response.status != 200:
            log.errors.append(f"HTTP {response.status}: {body[:200]!r}")
            continue
        log.correct += json.loads(body)["digit"] == label
    connection.close()


def load_test(url: str, clients: int, seconds: float, pngs: list[tuple[bytes, int]]) -> dict[str, float]:
    """Run ``clients`` clients for ``seconds``; return the row of the results table."""
    parts = urlsplit(url)
    logs = [ClientLog() for _ in range(clients)]
    stop_at = time.perf_counter() + seconds
    threads = [threading.Thread(target=run_client, args=(parts.hostname, parts.port or 80, pngs,
                                                         i * len(pngs) // clients, stop_at, logs[i]))
               for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    latencies = np.array([t for log in logs for t in log.latencies]) * 1000
    errors = [e for log in logs for e in log.errors]
    for error in errors[:3]:
        print(f"  error: {error}", file=sys.stderr)
    answered = len(latencies)
    return {
        "clients": clients,
        "seconds": elapsed,
        "requests": answered,
        "requests_per_s": answered / elapsed,
        "p50_ms": float(np.percentile(latencies, 50)) if answered else float("nan"),
        "p99_ms": float(np.percentile(latencies, 99)) if answered else float("nan"),
        "errors": len(errors),
        "accuracy": sum(log.correct for log in logs) / max(answered - len(errors), 1),
    }


def start_server(weights: str, threads: int) -> tuple[subprocess.Popen, str]:
    """`lenet5 serve` in its own process on a free loopback port; returns it once /healthz answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "lenet5", "serve", "--weights", weights,
                                "--port", str(port), "--threads", str(threads)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"serve_load: lenet5 serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.2)
    process.terminate()
    sys.exit("serve_load: lenet5 serve did not start within 120 s")


def print_table(rows: list[dict[str, float]]) -> None:
    header = f"{'clients':>7} {'seconds':>7} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} " \
             f"{'errors':>6} {'correct':>7}"
    print(header)
    for row in rows:
        print(f"{row['clients']:>7} {row['seconds']:>7.1f} {row['requests']:>8} {row['requests_per_s']:>7.1f} "
              f"{row['p50_ms']:>7.1f} {row['p99_ms']:>7.1f} {row['errors']:>6} {row['accuracy']:>7.1%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="a running server, e.g. http://127.0.0.1:8000")
    target.add_argument("--weights", help="start `lenet5 serve --weights WEIGHTS` for the test")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16], help="concurrent clients per run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run")
    parser.add_argument("--images", type=int, default=200, help="distinct MNIST test digits to cycle through")
    parser.add_argument("--server-threads", type=int, default=1, help="--threads for the started server")
    args = parser.parse_args()
    pngs = canvas_pngs(args.images)
    process, url = start_server(args.weights, args.server_threads) if args.weights else (None, args.url)
    try:
        load_test(url, 1, min(1.0, args.seconds), pngs)  # warm-up: first-request costs stay out of the table
        rows = [load_test(url, clients, args.seconds, pngs) for clients in args.clients]
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
    print(f"server {url}, {args.seconds:g} s per run, {len(pngs)} distinct {PAD_SIZE}x{PAD_SIZE} PNG digits")
    print_table(rows)
    return 1 if any(row["errors"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
