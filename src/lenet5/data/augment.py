"""Training-time distortions of whole batches: random affine maps and elastic fields.

Every batch is warped in one ``F.grid_sample`` call: ``affine`` draws a rotation, scale,
shear and shift per image (``F.affine_grid``); ``elastic`` adds Simard et al.'s (2003)
displacement field on top: uniform noise in [-1, 1] per pixel and axis, smoothed by a
gaussian of width ``sigma`` and scaled by ``alpha`` (both in pixels). Set the affine
magnitudes to 0 for the elastic field alone, as in the paper.

Randomness comes only from the generator passed in (the training loop's per-epoch
generator, drawn on the CPU), so the same seed gives the same batches on any device and a
resumed run replays them exactly. With every magnitude at 0 the batch is returned
untouched: grid_sample's coordinate round trip is accurate to about 1e-6, not bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from ..config import TrainConfig

AFFINE_DRAWS = 5  # per image: angle, scale, shear, x shift, y shift
GAUSSIAN_TRUNCATE = 3.0  # kernel radius in sigmas; the tails beyond hold < 0.3% of the weight


@dataclass(frozen=True)
class Distortion:
    """How far each image may be moved; each value is the bound of a uniform draw.

    rotation and shear are in degrees, translation and elastic alpha/sigma in pixels, and
    scale is relative (0.1: a factor in [0.9, 1.1]).
    """

    kind: str = "affine"
    rotation: float = 0.0
    scale: float = 0.0
    translation: float = 0.0
    shear: float = 0.0
    elastic_alpha: float = 0.0
    elastic_sigma: float = 4.0

    @property
    def is_identity(self) -> bool:
        """True when no draw can move a pixel: the batch can skip resampling altogether."""
        affine = (self.rotation, self.scale, self.translation, self.shear)
        elastic = self.elastic_alpha if self.kind == "elastic" else 0.0
        return self.kind == "none" or not any(affine) and not elastic


def affine_theta(angle: torch.Tensor, scale: torch.Tensor, shear: torch.Tensor, shift: torch.Tensor,
                 size: int) -> torch.Tensor:
    """``F.affine_grid``'s (N, 2, 3) matrices for rotating, scaling, shearing and shifting images.

    Args:
        angle: (N,) degrees; positive turns the digit counter-clockwise on screen.
        scale: (N,) factors; above 1 enlarges the digit.
        shear: (N,) degrees of horizontal shear.
        shift: (N, 2) pixels (x right, y down) that the digit moves by.
        size: the image side in pixels (square images).

    The grid maps each output pixel back to where it samples the input, so the matrix is
    the inverse of the forward map ``x_out = A x_in + b`` in normalised coordinates.
    """
    radians, shear_radians = torch.deg2rad(angle), torch.deg2rad(shear)
    cos, sin = torch.cos(radians), torch.sin(radians)
    # Rows point down on screen, so a counter-clockwise turn is [[cos, sin], [-sin, cos]].
    rotate = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
    ones, zeros = torch.ones_like(angle), torch.zeros_like(angle)
    shear_matrix = torch.stack([torch.stack([ones, torch.tan(shear_radians)], -1),
                                torch.stack([zeros, ones], -1)], -2)
    forward = rotate @ shear_matrix * scale[:, None, None]
    inverse = torch.linalg.inv(forward)
    offset = shift * (2.0 / size)  # pixels to normalised units (the image spans [-1, 1])
    return torch.cat([inverse, -(inverse @ offset[:, :, None])], dim=2)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A 1-D gaussian of standard deviation ``sigma`` pixels, summing to 1."""
    radius = max(1, math.ceil(GAUSSIAN_TRUNCATE * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


def smoothing_matrix(size: int, sigma: float) -> torch.Tensor:
    """The (size, size) band matrix that blurs one image axis with zero padding.

    ``M @ X @ M.T`` equals a 2-D gaussian convolution of ``X`` with zeros outside, but as two
    small matrix products it runs several times faster than ``conv2d`` with a single channel.
    """
    kernel = gaussian_kernel(sigma)
    radius = len(kernel) // 2
    offsets = torch.arange(size)[:, None] - torch.arange(size)[None, :]
    inside = offsets.abs() <= radius
    return torch.where(inside, kernel[(offsets + radius).clamp(0, len(kernel) - 1)], 0.0)


def smooth(fields: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian-blur (..., H, W) square fields with zero padding."""
    matrix = smoothing_matrix(fields.shape[-1], sigma).to(fields.device)
    return matrix @ fields @ matrix.T


def elastic_offsets(count: int, size: int, alpha: float, sigma: float,
                    generator: torch.Generator) -> torch.Tensor:
    """Simard's displacement fields as (N, H, W, 2) offsets in normalised grid units."""
    noise = torch.rand(count, 2, size, size, generator=generator) * 2 - 1
    pixels = smooth(noise, sigma) * alpha
    return pixels.permute(0, 2, 3, 1) * (2.0 / size)


def warp(images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Resample (N, 1, H, W) images along a grid, bilinearly.

    Outside the image the edge pixel is repeated: MNIST's 4-pixel border is background, so
    whatever moves in is background too, whatever the normalisation maps black to.
    """
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


class Augmenter:
    """Distorts normalised (N, 1, H, W) training batches, drawing from a given generator."""

    def __init__(self, distortion: Distortion) -> None:
        self.distortion = distortion

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A distorted copy of ``images``; labels are untouched by construction."""
        d = self.distortion
        if d.is_identity:
            return images
        count, _, size, _ = images.shape
        draws = torch.rand(count, AFFINE_DRAWS, generator=generator) * 2 - 1  # uniform in [-1, 1]
        theta = affine_theta(draws[:, 0] * d.rotation, 1 + draws[:, 1] * d.scale, draws[:, 2] * d.shear,
                             draws[:, 3:] * d.translation, size)
        grid = F.affine_grid(theta, [count, 1, size, size], align_corners=False)
        if d.kind == "elastic" and d.elastic_alpha:
            grid = grid + elastic_offsets(count, size, d.elastic_alpha, d.elastic_sigma, generator)
        return warp(images, grid.to(images.device, images.dtype))


def distortion_of(config: TrainConfig) -> Distortion:
    """The distortion ``config``'s augmentation fields describe."""
    return Distortion(config.augment, config.rotation, config.scale, config.translation, config.shear,
                      config.elastic_alpha, config.elastic_sigma)


def augmenter_for(config: TrainConfig, epoch: int) -> Augmenter | None:
    """The augmenter for one epoch of ``config``'s run: None when it trains on clean images."""
    distortion = distortion_of(config)
    if distortion.is_identity or epoch > config.epochs - config.clean_epochs:
        return None
    return Augmenter(distortion)


def preview(images: torch.Tensor, distortion: Distortion, draws: int, seed: int) -> torch.Tensor:
    """``draws`` distorted versions of each uint8 (N, 28, 28) image: float (N, draws, 28, 28) in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    pixels = images.unsqueeze(1).to(torch.float32) / 255
    augment = Augmenter(distortion)
    return torch.cat([augment(pixels, generator) for _ in range(draws)], dim=1)
