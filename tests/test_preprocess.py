"""The MNIST recipe on realistic images, and every kind of bad image file."""

from __future__ import annotations

import io
import re
import struct
import zlib

import numpy as np
import pytest
import torch
from drawn_digits import (
    as_jpeg,
    as_png,
    bounding_box,
    centre_of_mass,
    draw_digit,
    photo_like,
    similarity,
    with_alpha,
    with_exif_rotation,
)
from PIL import Image

from lenet5.data.mnist import load_split
from lenet5.preprocess import (
    DIGIT_BOX,
    MAX_IMAGE_PIXELS,
    ImageError,
    NoDigitError,
    image_to_mnist,
    open_image,
    to_mnist,
)


def realistic_variants(digit: int) -> dict[str, object]:
    """One digit as the files people have: drawings, photos, scans, rotated, transparent."""
    return {
        "dark-on-light canvas": as_png(draw_digit(digit, canvas=(1200, 900))),
        "off-centre corner": as_png(draw_digit(digit, canvas=(800, 600), box=(20, 30, 90, 140))),
        "off-centre photo jpeg": as_jpeg(photo_like(draw_digit(digit, canvas=(900, 700), box=(600, 380, 160, 240)),
                                                    seed=digit), quality=50),
        "exif rotated": with_exif_rotation(draw_digit(digit, mode="RGB"), orientation=6),
        "alpha": with_alpha(draw_digit(digit)),
        "light-on-dark": Image.eval(draw_digit(digit), lambda v: 255 - v),
        "tight crop": draw_digit(digit, canvas=(100, 130), box=(10, 6, 80, 118)),
    }


@pytest.mark.parametrize("digit", range(10))
def test_realistic_images_come_out_centred_and_20px(digit):
    for kind, source in realistic_variants(digit).items():
        mnist, _ = image_to_mnist(source, name=kind)
        assert mnist.shape == (28, 28) and mnist.dtype == np.uint8
        row, col = centre_of_mass(mnist)
        assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5, (kind, row, col)
        height, width = bounding_box(mnist)
        assert max(height, width) in (DIGIT_BOX, DIGIT_BOX + 1) and min(height, width) <= DIGIT_BOX, kind
        assert mnist.max() == 255, kind  # strokes are saturated, as in MNIST


def test_mnist_digits_pass_through_unchanged():
    images = load_split("test")[0][:50].numpy()
    for image in images:
        np.testing.assert_array_equal(to_mnist(Image.fromarray(image)), image)
        np.testing.assert_array_equal(image_to_mnist(as_png(Image.fromarray(image)))[0], image)


def test_polarity_and_noise_do_not_change_the_result():
    clean, notes = image_to_mnist(draw_digit(3))
    assert "inverted: dark ink on a light background" in notes
    inverted, notes = image_to_mnist(Image.eval(draw_digit(3), lambda v: 255 - v))
    assert not any("inverted" in note for note in notes)
    noisy, _ = image_to_mnist(photo_like(draw_digit(3), seed=1))
    assert np.abs(clean.astype(int) - inverted).max() <= 1
    assert similarity(clean, noisy) > 0.9  # shading and grain are gone
    assert similarity(clean, image_to_mnist(draw_digit(1))[0]) < 0.7  # the measure tells digits apart


def test_exif_orientation_is_applied_once():
    upright, _ = image_to_mnist(draw_digit(7, mode="RGB"))
    for orientation in (3, 6, 8):
        image, notes = open_image(with_exif_rotation(draw_digit(7, mode="RGB"), orientation))
        assert f"rotated by EXIF orientation {orientation}" in notes
        rotated = to_mnist(image)  # applies EXIF again: must not turn it a second time
        assert similarity(rotated, upright) > 0.9, orientation


def test_white_strokes_on_a_transparent_canvas_are_read_from_alpha():
    dark_on_clear = with_alpha(draw_digit(4))
    light = np.asarray(dark_on_clear).copy()
    light[..., :3] = 255  # white strokes, invisible once flattened onto white
    mnist, notes = image_to_mnist(Image.fromarray(light, mode="RGBA"))
    assert "read the ink from the alpha channel" in notes
    np.testing.assert_array_equal(mnist, image_to_mnist(dark_on_clear)[0])


