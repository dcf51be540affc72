"""Export a trained LeNet-5 to a single self-contained ONNX file, and open it with ONNX Runtime.

The ONNX graph takes the normalised float input (N, 1, 28, 28), N dynamic, and returns
logits (N, 10), exactly like ``LeNet5.forward``; for the 1998 network the input is the padded
(N, 1, 32, 32) and the logits are minus the RBF distances (the RBF is in the graph). The normalisation and the training config
ride along in the file's ``metadata_props``, so ``predict --backend onnx`` needs nothing
else; turning images into 28x28 digits still goes through ``preprocess``.
Needs the optional extra: ``pip install 'lenet5[onnx]'``.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from .errors import Lenet5Error, WeightsError
from .extras import require
from .files import atomic_write_bytes
from .hooks import capture_activations
from .preprocess import Normalization
from .weights import LoadedModel

OPSET = 17  # supported by every onnxruntime since 1.11
INPUT_NAME, OUTPUT_NAME = "images", "logits"
META_NORMALIZATION, META_CONFIG, META_SOURCE = "lenet5.normalization", "lenet5.config", "lenet5.source"


def _require(module: str) -> Any:
    return require(module, "onnx", "ONNX export and inference")


def export_onnx(loaded: LoadedModel, path: Path) -> Path:
    """Write ``loaded`` as one ONNX file (no external data) with a dynamic batch axis; returns ``path``."""
    onnx = _require("onnx")
    size = loaded.normalization.input_size  # 28, or 32 for the 1998 network's padded retina
    proto = onnx.load_from_string(_onnx_bytes(loaded.model.cpu().eval(), size, [OUTPUT_NAME], dynamic_batch=True))
    metadata = {META_NORMALIZATION: json.dumps(loaded.normalization.to_dict()),
                META_CONFIG: loaded.config.to_json(), META_SOURCE: str(loaded.path)}
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = f"LeNet-5 digit recogniser: normalised (N, 1, {size}, {size}) float32 in, logits (N, 10) out"
    onnx.checker.check_model(proto, full_check=True)
    atomic_write_bytes(Path(path), proto.SerializeToString())
    return Path(path)


def onnx_with_stage(loaded: LoadedModel, stage: str) -> bytes:
    """The network for one image at a time, as ONNX bytes with a second output: ``stage``'s.

    The web server runs this in ONNX Runtime: the logits and the feature maps the page shows
    come from one pass, at a fifth of what PyTorch's per-layer dispatch costs on one image.
    """
    _require("onnx")  # torch's exporter needs it
    return _onnx_bytes(_WithStage(loaded.model.cpu().eval(), stage), loaded.normalization.input_size,
                       [OUTPUT_NAME, stage], dynamic_batch=False)


class _WithStage(torch.nn.Module):
    """A network's logits and one stage's output from the same forward pass (for tracing)."""

    def __init__(self, model: torch.nn.Module, stage: str) -> None:
        super().__init__()
        self.model, self.stage = model, stage

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with capture_activations(self.model, [self.stage]) as captured:
            logits = self.model(images)
        return logits, captured[self.stage]


def _onnx_bytes(model: torch.nn.Module, size: int, outputs: list[str], *, dynamic_batch: bool) -> bytes:
    """``model`` traced on one (1, 1, size, size) input into an ONNX graph."""
    buffer = io.BytesIO()
    dynamic_axes = {name: {0: "batch"} for name in [INPUT_NAME, *outputs]} if dynamic_batch else None
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated in favour of dynamo, which needs
        # onnxscript; for a 60k-parameter CNN both give the same graph.
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, size, size),), buffer, dynamo=False, opset_version=OPSET,
                          input_names=[INPUT_NAME], output_names=outputs, dynamic_axes=dynamic_axes)
    return buffer.getvalue()


def read_onnx_normalization(path: Path) -> Normalization:
    """The normalisation stored in an exported file's metadata."""
    onnx = _require("onnx")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ValueError... for a bad file
        raise WeightsError(f"{path}: not a readable ONNX file ({exc.__class__.__name__})") from None
    metadata = {entry.key: entry.value for entry in proto.metadata_props}
    if META_NORMALIZATION not in metadata:
        raise WeightsError(f"{path}: ONNX file has no {META_NORMALIZATION} metadata; "
                           "export it with `lenet5 export`")
    try:
        return Normalization(**json.loads(metadata[META_NORMALIZATION]))
    except (ValueError, TypeError) as exc:
        raise WeightsError(f"{path}: broken {META_NORMALIZATION} metadata ({exc})") from None


def onnx_session(model: Path | bytes, *, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session for an ONNX file (or its bytes), with ``threads`` intra-op threads if given."""
    onnxruntime = _require("onnxruntime")
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                            providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's errors are its own pybind types
        where = "the in-memory model" if isinstance(model, bytes) else str(model)
        raise WeightsError(f"{where}: ONNX Runtime cannot load it ({str(exc).splitlines()[0]})") from None


CHECK_IMAGES = 1000
CHECK_TOLERANCE = 1e-4  # float32 kernels differ in summation order; real mismatches are far larger
# ...relative to the logits' size once they exceed 1: the 1998 net's logits are RBF distances in
# the tens or hundreds, where float32 rounding alone reaches 1e-4.


def check_against_torch(loaded: LoadedModel, path: Path, images: torch.Tensor | None = None) -> float:
    """Run the exported file and PyTorch on the same test images; return the max |logit| difference.

    Raises:
        Lenet5Error: the two disagree beyond CHECK_TOLERANCE or predict different digits.
    """
    from .data.mnist import load_split
    from .inference import predict_logits

    if images is None:
        images = load_split("test")[0][:CHECK_IMAGES]
    torch_logits = predict_logits(loaded.model, images, loaded.normalization).cpu().numpy()
    session = onnx_session(path)
    onnx_logits = session.run(None, {INPUT_NAME: loaded.normalization(images).numpy()})[0]
    difference = float(abs(torch_logits - onnx_logits).max())
    tolerance = CHECK_TOLERANCE * max(1.0, float(abs(torch_logits).max()))
    if difference > tolerance or (torch_logits.argmax(1) != onnx_logits.argmax(1)).any():
        raise Lenet5Error(f"{path}: onnxruntime disagrees with PyTorch (max |logit difference| {difference:.2e})")
    return difference
