"""LeNet-5 on MNIST: train, evaluate, inspect, predict and serve, offline.

``lenet5.load(path)`` returns a :class:`lenet5.predict.Predictor` for real image files.
Submodules are imported lazily, so ``import lenet5`` stays quick.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load"]


def load(path: Any = None, *, device: str = "cpu", backend: str = "torch", threads: int | None = None) -> Any:
    """A predictor for a run folder or weights file: see :func:`lenet5.predict.load`."""
    from .predict import load as load_predictor

    return load_predictor(path, device=device, backend=backend, threads=threads)
