"""Look at intermediate activations without changing the model.

Forward hooks record each named stage's output inside a context manager and are removed on
exit, so the model computes exactly what it would have computed without them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

# The LeNet-5 stages worth showing, by their attribute names in model.py.
FEATURE_STAGES = ("c1", "s2", "c3", "s4")


@contextmanager
def capture_activations(model: nn.Module, stages: Sequence[str] = FEATURE_STAGES) -> Iterator[dict[str, torch.Tensor]]:
    """Yield a dict that fills with ``stage -> output`` during forward passes inside the block.

    Example::

        with capture_activations(model, ["c1"]) as maps:
            logits = model(batch)
        conv1 = maps["c1"]  # (N, 6, 28, 28)
    """
    captured: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    handles = []
    for stage in stages:
        if stage not in modules:
            raise KeyError(f"model has no stage {stage!r}; it has {', '.join(n for n in modules if n)}")
        handles.append(modules[stage].register_forward_hook(_recorder(captured, stage)))
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def _recorder(captured: dict[str, torch.Tensor], stage: str):
    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        captured[stage] = output.detach()

    return hook
