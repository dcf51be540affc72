"""The layer-by-layer shape trace of LeNet-5: what each stage does to a [N, 1, 28, 28] batch
(or [N, 1, 32, 32] for the 1998 network).

The shapes are measured, not written down: a forward pass with hooks on every stage records
each output, so the trace always matches the model that ``model.py`` actually builds.
Connections count, as the 1998 paper does, every multiply-add into a unit of one sample
plus one per bias: a shared weight counts once per place it is used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .hooks import capture_activations
from .model import LeNet5, count_parameters

STAGES = LeNet5.stages  # the lab network's; each model class names its own
BATCH = 2  # any N works; more than 1 so batchnorm layers can run in train mode if asked


@dataclass
class LayerRow:
    """One stage of the network: what it is, what comes out, how many weights it holds."""

    stage: str
    layers: str
    output_shape: list[int]
    parameters: int
    connections: int = 0


def describe(module: nn.Module) -> str:
    """A short, readable description of a stage: 'Conv2d 1->6 5x5 pad 2, Tanh'."""
    parts = module.children() if isinstance(module, nn.Sequential) else [module]
    # Identity (batchnorm off) and Dropout(p=0) are no-ops; listing them would only confuse.
    shown = [part for part in parts if not isinstance(part, nn.Identity)
             and not (isinstance(part, nn.Dropout) and part.p == 0)]
    return ", ".join(_describe_one(part) for part in shown)


def _describe_one(module: nn.Module) -> str:
    name = type(module).__name__
    if hasattr(module, "describe"):  # the 1998 layers say what they compute
        return module.describe()
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


def connections(module: nn.Module, output_shape: list[int]) -> int:
    """Connections into one sample's outputs of a stage whose output has ``output_shape``."""
    total = 0
    for part in module.children() if isinstance(module, nn.Sequential) else [module]:
        if hasattr(part, "connections"):  # the 1998 layers count their own
            total += part.connections(output_shape)
        elif isinstance(part, nn.Conv2d):
            per_unit = part.weight[0].numel() + (part.bias is not None)
            total += part.out_channels * output_shape[-1] * output_shape[-2] * per_unit
        elif isinstance(part, nn.Linear):
            total += part.out_features * (part.in_features + (part.bias is not None))
        elif isinstance(part, (nn.MaxPool2d, nn.AvgPool2d)):
            total += _per_sample(output_shape) * part.kernel_size * part.kernel_size
    return total


def _per_sample(shape: list[int]) -> int:
    return int(torch.Size(shape[1:]).numel())


def trace(model: nn.Module) -> list[LayerRow]:
    """Measure each stage's output shape with forward hooks; the model is left unchanged."""
    was_training = model.training
    model.eval()
    size = model.input_size
    images = torch.zeros(BATCH, 1, size, size)
    with torch.no_grad(), capture_activations(model, model.stages) as outputs:
        model(images)
    model.train(was_training)
    modules = dict(model.named_children())
    rows = [LayerRow("input", "", [BATCH, 1, size, size], 0)]
    for stage in model.stages:
        module = modules[stage]
        layers = describe(module)
        shape = list(outputs[stage].shape)
        if stage == "flatten":
            previous = rows[-1].output_shape[1:]
            layers = f"Flatten {'x'.join(map(str, previous))} -> {outputs[stage].shape[1]}"
        rows.append(LayerRow(stage, layers, shape, count_parameters(module), connections(module, shape)))
    return rows


def format_trace(rows: list[LayerRow]) -> str:
    """The trace as an aligned table, with the batch dimension written as N."""
    def shape(row: LayerRow) -> str:
        return "[" + ", ".join(["N", *map(str, row.output_shape[1:])]) + "]"

    table = [("stage", "layers", "output shape", "parameters", "connections")]
    table += [(row.stage, row.layers, shape(row), f"{row.parameters:,}", f"{row.connections:,}") for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))
             for line in table]
    rule = "-" * len(lines[0])
    totals = (f"total trainable parameters: {sum(row.parameters for row in rows):,}; "
              f"connections: {sum(row.connections for row in rows):,}")
    return "\n".join([lines[0], rule, *lines[1:], rule, totals]) + "\n"


def to_dict(rows: list[LayerRow]) -> dict:
    """The trace plus the total, as plain data (for ``--json``)."""
    return {"layers": [asdict(row) for row in rows], "total_parameters": sum(row.parameters for row in rows),
            "total_connections": sum(row.connections for row in rows)}
