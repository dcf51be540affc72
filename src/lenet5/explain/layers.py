"""Worked examples for the layers: convolution, pooling, activations, flatten.

Every input below is copied from the lab handout; every output is computed by torch.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .lesson import Lesson, matrix, number, vector

# The handout's 5x5 grey image and its 3x3 vertical-edge kernel.
HANDOUT_IMAGE = [
    [1, 1, 1, 0, 0],
    [0, 1, 1, 1, 0],
    [0, 0, 1, 1, 1],
    [0, 0, 1, 1, 0],
    [0, 1, 1, 0, 0],
]
EDGE_KERNEL = [
    [1, 0, -1],
    [1, 0, -1],
    [1, 0, -1],
]
HANDOUT_TOP_LEFT = -3  # what the handout prints for the top-left output

# The handout's pooling examples: a 4x4 map (nn.MaxPool2d demo), a 2x2 region for max vs
# average, and the 2x2 region it uses to argue for max pooling.
POOL_GRID = [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [9.0, 10.0, 11.0, 12.0], [13.0, 14.0, 15.0, 16.0]]
SMALL_REGION = [[1.0, 3.0], [2.0, 4.0]]
SALIENT_REGION = [[0.1, 0.2], [0.8, 0.3]]

TANH_INPUTS = [-2.0, 0.0, 2.0]
RELU_INPUTS = [-3.0, 0.0, 2.0]


def output_size(size: int, kernel: int, padding: int = 0, stride: int = 1) -> int:
    """The conv/pool output-size formula: floor((H + 2p - k) / s) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def conv() -> Lesson:
    lesson = Lesson("conv", "Convolution: a 3x3 edge kernel sliding over a 5x5 image")
    image = torch.tensor(HANDOUT_IMAGE, dtype=torch.float32)[None, None]  # (N=1, C=1, 5, 5)
    kernel = torch.tensor(EDGE_KERNEL, dtype=torch.float32)[None, None]  # (out=1, in=1, 3, 3)
    feature_map = F.conv2d(image, kernel)[0, 0]
    window = image[0, 0, :3, :3]
    products = window * kernel[0, 0]
    row_sums = products.sum(1)
    top_left = float(feature_map[0, 0])
    lesson.say("image (5x5):", *matrix(HANDOUT_IMAGE), "kernel (3x3, a vertical-edge detector):",
               *matrix(EDGE_KERNEL), "",
               "top-left window times kernel, element by element, row by row:")
    for r in range(3):
        terms = " + ".join(f"{number(window[r, c])}x({number(kernel[0, 0, r, c])})" for c in range(3))
        lesson.say(f"    {terms} = {number(row_sums[r])}")
    lesson.say(f"    sum = {' + '.join(f'({number(s)})' for s in row_sums)} = {number(top_left)}",
               f"torch.nn.functional.conv2d gives the same top-left value: {number(top_left)}",
               f"note: the handout prints {HANDOUT_TOP_LEFT}, but its own terms (1 + 0 -1) + (0 + 0 -1) + "
               f"(0 + 0 -1) add up to {number(top_left)} (the map's "
               f"{number(feature_map[1, 0])} is one row down, at row 2, column 1).",
               "(PyTorch's conv2d does not flip the kernel - it is cross-correlation, as the handout computes.)",
               "", "whole feature map (3x3):", *matrix(feature_map.tolist()), "")
    lesson.say("output size = floor((H + 2*padding - k) / stride) + 1, checked against conv2d:")
    sizes = []
    for padding, stride in ((0, 1), (1, 1), (0, 2), (1, 2)):
        formula = output_size(5, 3, padding, stride)
        actual = F.conv2d(image, kernel, padding=padding, stride=stride).shape[-1]
        sizes.append({"padding": padding, "stride": stride, "formula": formula, "conv2d": actual})
        lesson.say(f"    padding {padding}, stride {stride}: (5 + {2 * padding} - 3) // {stride} + 1 = "
                   f"{formula}  -> conv2d output {actual}x{actual}")
    lesson.say(f"LeNet's C1 (28x28 input, 5x5 kernel, padding 2): (28 + 4 - 5) // 1 + 1 = {output_size(28, 5, 2)}")
    lesson.values = {"image": HANDOUT_IMAGE, "kernel": EDGE_KERNEL, "feature_map": feature_map.tolist(),
                     "top_left": top_left, "handout_top_left": HANDOUT_TOP_LEFT, "output_sizes": sizes}
    return lesson


