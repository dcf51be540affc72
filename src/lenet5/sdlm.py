"""Stochastic diagonal Levenberg-Marquardt (LeCun et al. 1998, Appendix C).

Each parameter w_k gets its own step eta / (mu + h_kk), where h_kk estimates the diagonal
second derivative of the loss. The estimate is the Gauss-Newton one the paper describes:
off-diagonal terms and the squashing functions' second derivatives f'' are dropped, which
leaves a quantity that is never negative and back-propagates like the gradient:

    d2E/da_i^2  = f'(a_i)^2 * d2E/dx_i^2                 (through a squashing unit)
    d2E/dx_j^2  = sum_i w_ij^2 * d2E/da_i^2             (down through a connection)
    h_kk        = sum over the connections (i, j) that share w_k of x_j^2 * d2E/da_i^2

How it is computed here: for a layer that is linear in its weights and in its input (a
convolution, a linear layer, a subsampling layer), running the *same layer* on x^2 with its
weights squared and back-propagating d2E/da^2 through it yields exactly the two sums above,
as the gradients with respect to the squared weights and the squared input. So one reverse
sweep of autograd calls, one per layer, gives every h_kk for a whole batch of samples at the
cost of about one backward pass; dividing by the batch size gives the per-sample average
that the paper's running estimate over 500 samples approximates. At the top, d2E/dx^2 for
the RBF's input x is the exact diagonal of the criterion's Hessian (double backward): the
RBF is a sum of squares, so for the MAP criterion that diagonal is already non-negative.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.func import functional_call

from .errors import Lenet5Error
from .model1998 import ScaledTanh

CURVATURE_SAMPLES = 500  # the paper re-estimates h_kk on 500 patterns before each pass
MU = 0.02  # the paper's mu: keeps the step bounded (eta / mu) where the curvature is tiny
SQUASHES = (ScaledTanh, nn.Tanh)  # elementwise units whose f'(a)^2 scales the curvature

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class SDLM(torch.optim.Optimizer):
    """Per-parameter steps eta / (mu + h_kk); call :meth:`estimate_curvature` before each pass.

    Args:
        params: the parameters to train.
        lr: the global step eta (the paper's schedule starts at 0.0005).
        mu: added to every h_kk.
        samples_per_step: samples whose *mean* gradient each ``step`` sees. The paper updates
            after every sample; the mean of B gradients times B steps each sample by its own
            eta / (mu + h_kk), so a mini-batch moves the weights as B one-sample updates
            would to first order (``benchmarks/sdlm_batch.py`` measures how closely).
    """

    def __init__(self, params: Iterable[nn.Parameter], lr: float, mu: float = MU, samples_per_step: int = 1) -> None:
        super().__init__(params, {"lr": lr, "mu": mu, "samples_per_step": samples_per_step})

    @torch.no_grad()
    def step(self, closure: None = None) -> None:
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                curvature = self.state[param].get("curvature")
                if curvature is None:
                    curvature = torch.zeros_like(param)
                param.addcdiv_(param.grad, curvature + group["mu"], value=-group["lr"] * group["samples_per_step"])

    def estimate_curvature(self, model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, loss_fn: Loss) -> None:
        """Replace every h_kk with the mean Gauss-Newton diagonal over ``inputs``."""
        for param, curvature in gauss_newton_diagonal(model, inputs, labels, loss_fn).items():
            self.state[param]["curvature"] = curvature


def curvature_sample(count: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of the training images the curvature is estimated on this pass."""
    return torch.randperm(count, generator=generator)[:CURVATURE_SAMPLES]


def gauss_newton_diagonal(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor,
                          loss_fn: Loss) -> dict[nn.Parameter, torch.Tensor]:
    """The per-sample mean of the back-propagated Gauss-Newton diagonal, per parameter.

    The model must be a chain of leaf modules (the order they run in is recorded), each a
    squashing unit, a Flatten, a layer linear in its weights and input, or, last, a
    parameter-free output layer (the RBF) that is folded into the criterion.
    """
    records = _record_leaves(model, inputs)
    last, last_input, last_output = records[-1]
    if _has_parameters(last) or isinstance(last, (*SQUASHES, nn.Flatten)):
        tail, tail_input = nn.Identity(), last_output  # the criterion reads this layer's output
    else:
        tail, tail_input = last, last_input  # fold the parameter-free output layer (the RBF) into the criterion
        records.pop()
    curvature = output_curvature(tail, tail_input, labels, loss_fn)
    sums: dict[nn.Parameter, torch.Tensor] = {}
    for module, layer_input, _ in reversed(records):
        curvature = _back_propagate(module, layer_input, curvature, sums)
    return {param: total / len(inputs) for param, total in sums.items()}


def output_curvature(tail: nn.Module, tail_input: torch.Tensor, labels: torch.Tensor, loss_fn: Loss) -> torch.Tensor:
    """d2E/dx^2 per sample and input unit x of ``tail`` followed by the criterion: tail_input's shape.

    Samples are independent, so differentiating the batch's summed gradient along unit k gives
    every sample's d2E/dx_k^2 at once: one double-backward per unit (84 for the RBF).
    """
    x = tail_input.detach().flatten(1).requires_grad_(True)
    with torch.enable_grad():
        per_sample_total = loss_fn(tail(x.view(tail_input.shape)), labels) * len(x)  # undo the batch mean
        (gradient,) = torch.autograd.grad(per_sample_total, x, create_graph=True)
        columns = [torch.autograd.grad(gradient[:, k].sum(), x, retain_graph=True)[0][:, k]
                   for k in range(x.shape[1])]
    # Clamped at 0 for safety: Gauss-Newton curvature is never negative by construction.
    return torch.stack(columns, dim=1).clamp_min(0).view(tail_input.shape)


def _record_leaves(model: nn.Module, inputs: torch.Tensor) -> list[tuple[nn.Module, torch.Tensor, torch.Tensor]]:
    """(module, input, output) for every leaf module, in the order the forward pass runs them."""
    records: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []
    leaves = [m for m in model.modules() if not list(m.children())]

    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        records.append((module, args[0].detach(), output.detach()))

    handles = [leaf.register_forward_hook(hook) for leaf in leaves]
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return records


def _has_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _back_propagate(module: nn.Module, layer_input: torch.Tensor, curvature: torch.Tensor,
                    result: dict[nn.Parameter, torch.Tensor]) -> torch.Tensor:
    """Take d2E/d(output)^2 down to d2E/d(input)^2, adding this module's h_kk to ``result``."""
    if isinstance(module, SQUASHES):
        a = layer_input.clone().requires_grad_(True)
        (slope,) = torch.autograd.grad(module(a).sum(), a)  # f'(a), elementwise
        return curvature * slope.pow(2)
    if isinstance(module, nn.Flatten):
        return curvature.reshape(layer_input.shape)
    if not _has_parameters(module):
        raise Lenet5Error(f"optimizer sdlm: no curvature rule for {type(module).__name__}; "
                          "it supports --arch lenet5-1998")
    params = dict(module.named_parameters())
    # Squared weights; a bias reads a constant input of 1, so it enters as 0 + b with b = 0.
    squared = {name: (torch.zeros_like(p) if name == "bias" else p.detach().pow(2)).requires_grad_(True)
               for name, p in params.items()}
    squared_input = layer_input.pow(2).requires_grad_(True)
    output = functional_call(module, squared, (squared_input,))
    grads = torch.autograd.grad(output, [*squared.values(), squared_input], grad_outputs=curvature)
    for (name, param), grad in zip(params.items(), grads):
        result[param] = result.get(param, 0) + grad
    return grads[-1]
