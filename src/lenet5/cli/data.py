"""``lenet5 data``: download MNIST-format datasets and verify local copies."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data.mnist import DATASETS
from .options import add_config_arguments, overrides_from_args

AUGMENT_OPTIONS = {"augment", "rotation", "scale", "translation", "shear", "elastic_alpha", "elastic_sigma",
                   "data_dir", "seed"}
PREVIEW_LIMIT = 64  # rows or columns; a bigger grid is unreadable anyway


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="download or verify MNIST-format data")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    download = actions.add_parser("download", help="fetch the four IDX files from the public mirrors")
    download.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    download.add_argument("--dest", type=Path, required=True, help="folder to write the files into")
    download.add_argument("--mirror", action="append", default=None, metavar="URL",
                          help="base URL to try instead of the published mirrors (repeatable, tried in order)")
    download.add_argument("--timeout", type=float, default=30, help="seconds before a silent mirror is skipped")
    download.set_defaults(func=run_download)
    verify = actions.add_parser("verify", help="check a folder's files against the published md5 sums")
    verify.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    verify.add_argument("--dir", type=Path, default=None, help="folder to check (default: the bundled MNIST)")
    verify.set_defaults(func=run_verify)
    preview = actions.add_parser("preview", help="a PNG grid of training images beside their augmented versions")
    add_config_arguments(preview, only=AUGMENT_OPTIONS)
    preview.add_argument("--recipe", default=None, metavar="NAME", help="start from a recipe's augmentation")
    preview.add_argument("--out", type=Path, default=Path("augment-preview.png"), help="where the PNG goes")
    preview.add_argument("--count", type=int, default=8, help="training images, one per row (default: 8)")
    preview.add_argument("--draws", type=int, default=5, help="distorted versions of each (default: 5)")
    preview.set_defaults(func=run_preview)


def run_download(args: argparse.Namespace) -> int:
    from ..data.download import download_dataset

    for path in download_dataset(args.dataset, args.dest, mirrors=args.mirror, timeout=args.timeout):
        print(f"ok {path}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from ..data.mnist import bundled_dir, verify_md5

    folder = args.dir or bundled_dir()
    for name, md5 in DATASETS[args.dataset].md5.items():
        verify_md5(folder / name, md5)
        print(f"ok {folder / name}")
    return 0


def run_preview(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..data.augment import distortion_of, preview
    from ..data.mnist import load_split
    from ..errors import Lenet5Error
    from ..plots import plot_augmentation
    from ..recipes import DEFAULT_RECIPE, recipe_config

    for flag, value in (("--count", args.count), ("--draws", args.draws)):
        if not 1 <= value <= PREVIEW_LIMIT:
            raise Lenet5Error(f"invalid {flag} {value}: must be in [1, {PREVIEW_LIMIT}]")
    config = recipe_config(args.recipe or DEFAULT_RECIPE, overrides_from_args(args))
    if config.augment == "none" and args.augment is None:
        config = replace(config, augment="affine")  # previewing "none" would show nothing
    config.validate()
    distortion = distortion_of(config)
    images, _ = load_split("train", config.data_dir)
    distorted = preview(images[:args.count], distortion, args.draws, config.seed)
    title = (f"augment={distortion.kind}: rotation {distortion.rotation:g} deg, scale {distortion.scale:g}, "
             f"translation {distortion.translation:g} px, shear {distortion.shear:g} deg")
    if distortion.kind == "elastic":
        title += f", alpha {distortion.elastic_alpha:g}, sigma {distortion.elastic_sigma:g} px"
    plot_augmentation(images[:args.count].numpy() / 255, distorted.numpy(), args.out, title)
    print(f"wrote {args.out}")
    return 0
