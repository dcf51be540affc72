"""``lenet5 summary``: LeNet-5's layer-by-layer shape trace and parameter counts."""

from __future__ import annotations

import argparse
import json

from ..config import ModelConfig, apply_overrides
from .options import add_config_arguments, overrides_from_args

MODEL_OPTIONS = {"activation", "pool", "dropout", "batchnorm"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("summary", help="print the shape trace from [N, 1, 28, 28] to [N, 10]")
    add_config_arguments(parser, only=MODEL_OPTIONS)
    parser.add_argument("--weights", default=None, metavar="RUN_OR_FILE",
                        help="summarise a trained model instead of one built from the options above")
    parser.add_argument("--json", action="store_true", help="print the trace as JSON for tools")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import TrainConfig
    from ..errors import Lenet5Error
    from ..model import LeNet5
    from ..summary import format_trace, to_dict, trace

    overrides = overrides_from_args(args)
    if args.weights is not None:
        if overrides != {"model": {}}:
            raise Lenet5Error("--weights brings its own architecture; drop --activation/--pool/--dropout/--batchnorm")
        from ..weights import load_model

        config = load_model(args.weights).config.model
    else:
        config = apply_overrides(TrainConfig(), overrides).model
        config.validate()
    rows = trace(LeNet5.from_config(config))
    if args.json:
        print(json.dumps({"model": vars(config), **to_dict(rows)}, indent=2))
    else:
        print(f"LeNet-5 ({_describe_config(config)})")
        print(format_trace(rows), end="")
    return 0


def _describe_config(config: ModelConfig) -> str:
    parts = [f"activation {config.activation}", f"{config.pool} pool"]
    if config.dropout:
        parts.append(f"dropout {config.dropout}")
    if config.batchnorm:
        parts.append("batchnorm")
    return ", ".join(parts)
