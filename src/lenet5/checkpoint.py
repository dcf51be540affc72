"""The resumable training state (``state.pt``): optimiser, schedule, early stopping, history.

Weights live in :mod:`lenet5.weights`; this file is what ``--resume`` needs on top of them.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from .errors import WeightsError
from .files import atomic_write_bytes, check_regular_file

STATE = "state.pt"


def save_state(path: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_state(path: Path) -> dict[str, Any]:
    """Load a resumable training state; ``weights_only`` refuses arbitrary pickled code."""
    if not path.exists():
        raise WeightsError(f"{path}: no training state to resume from")
    check_regular_file(path, WeightsError)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt pickles
        raise WeightsError(f"{path}: unreadable training state ({exc.__class__.__name__})") from None
