"""Export a trained LeNet-5 to a single self-contained ONNX file, and open it with ONNX Runtime.

The ONNX graph takes the normalised float input (N, 1, 28, 28), N dynamic, and returns
logits (N, 10), exactly like ``LeNet5.forward``. The normalisation and the training config
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
from .model import IMAGE_SIZE
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
    model = loaded.model.cpu().eval()
    example = torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated in favour of dynamo, which needs
        # onnxscript; for a 60k-parameter CNN both give the same graph.
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), buffer, dynamo=False, opset_version=OPSET,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    proto = onnx.load_from_string(buffer.getvalue())
    metadata = {META_NORMALIZATION: json.dumps(loaded.normalization.to_dict()),
                META_CONFIG: loaded.config.to_json(), META_SOURCE: str(loaded.path)}
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = "LeNet-5 digit recogniser: normalised (N, 1, 28, 28) float32 in, logits (N, 10) out"
    onnx.checker.check_model(proto, full_check=True)
    atomic_write_bytes(Path(path), proto.SerializeToString())
    return Path(path)


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


def onnx_session(path: Path, *, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session for ``path``, with ``threads`` intra-op threads if given."""
    onnxruntime = _require("onnxruntime")
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's errors are its own pybind types
        raise WeightsError(f"{path}: ONNX Runtime cannot load it ({str(exc).splitlines()[0]})") from None


CHECK_IMAGES = 1000
CHECK_TOLERANCE = 1e-4  # float32 kernels differ in summation order; real mismatches are far larger


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
    if difference > CHECK_TOLERANCE or (torch_logits.argmax(1) != onnx_logits.argmax(1)).any():
        raise Lenet5Error(f"{path}: onnxruntime disagrees with PyTorch (max |logit difference| {difference:.2e})")
    return difference
