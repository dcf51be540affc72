"""Loading MNIST: the bundled copy, folders of IDX files, checksums, shapes and the validation split."""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from lenet5.cli import main
from lenet5.data.mnist import (
    DATASETS,
    VALIDATION_SPLIT_SEED,
    bundled_dir,
    load_split,
    load_splits,
    verify_md5,
)
from lenet5.errors import ChecksumError, DataError

MNIST_MD5 = DATASETS["mnist"].md5


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file by hand (gzipped if the name ends in .gz)."""
    raw = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw, compresslevel=1) if path.suffix == ".gz" else raw)
    return path


def write_split(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return (write_idx(folder / f"{prefix}-images-idx3-ubyte", images.astype(np.uint8)),
            write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels.astype(np.uint8)))


def numbered_images(count: int) -> np.ndarray:
    """Images whose first two pixels spell their own index, so a split can be traced back."""
    images = np.zeros((count, 28, 28), dtype=np.uint8)
    images[:, 0, 0], images[:, 0, 1] = np.arange(count) // 256, np.arange(count) % 256
    return images


def image_index(images: torch.Tensor) -> list[int]:
    return (images[:, 0, 0].long() * 256 + images[:, 0, 1].long()).tolist()


def small_dataset(folder: Path, train: int = 600, test: int = 100) -> Path:
    write_split(folder, "train", numbered_images(train), np.arange(train) % 10)
    write_split(folder, "t10k", numbered_images(test), np.arange(test) % 10)
    return folder


def test_bundled_mnist_shapes_dtypes_and_counts() -> None:
    test_images, test_labels = load_split("test")
    for (images, labels), count in ((load_split("train"), 60000), ((test_images, test_labels), 10000)):
        assert images.shape == (count, 28, 28) and images.dtype == torch.uint8
        assert labels.shape == (count,) and labels.dtype == torch.int64
        assert sorted(labels.unique().tolist()) == list(range(10))
        assert images.max() == 255 and images.min() == 0
    # Published class counts of the MNIST test set: 980 zeros ... 1009 nines.
    assert torch.bincount(test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_bundled_files_match_published_md5() -> None:
    for name, md5 in MNIST_MD5.items():
        verify_md5(bundled_dir() / name, md5)


@pytest.fixture
def corrupted_copy(tmp_path: Path) -> Path:
    """The bundled files copied to tmp, with one byte flipped inside train-labels' deflate stream."""
    folder = tmp_path / "mnist"
    shutil.copytree(bundled_dir(), folder)
    damaged = folder / "train-labels-idx1-ubyte.gz"
    packed = bytearray(damaged.read_bytes())
    packed[len(packed) // 2] ^= 0x01
    damaged.write_bytes(bytes(packed))
    return folder


def test_flipped_byte_fails_the_checksum(corrupted_copy: Path) -> None:
    damaged = corrupted_copy / "train-labels-idx1-ubyte.gz"
    with pytest.raises(ChecksumError, match="does not match the published") as caught:
        verify_md5(damaged, MNIST_MD5[damaged.name])
    assert str(caught.value).startswith(str(damaged))
    verify_md5(corrupted_copy / "t10k-labels-idx1-ubyte.gz", MNIST_MD5["t10k-labels-idx1-ubyte.gz"])


def test_data_verify_cli_reports_the_bad_file(corrupted_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "verify", "--dir", str(corrupted_copy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("lenet5: error: ") and "train-labels-idx1-ubyte.gz: md5" in err[0]


def test_data_verify_cli_accepts_a_good_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(bundled_dir(), tmp_path / "mnist")
    assert main(["data", "verify", "--dir", str(tmp_path / "mnist")]) == 0
    assert capsys.readouterr().out.count("ok ") == 4


def test_flipped_byte_in_a_data_folder_is_a_data_error(corrupted_copy: Path) -> None:
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: corrupt gzip data"):
        load_split("train", corrupted_copy)


def test_folder_of_raw_idx_files_like_torchvision(tmp_path: Path) -> None:
    raw_dir = tmp_path / "MNIST" / "raw"
    raw_dir.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (raw_dir / name.removesuffix(".gz")).write_bytes(gzip.decompress((bundled_dir() / name).read_bytes()))
    images, labels = load_split("test", raw_dir)
    bundled_images, bundled_labels = load_split("test")
    assert torch.equal(images, bundled_images) and torch.equal(labels, bundled_labels)


def test_missing_file_in_a_data_folder(tmp_path: Path) -> None:
    small_dataset(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte.gz \\(or t10k-labels-idx1-ubyte\\)"):
        load_split("test", tmp_path)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data folder not found"):
        load_split("test", tmp_path / "absent")


def test_unknown_split(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown split 'val'"):
        load_split("val", small_dataset(tmp_path))


@pytest.mark.parametrize("shape, labels, culprit, problem", [
    ((10, 32, 32), 10, "images", "images have shape (10, 32, 32), expected (N, 28, 28)"),
    ((10, 784), 10, "images", "images have shape (10, 784), expected (N, 28, 28)"),
    ((10, 28, 28), 9, "labels", "9 labels for 10 images"),
])
def test_non_mnist_shapes_name_the_file(tmp_path: Path, shape, labels, culprit, problem) -> None:
    images_path, labels_path = write_split(tmp_path, "t10k", np.zeros(shape, np.uint8), np.arange(labels) % 10)
    with pytest.raises(DataError) as caught:
        load_split("test", tmp_path)
    message = str(caught.value)
    assert message.startswith(str(images_path if culprit == "images" else labels_path) + ":")
    assert problem in message


def test_labels_outside_0_to_9(tmp_path: Path) -> None:
    _, labels_path = write_split(tmp_path, "t10k", np.zeros((3, 28, 28)), np.array([0, 10, 3]))
    with pytest.raises(DataError, match="labels outside 0..9 \\(min 0, max 10\\)"):
        load_split("test", tmp_path)


def test_images_must_be_uint8(tmp_path: Path) -> None:
    write_split(tmp_path, "t10k", np.zeros((2, 28, 28)), np.array([1, 2]))
    images_path = tmp_path / "t10k-images-idx3-ubyte"
    raw = bytes([0, 0, 0x0C, 3]) + struct.pack(">3I", 2, 28, 28) + bytes(2 * 28 * 28 * 4)  # int32 pixels
    images_path.write_bytes(raw)
    with pytest.raises(DataError, match="images are int32, expected uint8"):
        load_split("test", tmp_path)


def test_validation_split_is_fixed_disjoint_and_complete(tmp_path: Path) -> None:
    folder = small_dataset(tmp_path)
    torch.manual_seed(1)
    first = load_splits(folder, val_size=100)
    torch.manual_seed(2)  # the training seed must not move the validation images
    second = load_splits(folder, val_size=100)
    train, val = image_index(first.train_images), image_index(first.val_images)
    assert train == image_index(second.train_images) and val == image_index(second.val_images)
    assert len(val) == 100 and not set(train) & set(val)
    assert sorted(train + val) == list(range(600))
    assert train == sorted(train) and val == sorted(val)  # file order kept
    expected_val = torch.randperm(600, generator=torch.Generator().manual_seed(VALIDATION_SPLIT_SEED))[:100]
    assert val == sorted(expected_val.tolist())
    assert first.train_labels.tolist() == [i % 10 for i in train]
    assert image_index(first.test_images) == list(range(100))


def test_train_subset_never_borrows_validation_images(tmp_path: Path) -> None:
    folder = small_dataset(tmp_path)
    full = load_splits(folder, val_size=100)
    subset = load_splits(folder, val_size=100, train_subset=50)
    assert len(subset.train_images) == 50
    assert image_index(subset.val_images) == image_index(full.val_images)
    assert set(image_index(subset.train_images)) <= set(image_index(full.train_images))


def test_validation_size_must_leave_training_images(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="--val-size 600 leaves no training images"):
        load_splits(small_dataset(tmp_path), val_size=600)


def test_bundled_validation_split_is_deterministic_and_disjoint() -> None:
    first = load_splits(None, val_size=5000)
    second = load_splits(None, val_size=5000)
    assert torch.equal(first.val_images, second.val_images) and torch.equal(first.train_images, second.train_images)
    assert (len(first.train_images), len(first.val_images), len(first.test_images)) == (55000, 5000, 10000)
    train_rows = {row.tobytes() for row in first.train_images.reshape(len(first.train_images), -1).numpy()}
    val_rows = {row.tobytes() for row in first.val_images.reshape(len(first.val_images), -1).numpy()}
    assert len(train_rows) == 55000 and len(val_rows) == 5000  # MNIST's training images are all distinct
    assert not train_rows & val_rows


def test_train_cli_on_a_bad_data_folder_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = small_dataset(tmp_path / "data")
    images_path = folder / "train-images-idx3-ubyte"
    images_path.write_bytes(images_path.read_bytes() + b"\x00")  # one trailing byte
    code = main(["train", "--data-dir", str(folder), "--project", str(tmp_path / "runs"), "--epochs", "1",
                 "--threads", "1"])
    assert code == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert err == [f"lenet5: error: {images_path}: has trailing bytes: header (600, 28, 28) needs 470400 "
                   "data bytes, found 470401"]
    assert "Traceback" not in captured.out + captured.err
    assert not (tmp_path / "runs").exists()  # no empty run folder (or project folder) left behind
