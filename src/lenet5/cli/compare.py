"""``lenet5 compare``: run a controlled experiment over variants x seeds and report on it."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from ..errors import Lenet5Error
from .options import add_config_arguments, overrides_from_args

# More seeds or worker processes than this is a typo (and 10,000 workers would be a fork bomb).
MAX_PER_FLAG = 256


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..compare.studies import BUILTIN

    parser = subparsers.add_parser(
        "compare", help="run a built-in study or a custom grid over several seeds and report",
        description="Studies: " + "; ".join(f"{s.name}: {s.question}" for s in BUILTIN.values()),
        epilog="Training options (--epochs, --train-subset, ...) override the study's base settings for every "
               "variant except where a variant sets that option itself. Re-run the same command to resume.")
    parser.add_argument("study", nargs="?", metavar="STUDY", help=f"one of: {', '.join(BUILTIN)}")
    parser.add_argument("--grid", nargs="+", metavar="KEY=V1,V2", default=None,
                        help="a custom grid over training options, e.g. --grid activation=tanh,relu lr=0.01,0.1")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per variant (default: 3)")
    parser.add_argument("--workers", type=int, default=1, help="trial processes on this machine (default: 1)")
    parser.add_argument("--name", default=None, help="study name and folder (default: the study, or 'grid')")
    parser.add_argument("--project", type=Path, default=None, help="where study folders go (default: runs/compare)")
    parser.add_argument("--storage", default=None, metavar="URL",
                        help="study store: a database URL to share between machines "
                             "(default: sqlite file runs/compare/NAME/study.db)")
    # Every training option overrides the study's base (the seed is the --seeds dimension).
    add_config_arguments(parser, only=_base_options())
    parser.set_defaults(func=run)


def _base_options() -> set[str]:
    import dataclasses

    from ..config import ModelConfig, TrainConfig

    return {f.name for f in dataclasses.fields(ModelConfig) + dataclasses.fields(TrainConfig)} - {"seed", "model"}


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..compare.report import write_report
    from ..compare.runner import CompareJob, run_compare
    from ..compare.store import open_optuna_study, trial_records
    from ..compare.studies import BUILTIN, grid_study
    from ..config import check_threads
    from ..files import COMPARE_RUNS, check_dir_target, check_run_name, output_folder

    for flag, value in (("--seeds", args.seeds), ("--workers", args.workers)):
        if not 1 <= value <= MAX_PER_FLAG:
            raise Lenet5Error(f"invalid {flag} {value}: must be in 1..{MAX_PER_FLAG}")
    if args.threads is not None:
        check_threads(args.threads)
    if args.grid:
        study = grid_study(args.grid, args.name or args.study or "grid")
    elif args.study in BUILTIN:
        study = BUILTIN[args.study]
    else:
        given = f"unknown study {args.study!r}" if args.study else "no study given"
        raise Lenet5Error(f"{given}: choose one of {', '.join(BUILTIN)}, or pass --grid KEY=V1,V2")
    overrides = _flat(overrides_from_args(args))
    threads = overrides.pop("threads", None) or max(1, (os.cpu_count() or 1) // args.workers)
    # Flags override the study's base; a variant still sets the options it is about.
    study = replace(study, name=study.name if args.name is None else args.name, base={**study.base, **overrides})
    check_run_name(study.name)  # it names the study's folder under --project
    for label in study.labels():  # refuse a bad option before any trial starts
        study.config(label, 0)
    check_dir_target(args.project or COMPARE_RUNS, "--project")
    job = CompareJob(study, args.seeds, args.project or COMPARE_RUNS, args.storage or "", threads)
    try:
        with output_folder(job.study_dir, job.study_dir, flag="--project"):  # removed again if the store fails
            run_compare(job, args.workers)
    except KeyboardInterrupt:
        print("lenet5: interrupted; finished trials are kept. Re-run the same command to finish the rest.",
              file=sys.stderr)
        return 130
    optuna_study = open_optuna_study(study, job.url, job.fingerprint())
    report = write_report(study, trial_records(optuna_study, study, args.seeds), args.seeds, job.study_dir,
                          command="lenet5 " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["compare"] else "")
    for line in report.verdicts:
        print(line)
    print(f"report: {report.markdown} (and {report.html.name})")
    return 0 if report.missing == 0 else 1


def _flat(overrides: dict) -> dict:
    """Nested {"model": {...}, ...} overrides as flat field names, as studies use them."""
    flat = {k: v for k, v in overrides.items() if k != "model"}
    flat.update(overrides.get("model", {}))
    return flat
