"""``lenet5 train``: one training run into a fresh (or resumed) run folder, in one process or several."""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import TrainConfig
from ..errors import Lenet5Error
from ..files import TRAIN_RUNS, output_folder, read_json
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
    run_dir = None
    try:
        # A fresh run folder is removed again if training fails before writing into it.
        with ExitStack() as folders:
            # Rank 0 reads the config and makes the run folder; the others learn both from it.
            config, run_dir, resume = shard.share(lambda: _prepare(args, shard, folders))
            summary = fit(config, run_dir, resume=resume)
    except distributed.MainRankError:
        return 2  # rank 0 printed the error
    except KeyboardInterrupt:
        if not shard.is_main:
            return 130
        if run_dir is None or not run_dir.is_dir():
            print("lenet5: interrupted before the first epoch; nothing was saved", file=sys.stderr)
            return 130
        print(f"lenet5: interrupted; finished epochs are saved. Continue with: lenet5 train --resume {run_dir}",
              file=sys.stderr)
        return 130
    finally:
        distributed.shutdown()
    if not shard.is_main:
        return 0
    print(f"curves: {summary['verdict']}")
    if "peak_memory_mb" in summary:
        print(f"peak CUDA memory: {summary['peak_memory_mb']:.1f} MiB")
    tested = (f"test accuracy {summary['test_accuracy']:.2%} (loss {summary['test_loss']:.4f})"
              if summary["test_accuracy"] is not None else "no test images: test accuracy not measured")
    print(f"{tested}, best epoch {summary['best_epoch']}; run folder {run_dir}")
    return 0


def _prepare(args: argparse.Namespace, shard: Shard, folders: ExitStack) -> tuple[TrainConfig, Path, bool]:
    """(config, run folder, resume?): a fresh folder entered on ``folders``, or the resumed run's own config."""
    from ..checkpoint import STATE

    overrides = overrides_from_args(args)
    if args.resume is not None:
        run_dir = args.resume
        if overrides != {"model": {}}:
            raise Lenet5Error("--resume continues a run with its own config.json; drop the other options")
        config = _saved_config(run_dir)
        if not (run_dir / STATE).exists():  # killed before its first epoch finished: nothing to lose
            print(f"{run_dir}: no finished epoch to resume from; starting this run from the beginning")
            return config, run_dir, False
        return config, run_dir, True
    config = recipe_config(args.recipe, overrides)
    config.validate()  # before creating a run folder for a config that cannot run
    shard.check_batch_size(config.batch_size)
    return config, folders.enter_context(output_folder(None, args.project, name=args.name, flag="--project")), False


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
