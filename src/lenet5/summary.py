"""The layer-by-layer shape trace of LeNet-5: what each stage does to a [N, 1, 28, 28] batch.

The shapes are measured, not written down: a forward pass with hooks on every stage records
each output, so the trace always matches the model that ``model.py`` actually builds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .hooks import capture_activations
from .model import IMAGE_SIZE, LeNet5, count_parameters

STAGES = ("c1", "s2", "c3", "s4", "flatten", "f5", "f6", "output")
BATCH = 2  # any N works; more than 1 so batchnorm layers can run in train mode if asked


@dataclass
class LayerRow:
    """One stage of the network: what it is, what comes out, how many weights it holds."""

    stage: str
    layers: str
    output_shape: list[int]
    parameters: int


def describe(module: nn.Module) -> str:
    """A short, readable description of a stage: 'Conv2d 1->6 5x5 pad 2, Tanh'."""
    parts = module.children() if isinstance(module, nn.Sequential) else [module]
    # Identity (batchnorm off) and Dropout(p=0) are no-ops; listing them would only confuse.
    shown = [part for part in parts if not isinstance(part, nn.Identity)
             and not (isinstance(part, nn.Dropout) and part.p == 0)]
    return ", ".join(_describe_one(part) for part in shown)


def _describe_one(module: nn.Module) -> str:
    name = type(module).__name__
    if isinstance(module, nn.Conv2d):
        kernel = "x".join(map(str, module.kernel_size))
        padding = f" pad {module.padding[0]}" if module.padding[0] else ""
        return f"{name} {module.in_channels}->{module.out_channels} {kernel}{padding}"
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return f"{name} {module.kernel_size}x{module.kernel_size}"
    if isinstance(module, nn.Linear):
        return f"{name} {module.in_features}->{module.out_features}"
    if isinstance(module, nn.Dropout):
        return f"{name} p={module.p}"
    return name


def trace(model: LeNet5) -> list[LayerRow]:
    """Measure each stage's output shape with forward hooks; the model is left unchanged."""
    was_training = model.training
    model.eval()
    images = torch.zeros(BATCH, 1, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad(), capture_activations(model, STAGES) as outputs:
        model(images)
    model.train(was_training)
    modules = dict(model.named_children())
    rows = [LayerRow("input", "", [BATCH, 1, IMAGE_SIZE, IMAGE_SIZE], 0)]
    for stage in STAGES:
        module = modules[stage]
        layers = describe(module)
        if stage == "flatten":
            previous = rows[-1].output_shape[1:]
            layers = f"Flatten {'x'.join(map(str, previous))} -> {outputs[stage].shape[1]}"
        rows.append(LayerRow(stage, layers, list(outputs[stage].shape), count_parameters(module)))
    return rows


def format_trace(rows: list[LayerRow]) -> str:
    """The trace as an aligned table, with the batch dimension written as N."""
    def shape(row: LayerRow) -> str:
        return "[" + ", ".join(["N", *map(str, row.output_shape[1:])]) + "]"

    table = [("stage", "layers", "output shape", "parameters")]
    table += [(row.stage, row.layers, shape(row), f"{row.parameters:,}") for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))
             for line in table]
    rule = "-" * len(lines[0])
    return "\n".join([lines[0], rule, *lines[1:], rule, f"total trainable parameters: {sum(row.parameters for row in rows):,}"]) + "\n"


def to_dict(rows: list[LayerRow]) -> dict:
    """The trace plus the total, as plain data (for ``--json``)."""
    return {"layers": [asdict(row) for row in rows], "total_parameters": sum(row.parameters for row in rows)}