def test_a_speck_far_from_the_digit_does_not_shrink_it():
    image = draw_digit(1, canvas=(600, 600))
    image.paste(0, (20, 20, 26, 26))  # a dust speck in the corner
    mnist, _ = image_to_mnist(image)
    assert max(bounding_box(mnist)) == DIGIT_BOX


def test_arrays_and_tensors_of_every_supported_kind():
    drawn = np.asarray(draw_digit(5))
    expected, _ = image_to_mnist(drawn)
    sources = {
        "uint16": drawn.astype(np.uint16) * 257,
        "float [0,1]": drawn / 255.0,
        "rgb": np.stack([drawn] * 3, axis=-1),
        "rgba": np.dstack([drawn] * 3 + [np.full_like(drawn, 255)]),
        "tensor CHW": torch.from_numpy(drawn / 255.0).float().unsqueeze(0),
        "bool": drawn > 127,
    }
    for kind, source in sources.items():
        mnist, _ = image_to_mnist(source, name=kind)
        assert similarity(mnist, expected) > 0.95, kind


def test_sixteen_bit_and_cmyk_files_are_read():
    drawn = draw_digit(2)
    expected, _ = image_to_mnist(drawn)
    sixteen = Image.fromarray(np.asarray(drawn).astype(np.uint16) * 257)
    mnist, notes = image_to_mnist(as_png(sixteen))
    assert "16-bit image: scaled to 8 bits" in notes
    assert np.abs(mnist.astype(int) - expected).max() <= 1
    cmyk = io.BytesIO()
    drawn.convert("RGB").convert("CMYK").save(cmyk, format="JPEG", quality=95)
    mnist, notes = image_to_mnist(cmyk.getvalue())
    assert "CMYK image: converted to RGB" in notes
    assert similarity(mnist, expected) > 0.9


def test_animated_gif_uses_the_first_frame_and_says_so():
    frames = [draw_digit(1), draw_digit(0)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    mnist, notes = image_to_mnist(buffer.getvalue())
    assert "animated GIF: used the first frame of 2" in notes
    assert similarity(mnist, image_to_mnist(frames[0])[0]) > 0.95
    assert similarity(mnist, image_to_mnist(frames[1])[0]) < 0.8


def _png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels: a decompression bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("data, message", [
    (b"", "empty file (0 bytes)"),
    (b"hello, this is a text file\n", "not an image file PIL can read"),
    (as_png(draw_digit(8))[:300], "truncated or corrupt PNG"),
    (as_jpeg(draw_digit(8))[:700], "truncated or corrupt JPEG"),
    (_png_header(10_000, 6_000), "over the 50,000,000-pixel limit"),
    (_png_header(100_000, 100_000), "decompression bomb"),
])
def test_bad_files_raise_a_clear_image_error(tmp_path, data, message):
    path = tmp_path / "bad.img"
    path.write_bytes(data)
    with pytest.raises(ImageError, match=re.escape(message)) as caught:
        image_to_mnist(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert "\n" not in str(caught.value)


def test_bomb_is_refused_before_decoding(monkeypatch):
    def must_not_decode(*_):
        raise AssertionError("decoded a refused image")

    monkeypatch.setattr(Image.Image, "load", must_not_decode)
    with pytest.raises(ImageError, match="refused before decoding"):
        open_image(_png_header(8_000, 8_000))
    assert MAX_IMAGE_PIXELS < 8_000 * 8_000
    with pytest.raises(ImageError, match="over the 100-pixel limit"):
        open_image(_png_header(20, 20), max_pixels=100)


@pytest.mark.parametrize("blank", [
    Image.new("L", (300, 200), 255),
    Image.new("RGB", (28, 28), (0, 0, 0)),
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)),
    Image.open(io.BytesIO(as_jpeg(photo_like(Image.new("L", (640, 480), 230)), quality=40))),
])
def test_blank_images_report_no_digit(blank):
    with pytest.raises(NoDigitError, match="no digit found"):
        image_to_mnist(blank, name="blank")


@pytest.mark.parametrize("source, message", [
    (np.zeros((4, 5, 6)), "is not an image"),
    (np.zeros((0, 5)), "has no pixels"),
    (np.full((28, 28), -0.5), "not a normalised tensor"),
    (np.full((28, 28), np.nan), "NaN"),
    (12345, "cannot read an image from a int"),
])
def test_unusable_arrays_and_objects(source, message):
    with pytest.raises(ImageError, match=message):
        open_image(source)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="file not found"):
        open_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a folder"):
        open_image(tmp_path)
