"""``lenet5 data``: download MNIST-format datasets and verify local copies."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data.mnist import DATASETS


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
