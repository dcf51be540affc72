"""Worked examples for model state and input scale: train()/eval(), no_grad, normalisation."""

from __future__ import annotations

import torch
from torch import nn

from .lesson import Lesson, matrix, number, vector

SEED = 0
DROPOUT_P = 0.5
# A batch of 4 samples with 2 features, far from mean 0 / variance 1 so batchnorm visibly moves it.
BATCH = [[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]]


def modes() -> Lesson:
    lesson = Lesson("modes", "model.train() vs model.eval(), and what torch.no_grad() changes")
    _dropout(lesson)
    _batchnorm(lesson)
    _no_grad(lesson)
    return lesson


def _dropout(lesson: Lesson) -> None:
    torch.manual_seed(SEED)
    dropout = nn.Dropout(DROPOUT_P)
    ones = torch.ones(8)
    train_out = dropout.train()(ones)
    eval_out = dropout.eval()(ones)
    kept = int((train_out != 0).sum())
    lesson.say(f"nn.Dropout(p={DROPOUT_P}) on eight 1s:",
               f"   train(): {vector(train_out.tolist())}   ({8 - kept} zeroed; survivors scaled by "
               f"1/(1-p) = {number(1 / (1 - DROPOUT_P))} so the expected value stays 1)",
               f"   eval():  {vector(eval_out.tolist())}   (identity: every run gives the same answer)", "")
    lesson.values["dropout"] = {"p": DROPOUT_P, "train": train_out.tolist(), "eval": eval_out.tolist()}


def _batchnorm(lesson: Lesson) -> None:
    batch = torch.tensor(BATCH)
    norm = nn.BatchNorm1d(2)
    train_out = norm.train()(batch)
    running_mean, running_var = norm.running_mean.clone(), norm.running_var.clone()
    eval_out = norm.eval()(batch)
    lesson.say("nn.BatchNorm1d(2) on a batch of 4 (columns: features):", *matrix(BATCH),
               "   train(): normalised with this batch's own mean and variance:",
               *matrix(train_out.tolist(), indent="      "),
               f"      batch mean {vector(batch.mean(0).tolist())}; running mean updated to "
               f"{vector(running_mean.tolist())}, running var to {vector(running_var.tolist())} "
               f"(momentum {norm.momentum})",
               "   eval(): normalised with the running statistics instead - after one batch they are still",
               "   close to their start (mean 0, var 1), so the output is far from normalised:",
               *matrix(eval_out.tolist(), indent="      "), "")
    lesson.values["batchnorm"] = {"input": BATCH, "train": train_out.tolist(), "eval": eval_out.tolist(),
                                  "running_mean": running_mean.tolist(), "running_var": running_var.tolist()}


def _no_grad(lesson: Lesson) -> None:
    layer = nn.Linear(2, 1)
    inputs = torch.tensor(BATCH)
    tracked = layer(inputs)
    with torch.no_grad():
        untracked = layer(inputs)
    lesson.say("torch.no_grad() is not a mode: it stops autograd recording the graph.",
               f"   outside: requires_grad={tracked.requires_grad}, grad_fn={type(tracked.grad_fn).__name__}",
               f"   inside:  requires_grad={untracked.requires_grad}, grad_fn={untracked.grad_fn}",
               f"   same values: {torch.equal(tracked.detach(), untracked)} - only memory and speed change;",
               "   eval() still decides dropout and batchnorm behaviour, so inference uses both.")
    lesson.values["no_grad"] = {"outside_requires_grad": tracked.requires_grad,
                                "inside_requires_grad": untracked.requires_grad,
                                "same_values": torch.equal(tracked.detach(), untracked)}


def normalize() -> Lesson:
    from ..config import NORMALIZATIONS
    from ..data.mnist import load_split
    from ..preprocess import Normalization

    lesson = Lesson("normalize", "Normalisation: one real MNIST digit under each mode")
    train_images, _ = load_split("train")
    test_images, test_labels = load_split("test")
    image = test_images[:1]
    lesson.say(f"the first MNIST test image (a {int(test_labels[0])}): uint8 pixels "
               f"{int(image.min())}..{int(image.max())}, shape {list(image.shape)}",
               "each mode maps pixels by x = (pixel / 255 - mean) / std; zscore measures mean and std "
               f"on the {len(train_images):,} training images", "")
    ranges = {}
    for mode in NORMALIZATIONS:
        normalization = Normalization.fit(mode, train_images)
        tensor = normalization(image)
        ranges[mode] = {"mean": normalization.mean, "std": normalization.std,
                        "min": float(tensor.min()), "max": float(tensor.max()), "shape": list(tensor.shape)}
        lesson.say(f"   {mode:>7}: mean {normalization.mean:.4f}, std {normalization.std:.4f} -> "
                   f"range [{number(float(tensor.min()))}, {number(float(tensor.max()))}]")
    lesson.say("", "[-1,1] is centred on 0, matching tanh's output range (the handout's choice);",
               "[0,1] or none suit ReLU; zscore gives mean 0, std 1 over the whole training set.",
               f"the tensor the model sees has shape {ranges['[-1,1]']['shape']}: [N, C, H, W].")
    lesson.values = {"label": int(test_labels[0]), "pixel_min": int(image.min()), "pixel_max": int(image.max()),
                     "modes": ranges}
    return lesson
