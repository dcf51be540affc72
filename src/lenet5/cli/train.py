"""``lenet5 train``: one training run into a fresh (or resumed) run folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config import TrainConfig
from ..errors import Lenet5Error
from ..files import TRAIN_RUNS, next_run_dir
from ..recipes import DEFAULT_RECIPE, RECIPES, format_recipes, recipe_config
from .options import add_config_arguments, overrides_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train LeNet-5 and write a run folder")
    parser.add_argument("--recipe", default=DEFAULT_RECIPE, metavar="NAME",
                        help=f"a named preset that the other flags override: {', '.join(RECIPES)} (default: {DEFAULT_RECIPE})")
    parser.add_argument("--list-recipes", action="store_true", help="print each recipe with its measured figures")
    add_config_arguments(parser)
    parser.add_argument("--project", type=Path, default=TRAIN_RUNS, help="where run folders go (default: runs/train)")
    parser.add_argument("--name", default="exp", help="run folder name; exp2, exp3, ... if taken (default: exp)")
    parser.add_argument("--resume", type=Path, default=None, metavar="RUN", help="continue this run folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train import fit  # torch import deferred so `lenet5 --help` is instant

    if args.list_recipes:
        print(format_recipes())
        return 0
    overrides = overrides_from_args(args)
    if args.resume is not None:
        run_dir = args.resume
        config_path = run_dir / "config.json"
        if not config_path.is_file():
            raise Lenet5Error(f"{run_dir}: not a run folder (no config.json)")
        if overrides != {"model": {}}:
            raise Lenet5Error("--resume continues a run with its own config.json; drop the other options")
        config = TrainConfig.from_dict(json.loads(config_path.read_text()))
    else:
        config = recipe_config(args.recipe, overrides)
        config.validate()  # before creating a run folder for a config that cannot run
        run_dir = next_run_dir(args.project, args.name)
    try:
        summary = fit(config, run_dir, resume=args.resume is not None)
    except Lenet5Error:
        if args.resume is None and not any(run_dir.iterdir()):
            run_dir.rmdir()  # bad data found before the first write: leave no empty exp folder
        raise
    except KeyboardInterrupt:
        print(f"lenet5: interrupted; finished epochs are saved. Continue with: lenet5 train --resume {run_dir}",
              file=sys.stderr)
        return 130
    print(f"curves: {summary['verdict']}")
    if "peak_memory_mb" in summary:
        print(f"peak CUDA memory: {summary['peak_memory_mb']:.1f} MiB")
    print(f"test accuracy {summary['test_accuracy']:.2%} (loss {summary['test_loss']:.4f}), "
          f"best epoch {summary['best_epoch']}; run folder {run_dir}")
    return 0
