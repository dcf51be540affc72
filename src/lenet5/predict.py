"""Recognise digits in real images: ``lenet5.load(path).predict(images)``.

A :class:`Predictor` runs the shared preprocessing (``preprocess.image_to_mnist``), applies
the model's own normalisation and returns one :class:`Prediction` per image. Two backends
compute the logits: PyTorch on the safetensors weights, or ONNX Runtime on an exported
``.onnx`` file (see ``export.py``), which stores its normalisation in its metadata.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .errors import WeightsError
from .files import check_regular_file
from .preprocess import ImageError, Normalization, image_to_mnist
from .weights import LoadedModel, load_model, resolve_weights

BACKENDS = ("torch", "onnx")
BATCH_SIZE = 256  # images per forward pass: large enough to be fast, small enough to stay lean
ONNX_FILE = "model.onnx"  # what `lenet5 export RUN` writes into a run folder


@dataclass
class Prediction:
    """The answer for one image: the digit, its softmax probability, all ten, and what the model saw."""

    digit: int
    probability: float
    probabilities: list[float]
    preprocessed: np.ndarray  # uint8 (28, 28), white digit on black: the model's input before normalisation
    notes: list[str] = field(default_factory=list)
    name: str | None = None

    def top(self, k: int = 3) -> list[tuple[int, float]]:
        """The ``k`` most likely digits with their probabilities, most likely first."""
        order = np.argsort(self.probabilities)[::-1][:k]
        return [(int(d), float(self.probabilities[d])) for d in order]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (without the image)."""
        return {"digit": self.digit, "probability": self.probability, "probabilities": self.probabilities,
                "notes": self.notes}


class Predictor:
    """Preprocess, normalise, run the model, softmax; safe to call from several threads at once.

    Attributes:
        loaded: the PyTorch model with its config (None for an ONNX file given on its own).
        normalization: the pixel normalisation the weights were trained with.
        backend: "torch" or "onnx".
        path: the weights (or .onnx) file in use.
        lock: held around each PyTorch forward pass; hold it too while hooks are attached
            to ``loaded.model`` so concurrent predictions cannot fire them.
    """

    def __init__(self, loaded: LoadedModel | None, *, normalization: Normalization, path: Path,
                 backend: str = "torch", session: Any = None, batch_size: int = BATCH_SIZE) -> None:
        self.loaded = loaded
        self.normalization = normalization
        self.path = path
        self.backend = backend
        self.batch_size = batch_size
        self.lock = threading.Lock()
        self._session = session

    def predict(self, images: Sequence[Any], *, names: Sequence[str | None] | None = None) -> list[Prediction]:
        """Predict every image; the first unreadable or blank one raises its ImageError.

        Args:
            images: paths, encoded bytes, PIL images, numpy arrays or torch tensors, mixed freely.
            names: how errors and predictions refer to each image (paths name themselves).

        Raises:
            ImageError: an image cannot be read; NoDigitError (a subclass): it is blank.
            Use :meth:`predict_each` to get per-image errors instead.
        """
        results = self.predict_each(images, names=names)
        for result in results:
            if isinstance(result, ImageError):
                raise result
        return results  # type: ignore[return-value]

    def predict_one(self, image: Any, *, name: str | None = None) -> Prediction:
        return self.predict([image], names=[name])[0]

    def predict_each(self, images: Sequence[Any],
                     *, names: Sequence[str | None] | None = None) -> list[Prediction | ImageError]:
        """Like :meth:`predict`, but a bad image yields its ImageError in place; the rest still run."""
        names = list(names) if names is not None else [None] * len(images)
        if len(names) != len(images):
            raise ValueError(f"got {len(images)} images but {len(names)} names")
        names = [str(image) if name is None and isinstance(image, (str, Path)) else name
                 for image, name in zip(images, names)]
        prepared: list[tuple[np.ndarray, list[str]] | ImageError] = []
        for image, name in zip(images, names):
            try:
                prepared.append(image_to_mnist(image, name=name))
            except ImageError as error:
                prepared.append(error)
        good = [item for item in prepared if not isinstance(item, ImageError)]
        probabilities = iter(self.probabilities(np.stack([digits for digits, _ in good])) if good else [])
        results: list[Prediction | ImageError] = []
        for item, name in zip(prepared, names):
            if isinstance(item, ImageError):
                results.append(item)
                continue
            row = next(probabilities)
            digit = int(np.argmax(row))
            results.append(Prediction(digit, float(row[digit]), [float(p) for p in row], item[0], item[1], name))
        return results

    def probabilities(self, digits: np.ndarray) -> np.ndarray:
        """Softmax probabilities (N, 10) for uint8 MNIST-style digits (N, 28, 28)."""
        logits = torch.from_numpy(self.logits(digits))
        return torch.softmax(logits.double(), dim=1).numpy()

    def logits(self, digits: np.ndarray) -> np.ndarray:
        """Raw float32 logits (N, 10) for uint8 digits (N, 28, 28), computed in batches."""
        digits = torch.as_tensor(np.ascontiguousarray(digits, dtype=np.uint8))
        chunks = [self._forward(self.normalization(chunk)) for chunk in digits.split(self.batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, 10), dtype=np.float32)

    def _forward(self, inputs: torch.Tensor) -> np.ndarray:
        """Logits for normalised float (N, 1, 28, 28) inputs on the chosen backend."""
        if self._session is not None:
            return self._session.run(None, {self._session.get_inputs()[0].name: inputs.numpy()})[0]
        model = self.loaded.model
        device = next(model.parameters()).device
        with self.lock, torch.inference_mode():
            return model(inputs.to(device)).float().cpu().numpy()


def load(path: str | Path | None = None, *, device: str = "cpu", backend: str = "torch",
         threads: int | None = None) -> Predictor:
    """A :class:`Predictor` for a run folder, a weights file or (for ONNX) a ``.onnx`` file.

    Args:
        path: a run folder, ``.safetensors`` or ``.onnx`` file; None means the newest run.
        device: torch device for the PyTorch backend.
        backend: "torch" or "onnx". ONNX needs ``pip install 'lenet5[onnx]'`` and, for a run
            folder, ``lenet5 export RUN --format onnx`` first.
        threads: intra-op threads for ONNX Runtime (PyTorch uses torch.set_num_threads).
    """
    if backend not in BACKENDS:
        raise WeightsError(f"unknown backend {backend!r}: choose from {', '.join(BACKENDS)}")
    if backend == "onnx" or (path is not None and Path(path).suffix == ".onnx"):
        return _load_onnx(path, threads)
    loaded = load_model(path, device=device)
    return Predictor(loaded, normalization=loaded.normalization, path=loaded.path)


def _load_onnx(path: str | Path | None, threads: int | None) -> Predictor:
    from .export import onnx_session, read_onnx_normalization

    onnx_path = _find_onnx(path)
    session = onnx_session(onnx_path, threads=threads)
    return Predictor(None, normalization=read_onnx_normalization(onnx_path), path=onnx_path,
                     backend="onnx", session=session)


def _find_onnx(path: str | Path | None) -> Path:
    """The .onnx file itself, or the one `lenet5 export` wrote next to a run's weights."""
    if path is not None and Path(path).suffix == ".onnx":
        if not Path(path).exists():
            raise WeightsError(f"{path}: ONNX file not found")
        return check_regular_file(Path(path), WeightsError)
    weights = resolve_weights(path)
    candidate = weights.parent / ONNX_FILE
    if not candidate.is_file():
        raise WeightsError(f"{weights.parent}: no {ONNX_FILE}; run `lenet5 export {weights.parent} --format onnx` "
                           "first or pass the .onnx file")
    return candidate
