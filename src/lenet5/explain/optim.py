"""Optimiser updates by hand next to torch.optim, on the handout's nn.Linear(10, 2) example.

Both sides start from the same weights and the same gradients; the hand-written update
follows the handout's formulas (plus momentum, which PyTorch's SGD adds), and the lesson
reports the largest difference from what torch.optim computed.
"""

from __future__ import annotations

import torch
from torch import nn

from .lesson import Lesson, vector

SEED = 0
STEPS = 2  # the second step is where momentum and Adam's moment estimates start to matter
SGD_SETTINGS = {"lr": 0.01, "momentum": 0.9}  # the handout's optim.SGD example
ADAM_SETTINGS = {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8}  # the handout's optim.Adam example


def _problem() -> tuple[nn.Linear, torch.Tensor, torch.Tensor]:
    """The handout's toy problem: nn.Linear(10, 2), a batch of 8 random inputs and labels."""
    generator = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    model = nn.Linear(10, 2)
    inputs = torch.randn(8, 10, generator=generator)
    labels = torch.randint(0, 2, (8,), generator=generator)
    return model, inputs, labels


def _gradients(params: list[torch.Tensor], inputs: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
    """Gradients of the mean cross-entropy of ``inputs @ W.T + b`` with respect to (W, b)."""
    weight, bias = (p.detach().clone().requires_grad_(True) for p in params)
    loss = nn.functional.cross_entropy(inputs @ weight.T + bias, labels)
    return list(torch.autograd.grad(loss, (weight, bias)))


def _torch_steps(optimizer_class: type, settings: dict, model: nn.Linear, inputs: torch.Tensor,
                 labels: torch.Tensor) -> list[list[torch.Tensor]]:
    """Parameters after each of STEPS updates by torch.optim (the handout's training step)."""
    optimizer = optimizer_class(model.parameters(), **settings)
    history = []
    for _ in range(STEPS):
        loss = nn.CrossEntropyLoss()(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append([p.detach().clone() for p in model.parameters()])
    return history


def _compare(lesson: Lesson, by_hand: list[list[torch.Tensor]], by_torch: list[list[torch.Tensor]]) -> list[float]:
    differences = []
    for step, (hand, ours) in enumerate(zip(by_hand, by_torch), start=1):
        difference = max(float((h - t).abs().max()) for h, t in zip(hand, ours))
        differences.append(difference)
        lesson.say(f"step {step}: bias by hand  {vector(hand[1].tolist(), 6)}",
                   f"        bias by torch {vector(ours[1].tolist(), 6)}",
                   f"        largest difference over all {sum(p.numel() for p in hand)} parameters: {difference:.1e}")
    return differences


def sgd() -> Lesson:
    lesson = Lesson("sgd", "SGD: theta <- theta - lr * gradient (with momentum), by hand vs torch.optim.SGD")
    model, inputs, labels = _problem()
    start = [p.detach().clone() for p in model.parameters()]
    by_torch = _torch_steps(torch.optim.SGD, SGD_SETTINGS, model, inputs, labels)
    lr, momentum = SGD_SETTINGS["lr"], SGD_SETTINGS["momentum"]
    params, buffers, by_hand = start, None, []
    for _ in range(STEPS):
        grads = _gradients(params, inputs, labels)
        # PyTorch's momentum: the buffer starts as the first gradient, then b = mu * b + g.
        buffers = grads if buffers is None else [momentum * b + g for b, g in zip(buffers, grads)]
        params = [p - lr * b for p, b in zip(params, buffers)]
        by_hand.append(params)
    lesson.say(f"model nn.Linear(10, 2), batch of 8 (seed {SEED}), nn.CrossEntropyLoss, "
               f"optim.SGD(lr={lr}, momentum={momentum})",
               "by hand:  b = g on the first step, then b = momentum * b + g;   theta = theta - lr * b",
               f"start bias {vector(start[1].tolist(), 6)}", "")
    differences = _compare(lesson, by_hand, by_torch)
    lesson.say("", "equal up to float32 rounding." if max(differences) < 1e-6 else "they differ!")
    lesson.values = {"settings": SGD_SETTINGS, "steps": STEPS, "start_bias": start[1].tolist(),
                     "hand_bias": [h[1].tolist() for h in by_hand], "torch_bias": [t[1].tolist() for t in by_torch],
                     "max_abs_difference": differences}
    return lesson


def adam() -> Lesson:
    lesson = Lesson("adam", "Adam: momentum + RMSProp + bias correction, by hand vs torch.optim.Adam")
    model, inputs, labels = _problem()
    start = [p.detach().clone() for p in model.parameters()]
    by_torch = _torch_steps(torch.optim.Adam, ADAM_SETTINGS, model, inputs, labels)
    lr, (beta1, beta2), eps = ADAM_SETTINGS["lr"], ADAM_SETTINGS["betas"], ADAM_SETTINGS["eps"]
    params = start
    first = [torch.zeros_like(p) for p in params]
    second = [torch.zeros_like(p) for p in params]
    by_hand = []
    for step in range(1, STEPS + 1):
        grads = _gradients(params, inputs, labels)
        first = [beta1 * m + (1 - beta1) * g for m, g in zip(first, grads)]
        second = [beta2 * v + (1 - beta2) * g**2 for v, g in zip(second, grads)]
        m_hat = [m / (1 - beta1**step) for m in first]
        v_hat = [v / (1 - beta2**step) for v in second]
        params = [p - lr * m / (v.sqrt() + eps) for p, m, v in zip(params, m_hat, v_hat)]
        by_hand.append(params)
    lesson.say(f"model nn.Linear(10, 2), batch of 8 (seed {SEED}), nn.CrossEntropyLoss, "
               f"optim.Adam(lr={lr}, betas=({beta1}, {beta2}), eps={eps})",
               "by hand:  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;",
               "          m_hat = m / (1 - b1^t);  v_hat = v / (1 - b2^t);  theta = theta - lr * m_hat / (sqrt(v_hat) + eps)",
               f"start bias {vector(start[1].tolist(), 6)}", "")
    differences = _compare(lesson, by_hand, by_torch)
    first_move = (by_hand[0][1] - start[1]).abs()
    lesson.say("", f"on step 1 every parameter moves by about lr = {lr} (here {vector(first_move.tolist(), 6)}):",
               "m_hat / sqrt(v_hat) = g / |g|, so Adam's first step ignores the gradient's size.",
               "equal up to float32 rounding." if max(differences) < 1e-6 else "they differ!")
    lesson.values = {"settings": {**ADAM_SETTINGS, "betas": list(ADAM_SETTINGS["betas"])}, "steps": STEPS,
                     "start_bias": start[1].tolist(), "hand_bias": [h[1].tolist() for h in by_hand],
                     "torch_bias": [t[1].tolist() for t in by_torch], "max_abs_difference": differences}
    return lesson
