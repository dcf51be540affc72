"""Preprocessing defined once: how pixels become the tensor the model sees.

Training, evaluation, prediction, the web app and ONNX export all import from here, so
train and serve cannot drift apart. Every mode is an affine map on pixels scaled to [0, 1]:
``x = (pixel / 255 - mean) / std``; the (mean, std) pair is stored with the weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

PIXEL_MAX = 255.0

# (mean, std) in [0, 1] pixel units for the fixed modes. [-1, 1] is the handout's choice
# for tanh: (p - 0.5) / 0.5. "none" keeps raw 0..255 values: std = 1/255 undoes the scaling.
FIXED_MODES: dict[str, tuple[float, float]] = {
    "[-1,1]": (0.5, 0.5),
    "[0,1]": (0.0, 1.0),
    "none": (0.0, 1.0 / PIXEL_MAX),
}


@dataclass(frozen=True)
class Normalization:
    """An affine pixel normalisation, saved alongside the weights it was trained with."""

    mode: str
    mean: float
    std: float

    @classmethod
    def fit(cls, mode: str, train_images: torch.Tensor) -> "Normalization":
        """Build the normalisation for ``mode``; z-score measures mean/std on the training split."""
        if mode == "zscore":
            pixels = train_images.to(torch.float64) / PIXEL_MAX
            return cls(mode, float(pixels.mean()), float(pixels.std()))
        mean, std = FIXED_MODES[mode]
        return cls(mode, mean, std)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 28, 28) or (N, 1, 28, 28) -> float32 (N, 1, 28, 28)."""
        if images.dim() == 3:
            images = images.unsqueeze(1)  # add the channel dimension: [N, C, H, W]
        pixels = images.to(torch.float32) / PIXEL_MAX
        return (pixels - self.mean) / self.std

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)
