"""Property tests: random and mutated inputs may only ever raise the project's own errors.

Hypothesis generates IDX files, image bytes, odd images and HTTP requests; each test says
which exception is allowed out (a :class:`Lenet5Error` subclass, or a 4xx JSON answer) and
fails on anything else. Example counts are fixed so ``make test`` stays bounded.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from lenet5.data.idx import IDX_DTYPES, parse_idx, read_idx
from lenet5.errors import DataError, Lenet5Error
from lenet5.preprocess import ImageError, image_to_mnist

# LENET5_FUZZ_EXAMPLES=5000 searches harder by hand; make test keeps the bounded default.
EXAMPLES = int(os.environ.get("LENET5_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
FEW = settings(max_examples=max(1, EXAMPLES * 2 // 5), deadline=None, database=None,
               suppress_health_check=list(HealthCheck))
UINT32 = st.integers(0, 2**32 - 1)
SMALL_DIM = st.integers(0, 6)


def idx_header(code: int, dims: list[int]) -> bytes:
    return bytes([0, 0, code, len(dims) % 256]) + struct.pack(f">{len(dims)}I", *dims)


# ---------------------------------------------------------------- IDX reader

@FUZZ
@given(raw=st.binary(max_size=300))
def test_idx_random_bytes_raise_only_data_error(raw: bytes) -> None:
    try:
        parse_idx(raw, "fuzz")
    except DataError:
        pass


@FUZZ
@given(code=st.integers(0, 255), dims=st.lists(st.one_of(SMALL_DIM, UINT32), max_size=6),
       body=st.binary(max_size=400))
def test_idx_random_headers_raise_only_data_error(code: int, dims: list[int], body: bytes) -> None:
    try:
        array = parse_idx(idx_header(code, dims) + body, "fuzz")
    except DataError:
        return
    # Anything accepted must be exactly what the header declared.
    assert array.shape == tuple(dims)
    assert array.nbytes == len(body)


@FUZZ
@given(code=st.sampled_from(sorted(IDX_DTYPES)), dims=st.lists(SMALL_DIM, min_size=1, max_size=3),
       flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4),
       cut=st.integers(0, 64), gz=st.booleans())
def test_idx_mutated_valid_files_raise_only_data_error(code, dims, flips, cut, gz) -> None:
    """Start from a valid file, flip bytes and cut its end, then read it from disk (raw or gzipped)."""
    itemsize = IDX_DTYPES[code].itemsize
    raw = bytearray(idx_header(code, dims) + bytes(int(np.prod(dims)) * itemsize))
    for position, mask in flips:
        raw[position % len(raw)] ^= mask
    raw = bytes(raw[:len(raw) - cut] if cut < len(raw) else raw)
    data = gzip.compress(raw) if gz else raw
    if gz and flips:
        data = data[:len(data) - cut]  # a truncated gzip stream too
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz-idx3-ubyte"
        path.write_bytes(data)
        try:
            read_idx(path)
        except DataError:
            pass


def test_idx_sizes_that_overflow_int64_are_refused() -> None:
    raw = idx_header(0x0E, [2**32 - 1] * 3) + bytes(16)  # 8-byte items: the size needs ~2**99
    with pytest.raises(DataError, match="truncated"):
        parse_idx(raw, "huge")


# ---------------------------------------------------------------- images

def check_digit(source) -> None:
    """Preprocess ``source``: a uint8 28x28 digit, or an ImageError; nothing else may escape."""
    try:
        digit, notes = image_to_mnist(source, name="fuzz")
    except ImageError:
        return
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    assert all(isinstance(note, str) for note in notes)


@FUZZ
@given(raw=st.binary(max_size=2000))
def test_random_bytes_are_an_image_error(raw: bytes) -> None:
    check_digit(raw)


MODES = ["1", "L", "P", "RGB", "RGBA", "LA", "PA", "I", "I;16", "F", "CMYK", "YCbCr", "HSV", "LAB", "RGBX",
         "La", "RGBa", "I;16B", "I;16L"]
FORMATS = ["PNG", "BMP", "TIFF", "GIF", "JPEG", "WEBP", "PPM", "ICO", "TGA", "PCX"]


@st.composite
def odd_images(draw) -> Image.Image:
    """A random image of any PIL mode and an odd size, with random pixels or a drawn blob."""
    mode = draw(st.sampled_from(MODES))
    width, height = draw(st.integers(1, 120)), draw(st.integers(1, 120))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    base = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")
    if draw(st.booleans()):  # a dark blob on light paper, so some images do hold "a digit"
        pixels = np.full((height, width, 3), 230, np.uint8)
        pixels[height // 4: 3 * height // 4 + 1, width // 3: 2 * width // 3 + 1] = 20
        base = Image.fromarray(pixels, "RGB")
    try:
        return base.convert(mode)
    except ValueError:
        return base.convert("L").convert(mode)


@FUZZ
@given(image=odd_images(), fmt=st.sampled_from(FORMATS))
def test_odd_images_saved_in_any_format_decode_or_raise_image_error(image: Image.Image, fmt: str) -> None:
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError, TypeError):
        assume(False)  # that format cannot store that mode: nothing to test
    check_digit(buffer.getvalue())
    check_digit(image)  # the PIL image itself, undecoded


@FUZZ
@given(image=odd_images(), cut=st.integers(1, 400), flips=st.lists(st.integers(0, 10_000), max_size=5))
def test_truncated_or_corrupted_pngs_raise_image_error(image: Image.Image, cut: int, flips: list[int]) -> None:
    buffer = io.BytesIO()
    try:
        image.save(buffer, format="PNG")
    except (OSError, ValueError):
        assume(False)
    raw = bytearray(buffer.getvalue())
    for position in flips:
        raw[position % len(raw)] ^= 0x5A
    check_digit(bytes(raw[:max(1, len(raw) - cut)]))


ARRAY_DTYPES = [np.uint8, np.uint16, np.int8, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_,
                np.complex64]


@FUZZ
@given(shape=st.lists(st.integers(0, 40), min_size=0, max_size=4), dtype=st.sampled_from(ARRAY_DTYPES),
       scale=st.sampled_from([1, 255, 65535, -1, 1e30, float("nan")]), seed=st.integers(0, 2**16))
def test_random_arrays_and_tensors_decode_or_raise_image_error(shape, dtype, scale, seed) -> None:
    import torch

    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"):
        array = (rng.random(shape) * scale).astype(dtype)
    check_digit(array)
    if dtype not in (np.uint16, np.complex64):  # torch has no uint16 or complex pixels to offer
        check_digit(torch.from_numpy(np.ascontiguousarray(array)))


# ---------------------------------------------------------------- web API

@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from lenet5.config import TrainConfig
    from lenet5.model import LeNet5
    from lenet5.predict import load
    from lenet5.preprocess import Normalization
    from lenet5.web.app import create_app
    from lenet5.weights import save_weights

    path = tmp_path_factory.mktemp("fuzz_weights") / "model.safetensors"
    save_weights(path, LeNet5(), TrainConfig(), Normalization("[-1,1]", 0.5, 0.5))
    return TestClient(create_app(load(path), max_upload_bytes=64 * 1024), raise_server_exceptions=False)


CONTENT_TYPES = st.one_of(
    st.sampled_from(["image/png", "image/jpeg", "multipart/form-data", "multipart/form-data; boundary=x",
                     "multipart/form-data; boundary=", "application/json", "text/plain", "", "image/png; x=y",
                     "IMAGE/PNG", "image/gif"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40))


def assert_clean_answer(response) -> None:
    assert response.status_code < 500, response.text
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    if response.status_code >= 400:
        assert isinstance(body.get("error"), str) and body["error"]
    else:
        assert 0 <= body["digit"] <= 9


@FEW
@given(body=st.binary(max_size=3000), content_type=CONTENT_TYPES)
def test_any_body_with_any_content_type_gets_a_clean_answer(client, body: bytes, content_type: str) -> None:
    assert_clean_answer(client.post("/api/predict", content=body, headers={"content-type": content_type}))


@FEW
@given(image=odd_images(), fmt=st.sampled_from(["PNG", "JPEG", "GIF", "BMP"]), field=st.sampled_from(["file", "img"]),
       filename=st.text(max_size=30), declared=st.sampled_from(["image/png", "application/octet-stream", ""]))
def test_multipart_uploads_of_odd_images_get_a_clean_answer(client, image, fmt, field, filename, declared) -> None:
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):
        assume(False)
    files = {field: (filename or "x", buffer.getvalue(), declared)}
    assert_clean_answer(client.post("/api/predict", files=files))


@FEW
@given(path=st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=40),
       method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]))
def test_random_paths_and_methods_never_get_a_server_error(client, path: str, method: str) -> None:
    response = client.request(method, "/" + path.lstrip("/"))
    assert response.status_code < 500, (method, path, response.text)


def test_only_lenet5_errors_are_project_errors() -> None:
    # The contract above leans on this: every refusal type is a Lenet5Error.
    assert issubclass(ImageError, Lenet5Error) and issubclass(DataError, Lenet5Error)
