"""The IDX reader: a hand-written file round-trips, and every kind of damage is named.

Files are built byte by byte here (not with the reader's own code), so a reader that
misparses the header cannot agree with itself by accident.
"""

from __future__ import annotations

import gzip
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from lenet5.data.idx import read_idx
from lenet5.errors import DataError

UBYTE = 0x08
INT32 = 0x0C
FLOAT64 = 0x0E


def idx_bytes(code: int, shape: tuple[int, ...], data: bytes) -> bytes:
    """The IDX layout spelled out: 0x00 0x00, dtype code, ndim, big-endian uint32 dims, data."""
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + data


def write(path: Path, raw: bytes, gz: bool) -> Path:
    path = path.with_name(path.name + ".gz") if gz else path
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


@pytest.fixture(params=[False, True], ids=["raw", "gz"])
def gz(request: pytest.FixtureRequest) -> bool:
    return request.param


def test_round_trip_uint8_images(tmp_path: Path, gz: bool) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write(tmp_path / "images-idx3-ubyte", idx_bytes(UBYTE, (2, 3, 4), images.tobytes()), gz)
    loaded = read_idx(path)
    assert loaded.dtype == np.uint8
    assert loaded.shape == (2, 3, 4)
    np.testing.assert_array_equal(loaded, images)


def test_round_trip_big_endian_types(tmp_path: Path, gz: bool) -> None:
    values = [1, -2, 70000, -(2**31)]
    path = write(tmp_path / "ints-idx1-int", idx_bytes(INT32, (4,), struct.pack(">4i", *values)), gz)
    ints = read_idx(path)
    assert ints.dtype == np.int32 and ints.dtype.isnative
    assert ints.tolist() == values

    floats = [0.5, -1.25, 3e10]
    path = write(tmp_path / "floats-idx1-double", idx_bytes(FLOAT64, (3,), struct.pack(">3d", *floats)), gz)
    assert read_idx(path).tolist() == floats


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    # torchvision's raw/ folders hold unzipped files; some mirrors serve .gz names unzipped.
    raw = idx_bytes(UBYTE, (3,), bytes([7, 8, 9]))
    (tmp_path / "labels.gz").write_bytes(raw)
    (tmp_path / "labels").write_bytes(gzip.compress(raw))
    assert read_idx(tmp_path / "labels.gz").tolist() == [7, 8, 9]
    assert read_idx(tmp_path / "labels").tolist() == [7, 8, 9]


BROKEN = {
    "too short": (b"\x00\x00\x08", "too short for an IDX header"),
    "bad magic": (b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"\x05", "bad IDX magic number 01020801"),
    "unknown dtype": (idx_bytes(0x07, (1,), b"\x05"), "unknown IDX dtype code 0x07"),
    "zero dims": (bytes([0, 0, UBYTE, 0]), "zero dimensions"),
    "truncated header": (bytes([0, 0, UBYTE, 3]) + struct.pack(">2I", 2, 28), "truncated IDX header (3 dimensions"),
    "truncated data": (idx_bytes(UBYTE, (2, 28, 28), bytes(2 * 28 * 28 - 1)), "truncated: header (2, 28, 28) needs 1568"),
    "trailing bytes": (idx_bytes(UBYTE, (4,), bytes(5)), "has trailing bytes: header (4,) needs 4 data bytes, found 5"),
    "int32 data cut mid-value": (idx_bytes(INT32, (2,), bytes(7)), "needs 8 data bytes, found 7"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_files_name_the_file_and_the_problem(tmp_path: Path, gz: bool, case: str) -> None:
    raw, problem = BROKEN[case]
    path = write(tmp_path / "broken-idx-ubyte", raw, gz)
    with pytest.raises(DataError) as caught:
        read_idx(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert problem in message
    assert "\n" not in message


def test_truncated_gzip(tmp_path: Path) -> None:
    packed = gzip.compress(idx_bytes(UBYTE, (1000,), bytes(range(256)) * 3 + bytes(232)))
    path = tmp_path / "labels.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}: corrupt gzip data"):
        read_idx(path)


def test_gzip_with_a_flipped_byte(tmp_path: Path) -> None:
    packed = bytearray(gzip.compress(idx_bytes(UBYTE, (1000,), np.random.default_rng(0).bytes(1000))))
    packed[len(packed) // 2] ^= 0xFF  # inside the deflate stream, past the 10-byte header
    path = tmp_path / "labels.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}: corrupt gzip data"):
        read_idx(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere-idx1-ubyte.gz"
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}: file not found$"):
        read_idx(path)


def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a folder, not a file"):
        read_idx(tmp_path)
