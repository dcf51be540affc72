"""``lenet5 serve``: the draw-a-digit page and the prediction API on uvicorn."""

from __future__ import annotations

import argparse
import socket

from ..errors import Lenet5Error
from ..web.limits import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_UPLOAD_TIMEOUT_S,
)
from .options import add_weights_argument

DEFAULT_MAX_UPLOAD_MB = DEFAULT_MAX_UPLOAD_BYTES / 2**20
MAX_UPLOAD_MB = 1024.0  # a digit never needs more; a cap keeps the limit a real number
MAX_UPLOAD_TIMEOUT_S = 3600.0  # an hour: past that, "no timeout" is what is really meant, which we refuse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="serve the draw-a-digit page and the JSON API")
    add_weights_argument(parser, pretrained=True)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on; 0.0.0.0 exposes it to the network (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument("--workers", type=int, default=None,
                        help="server processes, each with its own copy of the model "
                             "(default: one per CPU, at most 8)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per worker (default: 1; the workers already use the cores)")
    parser.add_argument("--max-in-flight", type=int, default=DEFAULT_MAX_IN_FLIGHT, metavar="N",
                        help="predictions one worker holds at once; the next gets 503 with Retry-After "
                             f"(default: {DEFAULT_MAX_IN_FLIGHT})")
    parser.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB,
                        help=f"larger uploads get HTTP 413 (default: {DEFAULT_MAX_UPLOAD_MB:g})")
    parser.add_argument("--upload-timeout", type=float, default=DEFAULT_UPLOAD_TIMEOUT_S, metavar="SECONDS",
                        help="an upload that sends nothing for this long gets HTTP 408 "
                             f"(default: {DEFAULT_UPLOAD_TIMEOUT_S:g})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise Lenet5Error(f"invalid --port {args.port}: must be 1..65535")
    if not 0 < args.max_upload_mb <= MAX_UPLOAD_MB:  # also refuses NaN and inf
        raise Lenet5Error(f"invalid --max-upload-mb {args.max_upload_mb}: must be in (0, {MAX_UPLOAD_MB:g}]")
    if not 0 < args.upload_timeout <= MAX_UPLOAD_TIMEOUT_S:
        raise Lenet5Error(f"invalid --upload-timeout {args.upload_timeout}: must be in (0, {MAX_UPLOAD_TIMEOUT_S:g}]")
    from ..config import check_threads

    check_threads(args.threads)
    for flag, value in (("--workers", args.workers), ("--max-in-flight", args.max_in_flight)):
        if value is not None and value < 1:
            raise Lenet5Error(f"invalid {flag} {value}: must be at least 1")
    from ..extras import require

    require("uvicorn", "web", "lenet5 serve")
    server = require("lenet5.web.server", "web", "lenet5 serve")
    from ..predict import load

    predictor = load(args.weights)  # a missing or broken model is one error line, before binding the port
    options = server.ServeOptions(str(predictor.path), max_upload_bytes=int(args.max_upload_mb * 2**20),
                                  max_in_flight=args.max_in_flight, upload_timeout=args.upload_timeout,
                                  threads=args.threads)
    workers = args.workers or server.default_workers()
    listener = listen(args.host, args.port)
    print(f"serving {predictor.path} on http://{args.host}:{args.port}/ with {workers} worker"
          f"{'s' if workers > 1 else ''} (API docs at /docs)", flush=True)
    server.serve(options, listener, workers, predictor if workers == 1 else None)
    return 0


def listen(host: str, port: int) -> socket.socket:
    """Bind the port before starting, so "address in use" is one clear line, not a log record."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise Lenet5Error(f"invalid --host {host!r}: {exc.strerror}") from None
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once after a stop
    try:
        listener.bind(address)
    except OSError as exc:
        listener.close()
        raise Lenet5Error(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return listener
