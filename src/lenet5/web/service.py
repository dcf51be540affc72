"""One uploaded image in, everything the page shows out.

The API answers with the prediction, the 28x28 image the model actually saw and the conv1
feature maps for that same input. Decoding and preprocessing come from
:mod:`lenet5.preprocess` and :mod:`lenet5.predict` (the ones ``lenet5 predict`` uses), so
the web page and the command line cannot disagree about an image.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import WeightsError
from ..hooks import capture_activations
from ..model import count_parameters
from ..predict import Prediction, Predictor
from ..preprocess import open_image

FEATURE_STAGE = "c1"  # the first convolution: the maps a student can still read as images
# Diverging colours for feature maps: negative responses blue, zero white, positive red.
NEGATIVE_RGB = np.array([33, 102, 172], dtype=np.float32)
ZERO_RGB = np.array([247, 247, 247], dtype=np.float32)
POSITIVE_RGB = np.array([178, 24, 43], dtype=np.float32)


@dataclass(frozen=True)
class Analysis:
    """A prediction plus the conv1 output that the same forward pass produced."""

    prediction: Prediction
    feature_maps: np.ndarray  # float32 (6, 28, 28)


class DigitService:
    """Predictions with conv1 feature maps, safe to call from many request threads at once.

    Forward hooks live on the shared module, so a hook attached for one request would also
    record any other request's forward pass. The maps therefore come from a second, hooked
    forward pass under the predictor's lock (which every prediction's forward pass takes too),
    while decoding and preprocessing, the slow part, run in parallel outside it.
    """

    def __init__(self, predictor: Predictor, *, max_pixels: int) -> None:
        if predictor.loaded is None:
            raise WeightsError(f"{predictor.path}: serving needs the PyTorch weights (.safetensors or a run "
                               "folder) to show feature maps, not an ONNX file")
        self.predictor = predictor
        self.max_pixels = max_pixels

    def analyse(self, data: bytes, name: str) -> Analysis:
        """Decode ``data`` (an image file's bytes), predict its digit and capture conv1.

        Raises:
            lenet5.preprocess.ImageError: not an image, too many pixels, or no digit in it.
        """
        image, notes = open_image(data, name=name, max_pixels=self.max_pixels)
        prediction = self.predictor.predict_one(image, name=name)
        prediction.notes[:0] = notes  # what decoding did comes before what preprocessing did
        return Analysis(prediction, self.feature_maps(prediction.preprocessed))

    def feature_maps(self, digit: np.ndarray) -> np.ndarray:
        """The conv1 output, float32 (6, 28, 28), for one uint8 (28, 28) MNIST-style digit."""
        model = self.predictor.loaded.model
        device = next(model.parameters()).device
        inputs = self.predictor.normalization(torch.from_numpy(digit[None])).to(device)
        with self.predictor.lock, torch.inference_mode(), capture_activations(model, [FEATURE_STAGE]) as captured:
            model(inputs)
        return captured[FEATURE_STAGE][0].float().cpu().numpy()

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
    """The JSON body of a successful ``POST /api/predict``."""
    prediction = analysis.prediction
    maps, scale = feature_map_colours(analysis.feature_maps)
    return {
        "digit": int(prediction.digit),
        "probability": float(prediction.probability),
        "probabilities": [float(p) for p in prediction.probabilities],
        "image": png_data_url(np.asarray(prediction.preprocessed, dtype=np.uint8)),
        "feature_maps": {"stage": FEATURE_STAGE, "scale": scale, "maps": [png_data_url(m) for m in maps]},
        "notes": list(prediction.notes),
    }


def describe_stages(model: torch.nn.Module) -> list[dict[str, Any]]:
    """Each top-level stage with its layers, parameter count and output shape for one image."""
    stages = [name for name, _ in model.named_children()]
    size = model.input_size  # 28, or 32 for the 1998 network
    probe = torch.zeros(1, 1, size, size, device=next(model.parameters()).device)
    with torch.inference_mode(), capture_activations(model, stages) as outputs:
        model(probe)
    return [
        {
            "stage": name,
            "layers": [_layer_text(layer) for layer in _layers(module)],
            "parameters": count_parameters(module),
            "output_shape": list(outputs[name].shape[1:]),
        }
        for name, module in model.named_children()
    ]


def _layers(module: torch.nn.Module) -> list[torch.nn.Module]:
    """The leaf layers of a stage, skipping the Identity placeholders of switched-off options."""
    leaves = [m for m in module.modules() if not list(m.children())] or [module]
    return [m for m in leaves if not isinstance(m, torch.nn.Identity)]


def _layer_text(layer: torch.nn.Module) -> str:
    return f"{type(layer).__name__}({layer.extra_repr()})"


def feature_map_colours(maps: np.ndarray) -> tuple[np.ndarray, float]:
    """float (C, H, W) -> uint8 RGB (C, H, W, 3) on one shared diverging scale, and that scale.

    One scale for all maps keeps them comparable: a faint map looks faint.
    """
    scale = float(np.abs(maps).max())
    if not np.isfinite(scale) or scale == 0.0:
        scale = 1.0
    t = np.clip(maps / scale, -1.0, 1.0)[..., None]  # (C, H, W, 1) in [-1, 1]
    toward = np.where(t < 0, NEGATIVE_RGB, POSITIVE_RGB)
    rgb = ZERO_RGB + np.abs(t) * (toward - ZERO_RGB)
    return np.round(rgb).astype(np.uint8), scale


def png_data_url(pixels: np.ndarray) -> str:
    """A small image (uint8 grey (H, W) or RGB (H, W, 3)) as a ``data:image/png`` URL."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
