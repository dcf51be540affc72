"""``lenet5 export``: write a trained run as a single-file ONNX model for onnxruntime."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="export weights to ONNX (needs the onnx extra)")
    parser.add_argument("run", nargs="?", default=None, metavar="RUN",
                        help="a run folder or .safetensors file (default: the newest run in runs/train)")
    parser.add_argument("--format", choices=("onnx",), default="onnx", help="export format (default: onnx)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output file (default: model.onnx next to the weights, where predict looks)")
    parser.add_argument("--no-check", dest="check", action="store_false",
                        help="skip comparing onnxruntime's logits with PyTorch's on sample images")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import Lenet5Error
    from ..export import check_against_torch, export_onnx
    from ..files import check_dir_target
    from ..predict import ONNX_FILE
    from ..weights import load_model

    loaded = load_model(args.run)
    out = args.out or loaded.path.parent / ONNX_FILE
    if out.is_dir():
        raise Lenet5Error(f"--out {out}: is a folder; name the .onnx file to write")
    check_dir_target(out.parent, "--out")
    export_onnx(loaded, out)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB) from {loaded.path}")
    if args.check:
        difference = check_against_torch(loaded, out)
        print(f"onnxruntime vs PyTorch on 1000 test images: max |logit difference| {difference:.2e}, "
              "same predicted digits")
    return 0
