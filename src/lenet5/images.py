"""Reading images people actually have, safely: files, bytes, PIL images, arrays and tensors.

:func:`open_image` turns any supported source into a decoded PIL image (EXIF orientation
applied, the first frame of an animation) plus notes about what it had to do. Anything it
cannot read becomes an :class:`ImageError` with a one-line reason, never a traceback.
``lenet5.preprocess`` re-exports these names; import them from there.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import Lenet5Error

# Refuse images above 50 megapixels before decoding them: a 48 MP phone photo still fits,
# while a 20-kilobyte PNG that claims 30000x30000 pixels (a decompression bomb) does not.
MAX_IMAGE_PIXELS = 50_000_000
UINT16_MAX = 65535
UINT8_MAX = 255
ORIENTATION_TAG = 0x0112  # EXIF "Orientation"
HIGH_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


class ImageError(Lenet5Error):
    """An image that cannot be used: unreadable, not an image, truncated, too big, unsupported.

    ``reason`` is the problem alone; ``str(error)`` prefixes the file name when one is known.
    """

    def __init__(self, reason: str, name: str | None = None) -> None:
        self.reason = reason
        self.name = name
        super().__init__(f"{name}: {reason}" if name else reason)


class NoDigitError(ImageError):
    """The image is blank: reporting "no digit found" beats a confident guess."""

    def __init__(self, name: str | None = None, reason: str = "no digit found (the image is blank)") -> None:
        super().__init__(reason, name)


class ImageTooLargeError(ImageError):
    """More pixels than the cap allows, refused before decoding (a web API answers 413)."""


def open_image(source: Any, *, name: str | None = None,
               max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[Image.Image, list[str]]:
    """Decode ``source`` into a PIL image with EXIF orientation applied.

    Args:
        source: a path, encoded bytes, a PIL image, a numpy array (HxW or HxWxC with 1, 3 or
            4 channels; uint8, uint16, bool or float in [0, 1]) or a torch tensor (also CxHxW).
        name: how errors refer to the image (defaults to the path for paths).
        max_pixels: images with more pixels are refused before any pixel is decoded.

    Returns:
        The decoded image and notes about what was done to it, such as
        "animated GIF: used the first frame of 3".

    Raises:
        ImageError: the source cannot be read as an image.
    """
    if isinstance(source, (str, Path)):
        name = name or str(source)
        return _decode(_read_file(Path(source), name), name, max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode(bytes(source), name, max_pixels)
    if isinstance(source, Image.Image):
        _check_size(source.size, name, max_pixels)
        try:
            source.load()  # an image from Image.open is lazy: decoding can still fail here
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageError(f"truncated or corrupt image ({exc})", name) from None
        return _finish(source, name, [])
    if _is_tensor(source):
        source = _tensor_to_numpy(source, name)
    if isinstance(source, np.ndarray):
        image, notes = _array_to_image(source, name)
        _check_size(image.size, name, max_pixels)
        return image, notes
    raise ImageError(f"cannot read an image from a {type(source).__name__}", name)


def _read_file(path: Path, name: str) -> bytes:
    from .files import read_bytes

    try:
        data = read_bytes(path)
    except Lenet5Error as exc:
        raise ImageError(exc.reason, name) from None
    if not data:
        raise ImageError("empty file (0 bytes)", name)
    return data


def declared_pixels(data: bytes) -> int | None:
    """How many pixels encoded image ``data`` declares in its header (None if PIL cannot read it).

    Nothing is decoded, so this is cheap and safe on a decompression bomb.
    """
    try:
        width, height = _open_header(data).size
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        return None  # open_image, which runs next, says what is wrong with it
    return width * height


def _open_header(data: bytes) -> Image.Image:
    """A lazy PIL image: only the header is read, so sizes can be checked before decoding."""
    # PIL's own bomb check warns (or raises) far above our cap; ours decides.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data))


def _decode(data: bytes, name: str | None, max_pixels: int) -> tuple[Image.Image, list[str]]:
    if not data:
        raise ImageError("empty file (0 bytes)", name)
    try:
        image = _open_header(data)
    except UnidentifiedImageError:
        raise ImageError("not an image file PIL can read", name) from None
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"refused as a decompression bomb ({exc})", name) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"corrupt image header ({exc})", name) from None
    _check_size(image.size, name, max_pixels)
    notes = []
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        image.seek(0)
        notes.append(f"animated {image.format}: used the first frame of {frames}")
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"truncated or corrupt {image.format or 'image'} ({exc})", name) from None
    return _finish(image, name, notes)


def _check_size(size: tuple[int, int], name: str | None, max_pixels: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"image has no pixels ({width}x{height})", name)
    if width * height > max_pixels:
        raise ImageTooLargeError(f"{width}x{height} is {width * height:,} pixels, over the {max_pixels:,}-pixel "
                                 "limit (refused before decoding, as a possible decompression bomb)", name)


def _finish(image: Image.Image, name: str | None, notes: list[str]) -> tuple[Image.Image, list[str]]:
    """Apply EXIF orientation and bring unusual pixel formats to ones the recipe handles."""
    orientation = image.getexif().get(ORIENTATION_TAG, 1) if hasattr(image, "getexif") else 1
    if orientation not in (None, 1):
        image = ImageOps.exif_transpose(image)
        notes.append(f"rotated by EXIF orientation {orientation}")
    if image.mode in HIGH_DEPTH_MODES:
        image, note = _high_depth_to_8bit(image)
        notes.append(note)
    elif image.mode == "CMYK":
        image = image.convert("RGB")
        notes.append("CMYK image: converted to RGB")
    elif image.mode not in ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBa", "La"):
        try:
            image = image.convert("RGBA" if "A" in image.mode else "RGB")
        except (ValueError, OSError) as exc:
            raise ImageError(f"unsupported pixel format {image.mode} ({exc})", name) from None
    return image, notes



def _high_depth_to_8bit(image: Image.Image) -> tuple[Image.Image, str]:
    """Scale 16-bit or float pixels to 0..255; PIL's own convert("L") would clip instead."""
    pixels = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        scale, note = (1.0 if pixels.max(initial=0) <= 1.0 else UINT8_MAX), "float image: scaled to 8 bits"
    elif image.mode.startswith("I;16") or pixels.max(initial=0) > UINT8_MAX:
        scale, note = UINT16_MAX, "16-bit image: scaled to 8 bits"
    else:  # 8-bit values stored in a 32-bit container
        scale, note = UINT8_MAX, "32-bit integer image: read as 8 bits"
    eight_bit = np.clip(np.rint(pixels / scale * UINT8_MAX), 0, UINT8_MAX).astype(np.uint8)
    return Image.fromarray(eight_bit, mode="L"), note


