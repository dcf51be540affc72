"""``lenet5 serve``: the draw-a-digit page and the prediction API on uvicorn."""

from __future__ import annotations

import argparse
import socket

from ..errors import Lenet5Error
from .options import add_weights_argument

DEFAULT_MAX_UPLOAD_MB = 4.0
MAX_UPLOAD_MB = 1024.0  # a digit never needs more; a cap keeps the limit a real number


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="serve the draw-a-digit page and the JSON API")
    add_weights_argument(parser)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on; 0.0.0.0 exposes it to the network (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB,
                        help=f"larger uploads get HTTP 413 (default: {DEFAULT_MAX_UPLOAD_MB:g})")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per prediction (default: 1; requests already run in parallel)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise Lenet5Error(f"invalid --port {args.port}: must be 1..65535")
    if not 0 < args.max_upload_mb <= MAX_UPLOAD_MB:  # also refuses NaN and inf
        raise Lenet5Error(f"invalid --max-upload-mb {args.max_upload_mb}: must be in (0, {MAX_UPLOAD_MB:g}]")
    from ..config import check_threads

    check_threads(args.threads)
    from ..extras import require

    uvicorn = require("uvicorn", "web", "lenet5 serve")
    create_app = require("lenet5.web.app", "web", "lenet5 serve").create_app
    import torch

    from ..predict import load

    # One image is far too small to split across cores; parallelism comes from serving
    # several requests at once, which extra torch threads per request would oversubscribe.
    torch.set_num_threads(args.threads)
    predictor = load(args.weights)
    app = create_app(predictor, max_upload_bytes=int(args.max_upload_mb * 2**20))
    listener = listen(args.host, args.port)
    print(f"serving {predictor.loaded.path} on http://{args.host}:{args.port}/ (API docs at /docs)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[listener])
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