def pool() -> Lesson:
    lesson = Lesson("pool", "Pooling: max keeps the strongest signal, average blurs it")
    grid = torch.tensor(POOL_GRID)[None, None]
    max_grid = nn.MaxPool2d(kernel_size=2, stride=2)(grid)[0, 0]
    avg_grid = nn.AvgPool2d(kernel_size=2, stride=2)(grid)[0, 0]
    lesson.say("4x4 input:", *matrix(POOL_GRID), "nn.MaxPool2d(kernel_size=2, stride=2) -> 2x2:",
               *matrix(max_grid.tolist()), "nn.AvgPool2d(kernel_size=2, stride=2) -> 2x2:",
               *matrix(avg_grid.tolist()), "")
    regions = {}
    for name, region in (("small", SMALL_REGION), ("salient", SALIENT_REGION)):
        tensor = torch.tensor(region)[None, None]
        biggest = float(F.max_pool2d(tensor, 2))
        mean = float(F.avg_pool2d(tensor, 2))
        regions[name] = {"region": region, "max": biggest, "avg": mean}
        flat = [v for row in region for v in row]
        lesson.say(f"region {region}: max = {number(biggest)}, "
                   f"average = ({' + '.join(number(v) for v in flat)}) / 4 = {number(mean)}")
    lesson.say("max keeps the salient 0.8; average dilutes it to 0.35.")
    lesson.values = {"input": POOL_GRID, "max": max_grid.tolist(), "avg": avg_grid.tolist(), **regions}
    return lesson


def activation() -> Lesson:
    lesson = Lesson("activation", "Activations: tanh squashes into (-1, 1); ReLU cuts negatives to 0")
    tanh_out = nn.Tanh()(torch.tensor(TANH_INPUTS))
    relu_out = nn.ReLU()(torch.tensor(RELU_INPUTS))
    lesson.say("tanh(x) = (e^x - e^-x) / (e^x + e^-x)")
    for x, y in zip(TANH_INPUTS, tanh_out.tolist()):
        by_hand = (torch.tensor(x).exp() - torch.tensor(-x).exp()) / (torch.tensor(x).exp() + torch.tensor(-x).exp())
        lesson.say(f"    tanh({number(x)}) = {number(y)}   (by the formula: {number(float(by_hand))})")
    lesson.say(f"nn.Tanh()({vector(TANH_INPUTS)}) = {vector(tanh_out.tolist())}   handout: [-0.964, 0, 0.964]",
               "", "ReLU(x) = max(0, x)",
               f"nn.ReLU()({vector(RELU_INPUTS)}) = {vector(relu_out.tolist())}   handout: [0, 0, 2]")
    grad_inputs = torch.tensor([0.0, 2.0, 5.0], requires_grad=True)
    torch.tanh(grad_inputs).sum().backward()
    lesson.say("", "why tanh saturates: its slope 1 - tanh(x)^2 at x = 0, 2, 5 is "
               f"{vector(grad_inputs.grad.tolist())} - the gradient vanishes for large |x|.")
    lesson.values = {"tanh": {"inputs": TANH_INPUTS, "outputs": tanh_out.tolist()},
                     "relu": {"inputs": RELU_INPUTS, "outputs": relu_out.tolist()},
                     "tanh_slope": {"inputs": [0.0, 2.0, 5.0], "outputs": grad_inputs.grad.tolist()}}
    return lesson


def flatten() -> Lesson:
    from ..model import S4_FEATURES

    lesson = Lesson("flatten", "Flatten: feature maps become one vector per image")
    maps = torch.randn(1, 64, 7, 7, generator=torch.Generator().manual_seed(0))
    by_view = maps.view(1, -1)
    by_module = nn.Flatten()(maps)
    lenet = nn.Flatten()(torch.zeros(1, 16, 5, 5))
    lesson.say(f"x = torch.randn{tuple(maps.shape)}",
               f"x.view(1, -1).shape    = {list(by_view.shape)}   (64 x 7 x 7 = {64 * 7 * 7})",
               f"nn.Flatten()(x).shape  = {list(by_module.shape)}; same values: {torch.equal(by_view, by_module)}",
               "nn.Flatten keeps dim 0 (the batch) and joins the rest, so a batch of N gives [N, 3136].",
               f"a fully connected layer on it, nn.Linear(3136, 10), has 3136 x 10 + 10 = "
               f"{sum(p.numel() for p in nn.Linear(3136, 10).parameters())} parameters.",
               f"in LeNet-5, S4's [1, 16, 5, 5] flattens to {list(lenet.shape)} (16 x 5 x 5 = {S4_FEATURES}).")
    lesson.values = {"input_shape": list(maps.shape), "view_shape": list(by_view.shape),
                     "flatten_shape": list(by_module.shape), "same_values": torch.equal(by_view, by_module),
                     "lenet_shape": list(lenet.shape)}
    return lesson