def _is_tensor(source: Any) -> bool:
    return type(source).__module__.startswith("torch") and hasattr(source, "detach")


def _tensor_to_numpy(tensor: Any, name: str | None) -> np.ndarray:
    array = tensor.detach().cpu().numpy()
    # Tensors are usually channel-first (C, H, W); arrays and PIL are channel-last.
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 4 and array.shape[0] == 1:
        return _tensor_to_numpy(tensor[0], name)
    return array


def _array_to_image(array: np.ndarray, name: str | None) -> tuple[Image.Image, list[str]]:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(f"array of shape {tuple(array.shape)} is not an image: expected HxW or HxWxC "
                         "with 1, 3 or 4 channels", name)
    if array.size == 0:
        raise ImageError(f"array of shape {tuple(array.shape)} has no pixels", name)
    notes = []
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * UINT8_MAX
    elif array.dtype == np.uint16:
        array = np.rint(array / UINT16_MAX * UINT8_MAX).astype(np.uint8)
        notes.append("16-bit image: scaled to 8 bits")
    elif np.issubdtype(array.dtype, np.floating):
        array = _float_to_uint8(array, name)
    elif array.dtype != np.uint8:
        if array.min() < 0 or array.max() > UINT8_MAX:
            raise ImageError(f"{array.dtype} pixels must lie in 0..255 (got {array.min()}..{array.max()})", name)
        array = array.astype(np.uint8)
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[array.shape[2] if array.ndim == 3 else 2]
    return Image.fromarray(np.ascontiguousarray(array), mode=mode), notes


def _float_to_uint8(array: np.ndarray, name: str | None) -> np.ndarray:
    """Float pixels in [0, 1] (or [0, 255]) to uint8; normalised tensors are refused, not guessed."""
    if not np.isfinite(array).all():
        raise ImageError("float pixels contain NaN or infinity", name)
    low, high = float(array.min()), float(array.max())
    if low < 0:
        raise ImageError(f"float pixels must lie in [0, 1] or [0, 255] (got {low:.3g}..{high:.3g}); "
                         "pass raw pixels, not a normalised tensor", name)
    scale = UINT8_MAX if high <= 1.0 else 1.0
    return np.clip(np.rint(array * scale), 0, UINT8_MAX).astype(np.uint8)
