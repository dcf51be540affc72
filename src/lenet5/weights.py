"""The weights format: a safetensors file that describes the model it holds.

A weights file's metadata holds the config that built the model and the normalisation it
was trained with, so :func:`load_model` can rebuild it with nothing else. Every consumer
(eval, predict, inspect, export, serve) goes through :func:`load_model`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import TrainConfig
from .errors import Lenet5Error, WeightsError
from .files import TRAIN_RUNS, atomic_write_bytes, check_regular_file
from .model import LeNet5
from .preprocess import Normalization

FORMAT = "lenet5/1"
BEST, LAST = "best.safetensors", "last.safetensors"


def save_weights(path: Path, model: torch.nn.Module, config: TrainConfig, normalization: Normalization,
                 extra: dict[str, Any] | None = None) -> None:
    """Save weights plus everything needed to rebuild and feed the model."""
    from safetensors.torch import save

    tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "config": config.to_json(),
        "normalization": json.dumps(normalization.to_dict()),
        # NaN (a test split with no images) is not JSON: store null instead.
        "extra": json.dumps({k: None if isinstance(v, float) and not math.isfinite(v) else v
                             for k, v in (extra or {}).items()}),
    }
    atomic_write_bytes(path, save(tensors, metadata=metadata))


@dataclass
class LoadedModel:
    """A model rebuilt from a weights file, in eval mode, with what it needs to be fed."""

    model: LeNet5
    config: TrainConfig
    normalization: Normalization
    extra: dict[str, Any]
    path: Path


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild a LeNet-5 from a weights file (or a run folder, meaning its best weights)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = resolve_weights(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None
    if metadata.get("format") != FORMAT:
        raise WeightsError(f"{path}: not a lenet5 weights file (metadata format {metadata.get('format')!r})")
    config, normalization, extra = _read_metadata(path, metadata)
    model = LeNet5.from_config(config.model)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise WeightsError(f"{path}: weights do not fit this architecture ({first})") from None
    broken = [name for name, tensor in tensors.items() if tensor.is_floating_point() and not tensor.isfinite().all()]
    if broken:
        raise WeightsError(f"{path}: weights contain NaN or infinity (in {', '.join(broken[:3])}); "
                           "the run that wrote them diverged")
    model.to(device).eval()
    return LoadedModel(model, config, normalization, extra, path)


def _read_metadata(path: Path, metadata: dict[str, str]) -> tuple[TrainConfig, Normalization, dict[str, Any]]:
    """The config, normalisation and extras a weights file stores, each checked like user input."""
    try:
        config = TrainConfig.from_dict(json.loads(metadata["config"]))
        config.validate()
        normalization = Normalization(**json.loads(metadata["normalization"]))
        extra = json.loads(metadata.get("extra", "{}"))
    except KeyError as exc:
        raise WeightsError(f"{path}: lenet5 weights metadata lacks {exc.args[0]!r}") from None
    except (ValueError, TypeError, Lenet5Error) as exc:  # bad JSON, unknown keys, invalid values
        raise WeightsError(f"{path}: broken lenet5 weights metadata ({exc})") from None
    if not isinstance(extra, dict):
        raise WeightsError(f"{path}: broken lenet5 weights metadata (extra is not an object)")
    if not _usable_normalization(normalization):
        raise WeightsError(f"{path}: broken lenet5 weights metadata (normalization {normalization.to_dict()})")
    return config, normalization, extra


def _usable_normalization(normalization: Normalization) -> bool:
    numbers = [normalization.mean, normalization.std]
    return (all(isinstance(v, (int, float)) and math.isfinite(v) for v in numbers)
            and normalization.std > 0 and isinstance(normalization.mode, str))


def latest_run(root: Path = TRAIN_RUNS) -> Path:
    """The most recently modified run folder under ``root`` that holds weights."""
    runs = [p for p in Path(root).glob("*") if (p / BEST).is_file() or (p / LAST).is_file()]
    if not runs:
        raise WeightsError(f"no trained runs under {root}/: run `lenet5 train` first or pass --weights")
    return max(runs, key=lambda p: p.stat().st_mtime)


def resolve_weights(weights: str | Path | None) -> Path:
    """Turn ``--weights`` (None, a run folder or a file) into a weights file path.

    None means the newest run under runs/train; a folder means its best weights, falling
    back to the last ones if training never finished an epoch with validation.
    """
    path = latest_run() if weights is None else Path(weights)
    if path.is_dir():
        for name in (BEST, LAST):
            if (path / name).is_file():
                return path / name
        raise WeightsError(f"{path}: run folder has no {BEST} or {LAST}")
    if not path.exists():
        raise WeightsError(f"{path}: weights file not found")
    return check_regular_file(path, WeightsError)
