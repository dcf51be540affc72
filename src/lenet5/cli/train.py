"""``lenet5 train``: one training run into a fresh (or resumed) run folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import TrainConfig
from ..errors import Lenet5Error
from ..files import TRAIN_RUNS, output_folder, read_json
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
    from ..checkpoint import STATE
    from ..train import fit  # torch import deferred so `lenet5 --help` is instant

    if args.list_recipes:
        print(format_recipes())
        return 0
    overrides = overrides_from_args(args)
    resume = args.resume is not None
    if resume:
        run_dir = args.resume
        if overrides != {"model": {}}:
            raise Lenet5Error("--resume continues a run with its own config.json; drop the other options")
        config = _saved_config(run_dir)
        if not (run_dir / STATE).exists():  # killed before its first epoch finished: nothing to lose
            print(f"{run_dir}: no finished epoch to resume from; starting this run from the beginning")
            resume = False
    else:
        config = recipe_config(args.recipe, overrides)
        config.validate()  # before creating a run folder for a config that cannot run
        run_dir = None
    try:
        if args.resume is not None:
            summary = fit(config, run_dir, resume=resume)
        else:  # bad data found before the first write: the empty run folder is removed again
            with output_folder(None, args.project, name=args.name, flag="--project") as run_dir:
                summary = fit(config, run_dir)
    except KeyboardInterrupt:
        if run_dir is None or not run_dir.is_dir():
            print("lenet5: interrupted before the first epoch; nothing was saved", file=sys.stderr)
            return 130
        print(f"lenet5: interrupted; finished epochs are saved. Continue with: lenet5 train --resume {run_dir}",
              file=sys.stderr)
        return 130
    print(f"curves: {summary['verdict']}")
    if "peak_memory_mb" in summary:
        print(f"peak CUDA memory: {summary['peak_memory_mb']:.1f} MiB")
    tested = (f"test accuracy {summary['test_accuracy']:.2%} (loss {summary['test_loss']:.4f})"
              if summary["test_accuracy"] is not None else "no test images: test accuracy not measured")
    print(f"{tested}, best epoch {summary['best_epoch']}; run folder {run_dir}")
    return 0


def _saved_config(run_dir: Path) -> TrainConfig:
    """The config.json of a run folder, checked like the flags it came from."""
    config_path = run_dir / "config.json"
    if not run_dir.is_dir() or not config_path.exists():
        raise Lenet5Error(f"{run_dir}: not a run folder (no config.json)")
    values = read_json(config_path)
    try:
        config = TrainConfig.from_dict(values)
        config.validate()
    except Lenet5Error as exc:
        raise Lenet5Error(f"{config_path}: {exc}") from None
    return config
