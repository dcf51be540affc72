"""Run the web app on uvicorn: in this process, or in N worker processes sharing one socket.

A LeNet-5 prediction is far too small to split across cores, so the server uses the cores by
running one process per core, each with one torch thread and its own copy of the 240 KB model
(uvicorn's own supervisor starts them, restarts one that dies, and stops them all on Ctrl-C).
Workers are started fresh ("spawn"), so they rebuild the app from :class:`ServeOptions`,
which travel in an environment variable.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import socket
import sys
from dataclasses import asdict, dataclass

from ..predict import Predictor, load
from .limits import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_UPLOAD_TIMEOUT_S,
)

OPTIONS_VARIABLE = "LENET5_SERVE_OPTIONS"
MAX_DEFAULT_WORKERS = 8  # each worker holds ~250 MB (Python + torch); more is rarely worth it by default
# asyncio's own event loop, even where uvloop is installed: the same CPU per request here, and
# it serves ready connections first come, first served. Under uvloop about one request in 16
# waited a second round behind the others: p99 twice p50 at 16 clients, against 1.1-1.3x.
UVICORN_SETTINGS = {"log_level": "warning", "access_log": False, "loop": "asyncio"}


@dataclass(frozen=True)
class ServeOptions:
    """Everything a worker needs to build the same app as every other worker."""

    weights: str  # a weights file, already resolved
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    upload_timeout: float = DEFAULT_UPLOAD_TIMEOUT_S
    threads: int = 1


def default_workers() -> int:
    """One worker per CPU this process may run on, up to MAX_DEFAULT_WORKERS."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(cpus, MAX_DEFAULT_WORKERS)


def build_app(options: ServeOptions, predictor: Predictor | None = None):
    """The FastAPI app for ``options``, loading the weights unless ``predictor`` is given."""
    import torch

    from .app import create_app

    # One image is far too small to split across cores; extra threads would only contend.
    torch.set_num_threads(options.threads)
    predictor = predictor or load(options.weights)
    app = create_app(predictor, max_upload_bytes=options.max_upload_bytes, max_in_flight=options.max_in_flight,
                     upload_timeout=options.upload_timeout)
    # Everything loaded so far (torch, FastAPI, the model: ~200,000 objects) lives as long as
    # the server. Frozen, the garbage collector stops walking it: an occasional full
    # collection otherwise stalls every request in flight for ~100 ms.
    gc.freeze()
    return app


def worker_app():
    """uvicorn's app factory inside each worker process."""
    configure_logging()
    return build_app(ServeOptions(**json.loads(os.environ[OPTIONS_VARIABLE])))


def configure_logging() -> None:
    """The server's own events (a client hanging up mid-upload) as one line each on stderr."""
    logger = logging.getLogger("lenet5")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("lenet5 serve [%(process)d]: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def serve(options: ServeOptions, listener: socket.socket, workers: int, predictor: Predictor | None = None) -> None:
    """Serve on the bound ``listener`` until interrupted."""
    import uvicorn

    if workers == 1:
        configure_logging()
        app = build_app(options, predictor)
        uvicorn.Server(uvicorn.Config(app, **UVICORN_SETTINGS)).run(sockets=[listener])
        return
    from uvicorn.supervisors import Multiprocess

    os.environ[OPTIONS_VARIABLE] = json.dumps(asdict(options))
    config = uvicorn.Config("lenet5.web.server:worker_app", factory=True, workers=workers, **UVICORN_SETTINGS)
    Multiprocess(config, sockets=[listener]).run()
