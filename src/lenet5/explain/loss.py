"""Worked examples for the output end: softmax and cross-entropy, from the handout's logits."""

from __future__ import annotations

import math

import torch
from torch import nn

from .lesson import Lesson, number, vector

HANDOUT_LOGITS = [2.0, 1.0, 0.1]
HANDOUT_TRUE_CLASS = 0
HANDOUT_PROBABILITIES = [0.659, 0.243, 0.098]  # the handout rounds e^z to 2 decimals first
HANDOUT_LOSS = 0.417
# The handout's CrossEntropyLoss demo: a batch of 3 with 4 classes and index labels.
BATCH_LOGITS = [[1.2, 0.8, 2.1, 0.5], [0.2, 2.5, 0.3, 1.0], [1.5, 0.2, 0.3, 3.1]]
BATCH_LABELS = [2, 1, 3]


def softmax() -> Lesson:
    lesson = Lesson("softmax", "Softmax: logits become probabilities that sum to 1")
    logits = torch.tensor(HANDOUT_LOGITS)
    exps = logits.exp()
    total = float(exps.sum())
    probabilities = torch.softmax(logits, dim=0)
    lesson.say(f"logits z = {vector(HANDOUT_LOGITS)}",
               "softmax(z)_i = e^z_i / sum_j e^z_j",
               "   " + ", ".join(f"e^{number(z)} = {number(e)}" for z, e in zip(HANDOUT_LOGITS, exps.tolist())),
               f"   sum = {number(total)}",
               "   " + ", ".join(f"{number(e)} / {number(total)} = {number(p)}"
                                 for e, p in zip(exps.tolist(), probabilities.tolist())),
               f"torch.softmax(z, dim=0) = {vector(probabilities.tolist(), 3)}   "
               f"handout: {vector(HANDOUT_PROBABILITIES, 3)} (it rounds e^z before dividing)",
               f"sum of probabilities = {number(float(probabilities.sum()))}",
               f"adding a constant to every logit changes nothing: softmax(z + 100) = "
               f"{vector(torch.softmax(logits + 100, dim=0).tolist(), 3)}")
    lesson.values = {"logits": HANDOUT_LOGITS, "exp": exps.tolist(), "sum_exp": total,
                     "probabilities": probabilities.tolist(), "handout_probabilities": HANDOUT_PROBABILITIES}
    return lesson


def cross_entropy() -> Lesson:
    lesson = Lesson("cross-entropy", "Cross-entropy: -log of the probability given to the true class")
    logits = torch.tensor([HANDOUT_LOGITS])  # (N=1, C=3): a batch of one
    label = torch.tensor([HANDOUT_TRUE_CLASS])
    probabilities = torch.softmax(logits, dim=1)[0]
    one_hot = nn.functional.one_hot(label, num_classes=len(HANDOUT_LOGITS)).float()[0]
    by_hand_one_hot = float(-(one_hot * probabilities.log()).sum())
    by_hand_index = -math.log(float(probabilities[HANDOUT_TRUE_CLASS]))
    torch_loss = float(nn.CrossEntropyLoss()(logits, label))
    lesson.say(f"logits {vector(HANDOUT_LOGITS)}, true class {HANDOUT_TRUE_CLASS}",
               f"softmax -> {vector(probabilities.tolist(), 3)}", "",
               f"one-hot label   y = {vector(one_hot.tolist())}:  L = -sum y_i log(p_i) = {number(by_hand_one_hot)}",
               f"index label     y = {HANDOUT_TRUE_CLASS}:          L = -log(p_{HANDOUT_TRUE_CLASS}) = "
               f"-log({number(float(probabilities[0]), 3)}) = {number(by_hand_index)}",
               f"nn.CrossEntropyLoss()(logits, tensor([{HANDOUT_TRUE_CLASS}])) = {number(torch_loss)}   "
               f"handout: about {HANDOUT_LOSS}",
               "CrossEntropyLoss takes raw logits and index labels; it applies log-softmax itself.",
               "Feeding it softmax output applies softmax twice: "
               f"{number(float(nn.CrossEntropyLoss()(probabilities[None], label)))} instead of {number(torch_loss)}.")
    batch = torch.tensor(BATCH_LOGITS)
    batch_labels = torch.tensor(BATCH_LABELS)
    per_image = -torch.log_softmax(batch, dim=1)[torch.arange(len(BATCH_LABELS)), batch_labels]
    batch_loss = float(nn.CrossEntropyLoss()(batch, batch_labels))
    lesson.say("", f"the handout's batch of 3 (4 classes), labels {BATCH_LABELS}:",
               f"   per-image -log p(true) = {vector(per_image.tolist())}",
               f"   their mean = {number(float(per_image.mean()))}; nn.CrossEntropyLoss() = {number(batch_loss)}")
    lesson.values = {"logits": HANDOUT_LOGITS, "true_class": HANDOUT_TRUE_CLASS, "one_hot": one_hot.tolist(),
                     "probabilities": probabilities.tolist(), "loss_one_hot": by_hand_one_hot,
                     "loss_index": by_hand_index, "loss_torch": torch_loss, "handout_loss": HANDOUT_LOSS,
                     "batch": {"per_image": per_image.tolist(), "mean": float(per_image.mean()), "torch": batch_loss}}
    return lesson
