"""One uploaded image in, everything the page shows out.

The API answers with the prediction, the 28x28 image the model actually saw and the conv1
feature maps for that same input (unless the client asks for ``maps=0``). Decoding and
preprocessing come from :mod:`lenet5.preprocess` and the softmax from :mod:`lenet5.predict`
(the ones ``lenet5 predict`` uses), so the web page and the command line cannot disagree
about an image.
"""

from __future__ import annotations

import base64
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import WeightsError
from ..export import INPUT_NAME, onnx_session, onnx_with_stage
from ..images import declared_pixels
from ..model import count_parameters
from ..predict import Prediction, Predictor
from ..preprocess import open_image, to_mnist
from ..summary import trace
from .limits import INLINE_PIXELS

MAPS_STAGE = "c1"  # the stage whose maps the page shows: the first convolution, still readable as images
# Diverging colours for feature maps: negative responses blue, zero white, positive red.
NEGATIVE_RGB = np.array([33, 102, 172], dtype=np.float32)
ZERO_RGB = np.array([247, 247, 247], dtype=np.float32)
POSITIVE_RGB = np.array([178, 24, 43], dtype=np.float32)
COLOUR_HALF_STEPS = 255  # shades on each side of white: neighbours differ by under one level of 255


def _diverging_palette() -> np.ndarray:
    """uint8 (2 * COLOUR_HALF_STEPS + 1, 3): full blue at 0, white in the middle, full red at the end."""
    t = np.linspace(-1.0, 1.0, 2 * COLOUR_HALF_STEPS + 1, dtype=np.float32)[:, None]
    toward = np.where(t < 0, NEGATIVE_RGB, POSITIVE_RGB)
    return np.round(ZERO_RGB + np.abs(t) * (toward - ZERO_RGB)).astype(np.uint8)


DIVERGING_PALETTE = _diverging_palette()
# Seven tiny PNGs per answer: zlib's fastest level makes them a few bytes bigger and far cheaper.
PNG_COMPRESS_LEVEL = 1
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_GREY, PNG_RGB = 0, 2  # the PNG colour types


@dataclass(frozen=True)
class Analysis:
    """A prediction plus the conv1 output that the same forward pass produced (None if not asked for)."""

    prediction: Prediction
    feature_maps: np.ndarray | None  # float32 (6, 28, 28)


