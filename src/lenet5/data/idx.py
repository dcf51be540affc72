"""A strict reader for the IDX format that MNIST, Fashion-MNIST and KMNIST use.

IDX: two zero bytes, a dtype code, the number of dimensions, then one big-endian uint32 per
dimension, then the data. Every field is checked so that a corrupt, truncated or
mismatched file fails with a message naming the file and the problem.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

# IDX dtype codes and the big-endian numpy dtypes they stand for.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
HEADER_BYTES = 4  # 0x00 0x00 dtype ndim


def read_idx_bytes(path: str | Path) -> bytes:
    """Return the raw IDX bytes of ``path``, gunzipping if it is a .gz file."""
    from ..files import read_bytes

    raw = read_bytes(Path(path), DataError)
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file name says
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: corrupt gzip data ({exc})") from None
    return raw


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into a numpy array, validating magic, dtype, dimensions and length.

    Args:
        raw: the uncompressed file contents.
        name: how to refer to the data in error messages (usually the file path).

    Returns:
        An array in native byte order with the shape the header declares.
    """
    if len(raw) < HEADER_BYTES:
        raise DataError(f"{name}: too short for an IDX header ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{name}: bad IDX magic number {raw[:4].hex()} (expected 0000xxyy)")
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        raise DataError(f"{name}: unknown IDX dtype code 0x{code:02x}")
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares zero dimensions")
    dims_end = HEADER_BYTES + 4 * ndim
    if len(raw) < dims_end:
        raise DataError(f"{name}: truncated IDX header ({ndim} dimensions declared)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=HEADER_BYTES))
    dtype = IDX_DTYPES[code]
    # Python ints: four uint32 sizes can multiply past int64, where numpy would wrap around.
    expected = math.prod(shape) * dtype.itemsize
    actual = len(raw) - dims_end
    if actual != expected:
        problem = "truncated" if actual < expected else "has trailing bytes"
        raise DataError(f"{name}: {problem}: header {shape} needs {expected} data bytes, found {actual}")
    data = np.frombuffer(raw, dtype=dtype, offset=dims_end).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw or .gz) into a numpy array; see :func:`parse_idx`."""
    return parse_idx(read_idx_bytes(path), str(path))
