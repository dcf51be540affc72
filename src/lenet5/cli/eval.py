"""``lenet5 eval``: test loss, accuracy, per-class accuracy and a confusion matrix."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..files import EVAL_RUNS, check_dir_target, next_run_dir
from .options import add_weights_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="measure weights on the test set")
    add_weights_argument(parser)
    parser.add_argument("--data-dir", default=None, help="folder of MNIST-format IDX files "
                        "(default: the data the model was trained on)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where confusion.csv/png go (default: runs/eval/exp, exp2, ...)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluate import evaluate_model, write_confusion
    from ..weights import load_model

    loaded = load_model(args.weights)
    if args.out is not None:  # a file in the way is reported before the work, not after
        check_dir_target(args.out, "--out")
    evaluation = evaluate_model(loaded, args.data_dir)
    out_dir = args.out or next_run_dir(EVAL_RUNS)
    csv_path, png_path = write_confusion(evaluation, out_dir)
    print(f"weights {loaded.path}")
    print(f"test loss {evaluation.loss:.4f}  accuracy {evaluation.accuracy:.2%} "
          f"({int(evaluation.confusion.trace())}/{len(evaluation.labels)})")
    print("per-class accuracy:")
    for digit, accuracy in enumerate(evaluation.per_class_accuracy):
        print(f"  {digit}: {accuracy:.2%}")
    print("confusion matrix (rows: true, columns: predicted):")
    print("     " + " ".join(f"{p:>5}" for p in range(10)))
    for true, counts in enumerate(evaluation.confusion):
        print(f"  {true}: " + " ".join(f"{int(n):>5}" for n in counts))
    print(f"wrote {csv_path} and {png_path}")
    return 0