class DigitService:
    """Predictions with conv1 feature maps, safe to call from several threads at once.

    The network runs in ONNX Runtime, exported at start-up with the conv1 output as a second
    output: one image through PyTorch's per-layer dispatch costs five times as much, and an
    ONNX Runtime session may be run from several threads at once. Preprocessing and the
    softmax are the ones ``lenet5 predict`` uses.
    """

    def __init__(self, predictor: Predictor, *, max_pixels: int) -> None:
        if predictor.loaded is None:
            raise WeightsError(f"{predictor.path}: serving needs the PyTorch weights (.safetensors or a run "
                               "folder) to show feature maps, not an ONNX file")
        self.predictor = predictor
        self.max_pixels = max_pixels
        # As many threads as the process was given (one per server worker).
        self.session = onnx_session(onnx_with_stage(predictor.loaded, MAPS_STAGE), threads=torch.get_num_threads())

    def analyse(self, data: bytes, name: str, maps: bool = True) -> Analysis:
        """Decode ``data`` (an image file's bytes), predict its digit and, if ``maps``, capture conv1.

        Raises:
            lenet5.preprocess.ImageError: not an image, too many pixels, or no digit in it.
        """
        image, notes = open_image(data, name=name, max_pixels=self.max_pixels)
        digit = to_mnist(image, notes=notes, name=name)  # notes: what decoding did, then preprocessing
        logits, feature_maps = self.forward(digit, maps)
        return Analysis(self.predictor.prediction(digit, logits, notes, name), feature_maps)

    def is_small(self, data: bytes) -> bool:
        """Whether the image in ``data`` is cheap enough to analyse on the event loop (see INLINE_PIXELS)."""
        pixels = declared_pixels(data)
        return pixels is None or pixels <= INLINE_PIXELS  # None: refused at once by open_image

    def forward(self, digit: np.ndarray, maps: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits (10,) and, if ``maps``, the conv1 output (6, 28, 28) of one uint8 (28, 28) digit."""
        inputs = self.predictor.normalization(torch.from_numpy(digit[None])).numpy()
        logits, feature_maps = self.session.run(None, {INPUT_NAME: inputs})  # both come from the one pass
        return logits[0], feature_maps[0] if maps else None

    def model_info(self) -> dict[str, Any]:
        """What ``GET /api/model`` returns: architecture, size, training config, test accuracy."""
        loaded = self.predictor.loaded
        return {
            "name": "LeNet-5",
            "architecture": describe_stages(loaded.model),
            "parameters": count_parameters(loaded.model),
            "normalization": loaded.normalization.to_dict(),
            "training": loaded.config.to_dict(),
            "test_accuracy": loaded.extra.get("test_accuracy"),
            "epoch": loaded.extra.get("epoch"),
            "weights": loaded.path.name,
        }


def analysis_payload(analysis: Analysis) -> dict[str, Any]:
    """The JSON body of a successful ``POST /api/predict``; no images when the maps were skipped."""
    prediction = analysis.prediction
    payload: dict[str, Any] = {
        "digit": int(prediction.digit),
        "probability": float(prediction.probability),
        "probabilities": [float(p) for p in prediction.probabilities],
    }
    if analysis.feature_maps is not None:
        maps, scale = feature_map_colours(analysis.feature_maps)
        payload["image"] = png_data_url(np.asarray(prediction.preprocessed, dtype=np.uint8))
        payload["feature_maps"] = {"stage": MAPS_STAGE, "scale": scale, "maps": [png_data_url(m) for m in maps]}
    payload["notes"] = list(prediction.notes)
    return payload


def describe_stages(model: torch.nn.Module) -> list[dict[str, Any]]:
    """Each stage with its layers (``summary.describe``), parameter count and output shape for one image."""
    return [{"stage": row.stage, "layers": row.layers, "parameters": row.parameters,
             "output_shape": row.output_shape[1:]}
            for row in trace(model) if row.stage != "input"]


def feature_map_colours(maps: np.ndarray) -> tuple[np.ndarray, float]:
    """float (C, H, W) -> uint8 RGB (C, H, W, 3) on one shared diverging scale, and that scale.

    One scale for all maps keeps them comparable: a faint map looks faint.
    """
    scale = float(np.abs(maps).max())
    if not np.isfinite(scale) or scale == 0.0:
        scale = 1.0
    # Looked up in a palette rather than blended per pixel: a quarter of the work.
    shade = np.rint(np.clip(maps / scale, -1.0, 1.0) * COLOUR_HALF_STEPS + COLOUR_HALF_STEPS).astype(np.intp)
    return np.take(DIVERGING_PALETTE, shade, axis=0), scale


def png_data_url(pixels: np.ndarray) -> str:
    """A small image (uint8 grey (H, W) or RGB (H, W, 3)) as a ``data:image/png`` URL."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(pixels)).decode("ascii")


def png_bytes(pixels: np.ndarray) -> bytes:
    """uint8 grey (H, W) or RGB (H, W, 3) pixels as a PNG file: unfiltered rows, zlib's fastest level.

    Written out rather than through PIL: for seven 28x28 images an answer, PIL's save
    machinery costs twice the compression itself (0.3 ms of an answer's 2.5). The format is
    the PNG specification's minimum, and tests/test_web_api.py reads it back with PIL.
    """
    height, width = pixels.shape[:2]
    colour_type = PNG_GREY if pixels.ndim == 2 else PNG_RGB
    rows = np.zeros((height, 1 + pixels[0].size), dtype=np.uint8)  # each row starts with filter type 0
    rows[:, 1:] = pixels.reshape(height, -1)
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)  # 8 bits, no interlace
    return b"".join([PNG_SIGNATURE, _png_chunk(b"IHDR", header),
                     _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), PNG_COMPRESS_LEVEL)), _png_chunk(b"IEND", b"")])


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
