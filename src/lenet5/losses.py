"""The training criterion each architecture is trained with.

The lab network uses cross-entropy on its logits. The 1998 network uses the paper's MAP
criterion (LeCun et al. 1998, eq. 9): for a sample of class D with RBF distances y_i,

    E = y_D + log(e^-j + sum_i e^-y_i)

The first term pulls F6 towards the right bitmap; the second pushes the other classes away,
but only while their distance is below about j: the e^-j "junk" term stops the push once a
wrong class is far enough. With logits = -y (what ``LeNet5_1998.forward`` returns), E is
exactly cross-entropy over eleven classes whose eleventh logit is the constant -j, which is
how :class:`MAPLoss` computes it (logsumexp keeps it stable).
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig

# The paper leaves j's value open. At j = 1 a well-fitted sample (y_D about 1) still feels a
# pull of about 0.5 towards its bitmap, and a wrong class stops being pushed once it is a few
# units further away than that; competing classes start around 40 (ten differing pixels x 4).
MAP_J = 1.0


class MAPLoss(nn.Module):
    """The paper's eq. 9, averaged over the batch, on logits = -RBF distances."""

    def __init__(self, j: float = MAP_J) -> None:
        super().__init__()
        self.j = j

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        junk = torch.full_like(logits[:, :1], -self.j)  # the e^-j term as an extra class's logit
        normaliser = torch.logsumexp(torch.cat([logits, junk], dim=1), dim=1)  # log(e^-j + sum e^-y)
        penalty = -logits.gather(1, labels.unsqueeze(1)).squeeze(1)  # y_D
        return (penalty + normaliser).mean()


def loss_function(config: ModelConfig, label_smoothing: float = 0.0) -> nn.Module:
    """The criterion ``config.arch`` is trained and validated with.

    ``label_smoothing`` (training only; TrainConfig allows it for the lab network alone)
    softens cross-entropy's one-hot targets.
    """
    if config.arch == "lenet5-1998":
        return MAPLoss()
    # logits + integer labels; softmax is inside the loss
    return nn.CrossEntropyLoss(label_smoothing=label_smoothing)
