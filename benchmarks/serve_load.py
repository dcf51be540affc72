"""Load test for `lenet5 serve`: N concurrent clients on loopback, several endpoints, one server.

Each client keeps one HTTP connection open and sends requests back to back for a fixed
time. For every client count the same server is driven at:

* ``predict``: POST /api/predict with 280x280 PNG digits (MNIST test digits drawn black on
  white, like the page's canvas), feature maps included;
* ``maps=0``: the same with ``?maps=0`` (digit and probabilities only);
* ``healthz``: GET /healthz, the no-op that shows what HTTP alone costs here.

Prints requests/s, p50/p99 latency, errors and 503s (counted apart) and the server's own CPU
time per request, read from its processes' counters in /proc (so only for a server this
script started, or one given with --server-pid). ``--photos N`` adds a run of N clients
uploading 12-megapixel JPEG photos and reports the server's peak memory against the bound
of ``lenet5.web.limits.peak_memory_bound``. Exits 1 if any request failed (503s aside).

    python benchmarks/serve_load.py [--weights RUN] [--workers 2] [--clients 1 16 32] [--seconds 10]
    python benchmarks/serve_load.py --url http://127.0.0.1:8000 [--server-pid PID] [--clients 8]
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
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from process_stats import PeakMemory, cpu_seconds, rss_bytes, tree  # noqa: E402

from lenet5.data.mnist import load_split  # noqa: E402

PAD_SIZE = 280  # the page's canvas, in pixels
PHOTO_SIZE = (4000, 3000)  # a 12-megapixel phone photo
PHOTO_QUALITY = 88  # with PHOTO_GRAIN: about 3.3 MiB, a phone photo's size, under the 4 MiB upload cap
PHOTO_GRAIN = 8  # standard deviation of the sensor noise, in grey levels
ENDPOINTS = {"predict": "/api/predict", "maps=0": "/api/predict?maps=0", "healthz": "/healthz"}
BUSY = 503


@dataclass
class ClientLog:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    busy: int = 0
    correct: int = 0


def canvas_pngs(count: int) -> list[tuple[bytes, int]]:
    """The first ``count`` MNIST test digits as the page would send them: dark ink on white, 280x280."""
    images, labels = load_split("test")
    pngs = []
    for image, label in zip(images[:count], labels[:count]):
        drawing = Image.fromarray(255 - image.numpy()).resize((PAD_SIZE, PAD_SIZE), Image.Resampling.BILINEAR)
        pngs.append((encode(drawing, "PNG"), int(label)))
    return pngs


def photo_jpegs(count: int) -> list[tuple[bytes, int]]:
    """12-megapixel JPEG photos of MNIST digits: grey paper, uneven light, grain, dark ink."""
    images, labels = load_split("test")
    rng = np.random.default_rng(0)
    width, height = PHOTO_SIZE
    # Light falling off across the sheet: gentle enough that the recipe's block background holds.
    light = (np.linspace(170, 200, width, dtype=np.float32)[None, :]
             + np.linspace(0, 15, height, dtype=np.float32)[:, None])
    photos = []
    for image, label in zip(images[:count], labels[:count]):
        digit = np.asarray(Image.fromarray(image.numpy()).resize((height // 2, height // 2), Image.Resampling.BILINEAR),
                           dtype=np.float32)
        paper = light + rng.normal(0, PHOTO_GRAIN, light.shape).astype(np.float32)
        top, left = height // 4, (width - height // 2) // 2
        paper[top:top + height // 2, left:left + height // 2] *= 1 - digit / 300
        rgb = np.repeat(np.clip(paper, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
        photos.append((encode(Image.fromarray(rgb), "JPEG", quality=PHOTO_QUALITY), int(label)))
    return photos


def encode(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def run_client(host: str, port: int, path: str, bodies: list[tuple[bytes, int]], offset: int, stop_at: float,
               log: ClientLog, content_type: str) -> None:
    """Send requests back to back on one keep-alive connection until ``stop_at``."""
    connection = http.client.HTTPConnection(host, port, timeout=120)
    index = offset
    while time.perf_counter() < stop_at:
        body, label = bodies[index % len(bodies)]
        index += 1
        start = time.perf_counter()
        try:
            if path == ENDPOINTS["healthz"]:
                connection.request("GET", path)
            else:
                connection.request("POST", path, body=body, headers={"Content-Type": content_type})
            response = connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as exc:
            log.errors.append(f"{type(exc).__name__}: {exc}")
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=120)
            continue
        if response.status == BUSY:
            log.busy += 1
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=120)
            continue
        log.latencies.append(time.perf_counter() - start)
        if response.status != 200:
            log.errors.append(f"HTTP {response.status}: {answer[:200]!r}")
        elif path != ENDPOINTS["healthz"]:
            log.correct += json.loads(answer)["digit"] == label
    connection.close()


def load_test(url: str, endpoint: str, clients: int, seconds: float, bodies: list[tuple[bytes, int]],
              server_pid: int | None, content_type: str = "image/png") -> dict[str, object]:
    """Run ``clients`` clients against ``endpoint`` for ``seconds``; return the row of the results table."""
    parts = urlsplit(url)
    logs = [ClientLog() for _ in range(clients)]
    stop_at = time.perf_counter() + seconds
    threads = [threading.Thread(target=run_client, args=(parts.hostname, parts.port or 80, ENDPOINTS[endpoint],
                                                         bodies, i * len(bodies) // clients, stop_at, logs[i],
                                                         content_type))
               for i in range(clients)]
    pids = tree(server_pid) if server_pid else []
    cpu_before = cpu_seconds(pids)
    start = time.perf_counter()
    with PeakMemory(server_pid) if server_pid else _nothing() as memory:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elapsed = time.perf_counter() - start
    server_cpu = cpu_seconds(pids) - cpu_before
    latencies = np.array([t for log in logs for t in log.latencies]) * 1000
    errors = [e for log in logs for e in log.errors]
    for error in errors[:3]:
        print(f"  error: {error}", file=sys.stderr)
    answered = len(latencies)
    return {
        "endpoint": endpoint, "clients": clients, "seconds": elapsed, "requests": answered,
        "requests_per_s": answered / elapsed,
        "p50_ms": float(np.percentile(latencies, 50)) if answered else float("nan"),
        "p99_ms": float(np.percentile(latencies, 99)) if answered else float("nan"),
        "errors": len(errors), "busy": sum(log.busy for log in logs),
        "cpu_ms": server_cpu * 1000 / answered if server_pid and answered else float("nan"),
        "peak_mb": memory.peak / 2**20 if server_pid else float("nan"),
        "accuracy": sum(log.correct for log in logs) / max(answered - len(errors), 1),
    }


class _nothing:
    peak = 0

    def __enter__(self) -> "_nothing":
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def start_server(weights: str | None, workers: int, threads: int) -> tuple[subprocess.Popen, str]:
    """`lenet5 serve` in its own process on a free loopback port; returns it once /healthz answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "lenet5", "serve", "--port", str(port), "--threads", str(threads),
               "--workers", str(workers)] + (["--weights", weights] if weights else [])
    process = subprocess.Popen(command)
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


