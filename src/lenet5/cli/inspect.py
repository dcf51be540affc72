"""``lenet5 inspect``: write a self-contained visual report of a trained model."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..files import INSPECT_RUNS
from .options import add_weights_argument

MAX_DIGITS = 20  # each digit adds a row of feature maps to the report; thousands would never finish


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("inspect", help="write report.html: curves, confusions, mistakes, filters, "
                                   "feature maps, PCA, calibration")
    add_weights_argument(parser)
    parser.add_argument("--image", type=Path, default=None, metavar="FILE",
                        help="show this image's feature maps (any photo or scan of a digit) instead of test digits")
    parser.add_argument("--digits", type=int, default=3, metavar="N",
                        help="how many test digits to show feature maps for (default: 3)")
    parser.add_argument("--data-dir", default=None, help="folder of MNIST-format IDX files "
                        "(default: the data the model was trained on)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where report.html and the PNGs go (default: runs/inspect/exp, exp2, ...)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import Lenet5Error
    from ..files import output_folder
    from ..inspection.probes import digit_from_file
    from ..inspection.report import build_report
    from ..weights import resolve_weights

    if not 1 <= args.digits <= MAX_DIGITS:
        raise Lenet5Error(f"invalid --digits {args.digits}: must be in 1..{MAX_DIGITS}")
    if args.image is not None:
        if not args.image.exists():
            raise Lenet5Error(f"{args.image}: image file not found")
        digit_from_file(args.image)  # an unreadable image is reported before an output folder is made
    resolve_weights(args.weights)  # and so is a missing model
    with output_folder(args.out, INSPECT_RUNS) as out_dir:  # removed again if the report fails
        report = build_report(args.weights, out_dir, image=args.image, data_dir=args.data_dir, digits=args.digits)
    print(f"wrote {report} (open it in a browser; it works offline) and its figures in {out_dir}")
    return 0
