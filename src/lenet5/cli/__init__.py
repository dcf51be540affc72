"""The ``lenet5`` command: parses flags, builds a config, calls the library.

Each subcommand lives in its own module with a ``register(subparsers)`` function that adds
its parser and sets ``func``. User mistakes surface as one line on stderr and exit code 2
(1 for an interrupted or failed run); bugs keep their traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import Lenet5Error

# Subcommand modules, in the order `lenet5 --help` lists them.
COMMANDS = ("train", "eval", "data", "summary", "explain", "inspect", "serve", "predict", "export", "compare")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lenet5", description="Train, evaluate, inspect and serve LeNet-5 on MNIST.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Lenet5Error as exc:
        print(f"lenet5: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lenet5: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