def print_table(rows: list[dict[str, object]]) -> None:
    print(f"{'endpoint':>8} {'clients':>7} {'seconds':>7} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'errors':>6} {'503s':>5} {'cpu_ms/req':>10} {'peak_MiB':>8} {'correct':>7}")
    for row in rows:
        print(f"{row['endpoint']:>8} {row['clients']:>7} {row['seconds']:>7.1f} {row['requests']:>8} "
              f"{row['requests_per_s']:>7.1f} {row['p50_ms']:>7.1f} {row['p99_ms']:>7.1f} {row['errors']:>6} "
              f"{row['busy']:>5} {row['cpu_ms']:>10.2f} {row['peak_mb']:>8.0f} {row['accuracy']:>7.1%}")


def print_ratios(rows: list[dict[str, object]]) -> None:
    """Each endpoint's req/s as a share of /healthz's at the same client count."""
    health = {row["clients"]: row["requests_per_s"] for row in rows if row["endpoint"] == "healthz"}
    for row in rows:
        if row["endpoint"] != "healthz" and health.get(row["clients"]):
            share = row["requests_per_s"] / health[row["clients"]]
            print(f"{row['endpoint']} at {row['clients']} clients: {share:.0%} of /healthz's req/s")


def photo_run(url: str, clients: int, seconds: float, server_pid: int | None, workers: int) -> dict[str, object]:
    """Clients uploading 12 MP photos: peak server memory against the documented bound."""
    from lenet5.images import MAX_IMAGE_PIXELS
    from lenet5.web.limits import (
        DEFAULT_MAX_IN_FLIGHT,
        DEFAULT_MAX_UPLOAD_BYTES,
        peak_memory_bound,
    )

    photos = photo_jpegs(4)
    sizes = ", ".join(f"{len(body) / 2**20:.1f}" for body, _ in photos)
    idle = rss_bytes(tree(server_pid)) if server_pid else 0
    row = load_test(url, "predict", clients, seconds, photos, server_pid, content_type="image/jpeg")
    row["endpoint"] = "12MP"
    print(f"\n{clients} clients uploading {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEG photos ({sizes} MiB each):")
    print_table([row])
    if server_pid:
        limits = (workers, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_UPLOAD_BYTES)
        bound_12mp = peak_memory_bound(idle, *limits, PHOTO_SIZE[0] * PHOTO_SIZE[1])
        bound = peak_memory_bound(idle, *limits, MAX_IMAGE_PIXELS)
        print(f"server RSS (all its processes): {idle / 2**20:.0f} MiB idle, peak {row['peak_mb']:.0f} MiB under "
              f"this load; limits.peak_memory_bound: {bound_12mp / 2**20:.0f} MiB for 12 MP images, "
              f"{bound / 2**20:.0f} MiB for the {MAX_IMAGE_PIXELS / 1e6:.0f} MP cap ({workers} workers, "
              f"{DEFAULT_MAX_IN_FLIGHT} in flight each, {DEFAULT_MAX_UPLOAD_BYTES / 2**20:g} MiB uploads)")
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--url", help="a running server, e.g. http://127.0.0.1:8000")
    target.add_argument("--weights", help="start `lenet5 serve --weights WEIGHTS` (default: start it without)")
    parser.add_argument("--server-pid", type=int, default=None, help="with --url: the server's pid, for CPU and memory")
    parser.add_argument("--workers", type=int, default=2, help="--workers for the started server")
    parser.add_argument("--server-threads", type=int, default=1, help="--threads for the started server")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16, 32], help="concurrent clients per run")
    parser.add_argument("--endpoints", nargs="+", default=list(ENDPOINTS), choices=list(ENDPOINTS))
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run")
    parser.add_argument("--images", type=int, default=200, help="distinct MNIST test digits to cycle through")
    parser.add_argument("--photos", type=int, default=0, metavar="CLIENTS",
                        help="then CLIENTS clients upload 12 MP photos for --seconds (0: skip)")
    args = parser.parse_args()
    pngs = canvas_pngs(args.images)
    process, url = (None, args.url) if args.url else start_server(args.weights, args.workers, args.server_threads)
    server_pid = process.pid if process is not None else args.server_pid
    try:
        load_test(url, "predict", 1, min(1.0, args.seconds), pngs, None)  # warm-up: first-request costs stay out
        rows = [load_test(url, endpoint, clients, args.seconds, pngs, server_pid)
                for clients in args.clients for endpoint in args.endpoints]
        print(f"server {url}, {args.seconds:g} s per run, {len(pngs)} distinct {PAD_SIZE}x{PAD_SIZE} PNG digits")
        print_table(rows)
        print_ratios(rows)
        if args.photos:
            rows.append(photo_run(url, args.photos, args.seconds, server_pid, args.workers if process else 1))
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
    return 1 if any(row["errors"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
