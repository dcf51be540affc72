"""``lenet5 train``: one training run into a fresh (or resumed) run folder."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import TrainConfig
from ..errors import Lenet5Error
from ..files import TRAIN_RUNS, next_run_dir
from ..recipes import DEFAULT_RECIPE, RECIPES, format_recipes, recipe_config
from .options import add_config_arguments, flags_from_overrides, overrides_from_args

if TYPE_CHECKING:
    from ..distributed import Shard


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train LeNet-5 and write a run folder")
    parser.add_argument("--recipe", default=DEFAULT_RECIPE, metavar="NAME",
                        help=f"a named preset that the other flags override: {', '.join(RECIPES)} (default: {DEFAULT_RECIPE})")
    parser.add_argument("--list-recipes", action="store_true", help="print each recipe with its measured figures")
    add_config_arguments(parser)
    parser.add_argument("--project", type=Path, default=TRAIN_RUNS, help="where run folders go (default: runs/train)")
    parser.add_argument("--name", default="exp", help="run folder name; exp2, exp3, ... if taken (default: exp)")
    parser.add_argument("--resume", type=Path, default=None, metavar="RUN", help="continue this run folder")
    launch = parser.add_argument_group("data-parallel training (PyTorch DDP through torchrun)")
    launch.add_argument("--nproc", type=int, default=None, metavar="N",
                        help="train with N processes on this machine, each on batch-size / N images per step")
    launch.add_argument("--nnodes", type=int, default=1, metavar="M",
                        help="machines in the job: run the same command on each (default: 1)")
    launch.add_argument("--rdzv-endpoint", default=None, metavar="HOST:PORT",
                        help="where the machines meet (one of them, any free port); needed with --nnodes")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import distributed  # torch import deferred so `lenet5 --help` is instant
    from ..train import fit

    if args.list_recipes:
        print(format_recipes())
        return 0
    if args.nproc is not None or args.nnodes > 1:
        return _launch(args)
    shard = distributed.setup()  # one of torchrun's processes, or a single one
    try:
        # Rank 0 reads the config and makes the run folder; the others learn both from it.
        config, run_dir = shard.share(lambda: _prepare(args, shard))
        return _train(fit, config, run_dir, args.resume is not None, shard)
    except distributed.MainRankError:
        return 2  # rank 0 printed the error
    finally:
        distributed.shutdown()


def _prepare(args: argparse.Namespace, shard: Shard) -> tuple[TrainConfig, Path]:
    """The run's config and folder: a fresh folder, or the resumed run's own config."""
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
        shard.check_batch_size(config.batch_size)
        run_dir = next_run_dir(args.project, args.name)
    return config, run_dir


def _train(fit: Callable[..., dict], config: TrainConfig, run_dir: Path, resume: bool, shard: Shard) -> int:
    try:
        summary = fit(config, run_dir, resume=resume)
    except Lenet5Error:
        if shard.is_main and not resume and not any(run_dir.iterdir()):
            run_dir.rmdir()  # bad data found before the first write: leave no empty exp folder
        raise
    except KeyboardInterrupt:
        if shard.is_main:
            print(f"lenet5: interrupted; finished epochs are saved. Continue with: lenet5 train --resume {run_dir}",
                  file=sys.stderr)
        return 130
    if not shard.is_main:
        return 0
    print(f"curves: {summary['verdict']}")
    if "peak_memory_mb" in summary:
        print(f"peak CUDA memory: {summary['peak_memory_mb']:.1f} MiB")
    print(f"test accuracy {summary['test_accuracy']:.2%} (loss {summary['test_loss']:.4f}), "
          f"best epoch {summary['best_epoch']}; run folder {run_dir}")
    return 0


def _launch(args: argparse.Namespace) -> int:
    """``--nproc N``: start N copies of this command (minus the launch flags) through torchrun."""
    from ..distributed import Shard, launch  # noqa: F811 (the runtime import of the type-checking name)

    overrides = overrides_from_args(args)
    if args.resume is None:  # check what can be checked before starting N processes
        config = recipe_config(args.recipe, overrides)
        config.validate()
        Shard(world_size=(args.nproc or 1) * args.nnodes).check_batch_size(config.batch_size)
    train_args = ["--recipe", args.recipe, "--project", str(args.project), "--name", args.name]
    if args.resume is not None:
        train_args += ["--resume", str(args.resume)]
    return launch(train_args + flags_from_overrides(overrides), args.nproc or 1, args.nnodes, args.rdzv_endpoint,
                  overrides.get("threads"))
