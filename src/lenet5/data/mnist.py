"""MNIST-format datasets: the bundled MNIST, any folder of IDX files, and splits.

Each split lives in memory as one uint8 tensor of shape (N, 28, 28) plus int64 labels; the
training loop indexes batches straight out of it instead of converting images one by one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ..errors import ChecksumError, DataError

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
# The validation split is drawn with its own fixed seed, independent of the training seed,
# so every run (and every compare trial) selects models on the same held-out images.
VALIDATION_SPLIT_SEED = 20_000_229


@dataclass(frozen=True)
class DatasetFiles:
    """File names, md5 sums and download mirrors of one MNIST-format dataset."""

    md5: dict[str, str]  # file name -> md5 of the .gz file
    mirrors: tuple[str, ...]


SPLIT_PREFIX = {"train": "train", "test": "t10k"}

DATASETS: dict[str, DatasetFiles] = {
    "mnist": DatasetFiles(
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
    ),
    "fashion-mnist": DatasetFiles(
        md5={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    ),
}


def bundled_dir() -> Path:
    """The folder inside the package that holds the four official MNIST files."""
    return Path(str(resources.files("lenet5") / "data" / "mnist"))


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_md5(path: Path, expected: str) -> None:
    """Raise :class:`ChecksumError` if ``path`` does not hash to ``expected``."""
    from ..files import check_regular_file

    check_regular_file(path, DataError)
    try:
        actual = md5sum(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if actual != expected:
        raise ChecksumError(f"{path}: md5 {actual} does not match the published {expected}; "
                            "the file is corrupt or not the official release")


def split_files(data_dir: Path, split: str) -> tuple[Path, Path]:
    """Find the images and labels files of ``split`` in ``data_dir``, gzipped or raw."""
    if not data_dir.is_dir():
        problem = "is a file, not a data folder" if data_dir.exists() else "data folder not found"
        raise DataError(f"{data_dir}: {problem}")
    found = []
    for kind, rank in (("images", 3), ("labels", 1)):
        stem = f"{SPLIT_PREFIX[split]}-{kind}-idx{rank}-ubyte"
        candidates = [data_dir / f"{stem}.gz", data_dir / stem]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise DataError(f"{data_dir}: missing {stem}.gz (or {stem}) for the {split} split")
        found.append(path)
    return found[0], found[1]


def load_split(split: str, data_dir: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one split as ``(images uint8 (N, 28, 28), labels int64 (N,))``.

    Args:
        split: "train" or "test".
        data_dir: a folder of MNIST-format IDX files; None for the bundled MNIST, whose md5
            sums are verified on every load.
    """
    from .idx import read_idx  # local: keeps the module import light for the CLI

    if split not in SPLIT_PREFIX:
        raise DataError(f"unknown split {split!r}: choose train or test")
    bundled = data_dir is None
    folder = bundled_dir() if bundled else Path(data_dir)
    images_path, labels_path = split_files(folder, split)
    if bundled:
        for path in (images_path, labels_path):
            verify_md5(path, DATASETS["mnist"].md5[path.name])
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    check_shapes(images, labels, images_path, labels_path)
    return torch.from_numpy(images.astype(np.uint8, copy=False)), torch.from_numpy(labels.astype(np.int64))


def check_shapes(images: np.ndarray, labels: np.ndarray, images_path: Path, labels_path: Path) -> None:
    """Insist on MNIST's layout: uint8 (N, 28, 28) images, N labels in 0..9."""
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{images_path}: images have shape {images.shape}, expected (N, 28, 28)")
    if images.dtype != np.uint8:
        raise DataError(f"{images_path}: images are {images.dtype}, expected uint8")
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: labels have shape {labels.shape}, expected (N,)")
    if len(labels) != len(images):
        raise DataError(f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path.name}")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataError(f"{labels_path}: labels outside 0..9 (min {labels.min()}, max {labels.max()})")


@dataclass
class Splits:
    """Train, validation and test tensors for one run."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def load_splits(data_dir: str | Path | None, val_size: int, train_subset: int | None = None) -> Splits:
    """Load train/test and hold a deterministic validation split out of the training set.

    The test set is returned untouched and is never used to pick a model.
    ``train_subset`` keeps only that many training images (after the validation split).
    """
    images, labels = load_split("train", data_dir)
    test_images, test_labels = load_split("test", data_dir)
    if len(images) == 0:
        raise DataError(f"the training split in {data_dir or 'the bundled MNIST'} has no images")
    if val_size >= len(images):
        raise DataError(f"--val-size {val_size} leaves no training images (the training split has {len(images)})")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(VALIDATION_SPLIT_SEED))
    val_index, train_index = order[:val_size], order[val_size:]
    if train_subset is not None:
        train_index = train_index[:train_subset]
    train_index, _ = train_index.sort()  # keep file order; shuffling is the training loop's job
    val_index, _ = val_index.sort()
    return Splits(images[train_index], labels[train_index], images[val_index], labels[val_index],
                  test_images, test_labels)
