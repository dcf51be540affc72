"""``lenet5 predict``: read digits from image files and folders, one line (or object) per file.

A file that cannot be read gets its own error line; the others are still predicted, and the
exit status is 1 if any file failed.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Iterator

from .options import add_weights_argument

FORMATS = ("table", "json", "csv")
DIGITS = range(10)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("predict", help="recognise digits in image files or folders")
    parser.add_argument("paths", nargs="+", type=Path, metavar="FILES_OR_DIRS",
                        help="image files, or folders whose image files are all read")
    add_weights_argument(parser)
    parser.add_argument("--backend", choices=("torch", "onnx"), default="torch",
                        help="onnx runs the run's model.onnx (from `lenet5 export`) in onnxruntime")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument("--top-k", type=int, default=3, help="most likely digits to list (default: 3)")
    parser.add_argument("--save-preprocessed", type=Path, default=None, metavar="DIR",
                        help="write the 28x28 image the model saw for each file into DIR")
    parser.add_argument("--batch-size", type=int, default=256, help="files preprocessed and predicted together")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: the backend's choice)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import check_threads
    from ..errors import Lenet5Error
    from ..files import check_dir_target
    from ..predict import load

    for flag, value in (("--batch-size", args.batch_size), ("--top-k", args.top_k)):
        if value < 1:
            raise Lenet5Error(f"invalid {flag} {value}: must be at least 1")
    if args.threads is not None:
        check_threads(args.threads)
    files = list(collect_files(args.paths))
    if args.save_preprocessed is not None:  # before any work: a file in the way is known now
        check_dir_target(args.save_preprocessed, "--save-preprocessed")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    predictor = load(args.weights, backend=args.backend, threads=args.threads)
    rows, saved = [], set()
    writer = _table_writer(args.top_k) if args.format == "table" else None
    for start in range(0, len(files), args.batch_size):
        batch = files[start:start + args.batch_size]
        for path, result in zip(batch, predictor.predict_each(batch, names=[str(p) for p in batch])):
            row = _row(path, result, args.top_k)
            rows.append(row)
            if writer:
                writer(row, getattr(result, "notes", []))
            if args.save_preprocessed and "error" not in row:
                _save_preprocessed(result.preprocessed, args.save_preprocessed, path, saved)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    elif args.format == "csv":
        print(_csv(rows), end="")
    failed = sum("error" in row for row in rows)
    if failed:
        print(f"lenet5: {failed} of {len(rows)} files failed", file=sys.stderr)
    return 1 if failed else 0


def collect_files(paths: list[Path]) -> Iterator[Path]:
    """Each file as given; a folder's image files (by extension), in natural order."""
    from PIL import Image

    from ..errors import Lenet5Error
    from ..files import natural_key

    extensions = {ext.lower() for ext in Image.registered_extensions()}
    for path in paths:
        if path.is_dir():
            try:
                found = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in extensions),
                               key=natural_key)
            except OSError as exc:
                raise Lenet5Error(f"{path}: cannot list the folder ({exc.strerror or exc})") from None
            if not found:  # an empty table and exit 0 would look like success
                raise Lenet5Error(f"{path}: no image files in this folder (looked for .png, .jpg, .bmp, ...)")
            yield from found
        else:
            yield path  # a missing or unreadable file becomes that file's error line


def _row(path: Path, result, top_k: int) -> dict:
    from ..preprocess import ImageError

    if isinstance(result, ImageError):
        return {"file": str(path), "error": result.reason}
    return {"file": str(path), "digit": result.digit, "probability": result.probability,
            "probabilities": result.probabilities,
            "top_k": [{"digit": d, "probability": p} for d, p in result.top(top_k)], "notes": result.notes}


def _table_writer(top_k: int):
    """Print one aligned line per file as soon as its batch is done."""
    print(f"{'file':<40} digit  probability  top-{top_k}")

    def write(row: dict, notes: list[str]) -> None:
        if "error" in row:
            print(f"{row['file']:<40} error: {row['error']}")
            return
        top = ", ".join(f"{t['digit']} {t['probability']:.1%}" for t in row["top_k"])
        note = f"  ({'; '.join(notes)})" if notes else ""
        print(f"{row['file']:<40} {row['digit']:>5}  {row['probability']:>11.2%}  {top}{note}")

    return write


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["file", "digit", "probability", *(f"p{d}" for d in DIGITS), "error"])
    for row in rows:
        if "error" in row:
            writer.writerow([row["file"], "", "", *([""] * len(DIGITS)), row["error"]])
        else:
            writer.writerow([row["file"], row["digit"], f"{row['probability']:.6f}",
                             *(f"{p:.6f}" for p in row["probabilities"]), ""])
    return buffer.getvalue()


def _save_preprocessed(digit, out_dir: Path, path: Path, taken: set[str]) -> None:
    """Write ``out_dir/<stem>.png`` (``<stem>-2.png``... if two inputs share a stem), atomically."""
    from PIL import Image

    from ..files import atomic_write_bytes

    name, number = f"{path.stem}.png", 1
    while name in taken:
        number += 1
        name = f"{path.stem}-{number}.png"
    taken.add(name)
    buffer = io.BytesIO()
    Image.fromarray(digit, mode="L").save(buffer, format="PNG")
    atomic_write_bytes(out_dir / name, buffer.getvalue())
