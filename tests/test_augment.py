"""Augmentation: exact identity at zero, reference rotations and shifts, seeding, resume."""

import csv

import pytest
import torch
import torch.nn.functional as F
from conftest import quick_config
from safetensors.torch import load_file

from lenet5.cli import main
from lenet5.config import TrainConfig
from lenet5.data.augment import (
    Augmenter,
    Distortion,
    affine_theta,
    augmenter_for,
    gaussian_kernel,
    smooth,
    warp,
)
from lenet5.data.mnist import load_split
from lenet5.train import fit

SIZE = 28
SAMPLING_TOLERANCE = 1e-5  # grid_sample's normalised-coordinate round trip, in pixel values
AFFINE = Distortion("affine", rotation=15, scale=0.15, translation=3, shear=10)
ELASTIC = Distortion("elastic", rotation=5, elastic_alpha=34, elastic_sigma=4)


def quiet(_: str) -> None:
    pass


def synthetic(count: int = 4) -> torch.Tensor:
    """Asymmetric random blobs with a zero border, so a wrong direction or a padding leak shows."""
    images = torch.zeros(count, 1, SIZE, SIZE)
    images[:, :, 5:23, 6:20] = torch.rand(count, 1, 18, 14, generator=torch.Generator().manual_seed(7))
    return images


def transformed(images: torch.Tensor, angle: float = 0.0, scale: float = 1.0, shear: float = 0.0,
                shift: tuple[float, float] = (0.0, 0.0)) -> torch.Tensor:
    count = len(images)
    theta = affine_theta(torch.full((count,), angle), torch.full((count,), scale), torch.full((count,), shear),
                         torch.tensor([shift] * count), SIZE)
    return warp(images, torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False))


def mnist_batch(count: int = 64) -> torch.Tensor:
    images, _ = load_split("test")
    return images[:count].unsqueeze(1).float() / 127.5 - 1  # the [-1, 1] normalisation


@pytest.mark.parametrize("kind", ["none", "affine", "elastic"])
def test_zero_magnitudes_are_the_identity_bit_for_bit(kind):
    images = mnist_batch()
    zero = Distortion(kind, elastic_alpha=0.0)
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(Augmenter(zero)(images, generator), images)
    assert augmenter_for(TrainConfig(augment=kind, rotation=0, scale=0, translation=0, shear=0, elastic_alpha=0),
                         epoch=1) is None


def test_the_identity_transform_through_the_sampler_is_within_rounding():
    images = synthetic()
    torch.testing.assert_close(transformed(images), images, rtol=0, atol=SAMPLING_TOLERANCE)


def test_a_quarter_turn_matches_rot90():
    images = synthetic()
    # torch.rot90 over (rows, columns) turns counter-clockwise on screen, as a positive angle does.
    expected = torch.rot90(images, 1, dims=(2, 3))
    torch.testing.assert_close(transformed(images, angle=90.0), expected, rtol=0, atol=SAMPLING_TOLERANCE)


def test_a_shift_moves_every_pixel_and_brings_in_background():
    images = synthetic()
    right, up = 2, 3
    expected = torch.zeros_like(images)
    expected[:, :, :SIZE - up, right:] = images[:, :, up:, :SIZE - right]
    torch.testing.assert_close(transformed(images, shift=(right, -up)), expected, rtol=0, atol=SAMPLING_TOLERANCE)


def test_a_half_pixel_shift_averages_neighbours():
    # Bilinear sampling halfway between two pixels is their mean: the reference computed by hand.
    images = synthetic()
    expected = torch.zeros_like(images)
    expected[..., 1:] = (images[..., 1:] + images[..., :-1]) / 2
    expected[..., 0] = images[..., 0]  # border padding repeats the (zero) edge column
    torch.testing.assert_close(transformed(images, shift=(0.5, 0.0)), expected, rtol=0, atol=SAMPLING_TOLERANCE)


@pytest.mark.parametrize("distortion", [AFFINE, ELASTIC], ids=["affine", "elastic"])
def test_same_seed_same_batch_and_another_seed_differs(distortion):
    images = mnist_batch()
    first, second, other = (Augmenter(distortion)(images, torch.Generator().manual_seed(seed)) for seed in (1, 1, 2))
    assert torch.equal(first, second)
    assert not torch.equal(first, other)
    assert not torch.equal(first, images)


@pytest.mark.parametrize("distortion", [AFFINE, ELASTIC], ids=["affine", "elastic"])
def test_images_keep_their_order_so_labels_still_match(distortion):
    # Image i is flat grey level i: any warp of a flat image (edges repeated) is the same flat
    # image, so the output shows exactly where each input went. Nothing is shuffled or mixed
    # across the batch, and the labels, which augmentation never sees, still describe every image.
    count = 16
    levels = torch.linspace(-1, 1, count)
    images = levels.view(count, 1, 1, 1).expand(count, 1, SIZE, SIZE).contiguous()
    distorted = Augmenter(distortion)(images, torch.Generator().manual_seed(3))
    assert distorted.shape == images.shape and distorted.dtype == images.dtype
    torch.testing.assert_close(distorted, images, rtol=0, atol=SAMPLING_TOLERANCE)


def test_clean_epochs_switch_augmentation_off_at_the_end():
    config = TrainConfig(augment="affine", epochs=5, clean_epochs=2)
    assert [augmenter_for(config, epoch) is not None for epoch in range(1, 6)] == [True, True, True, False, False]


def test_resume_with_augmentation_replays_exactly(tmp_path):
    config = quick_config(epochs=3, train_subset=600, val_size=200, augment="elastic", clean_epochs=1,
                          label_smoothing=0.1)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    whole.mkdir()
    resumed.mkdir()
    fit(config, whole, log=quiet)

    def kill_after_epoch_one(row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(config, resumed, on_epoch_end=kill_after_epoch_one, log=quiet)
    fit(config, resumed, resume=True, log=quiet)
    for name in ("best.safetensors", "last.safetensors"):
        a, b = load_file(str(whole / name)), load_file(str(resumed / name))
        assert all(torch.equal(a[key], b[key]) for key in a), name
    rows = [list(csv.DictReader(open(folder / "metrics.csv"))) for folder in (whole, resumed)]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in rows[0]] == \
        [{k: v for k, v in r.items() if k != "seconds"} for r in rows[1]]


@pytest.mark.parametrize("flags, named", [
    (["--rotation", "200"], "--rotation"),
    (["--rotation", "-1"], "--rotation"),
    (["--scale", "0"], None),  # 0 is allowed: no scaling
    (["--scale", "1"], "--scale"),
    (["--translation", "-2"], "--translation"),
    (["--shear", "75"], "--shear"),
    (["--elastic-alpha", "-3"], "--elastic-alpha"),
    (["--elastic-sigma", "0"], "--elastic-sigma"),
    (["--label-smoothing", "1"], "--label-smoothing"),
])
def test_bad_magnitudes_fail_in_one_line_before_any_run_folder(tmp_path, capsys, flags, named):
    config = TrainConfig(augment="affine")
    values = dict(zip([f.lstrip("-").replace("-", "_") for f in flags[::2]], map(float, flags[1::2])))
    if named is None:
        TrainConfig(**{**config.__dict__, **values}).validate()
        return
    code = main(["train", "--augment", "elastic", *flags, "--project", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and named in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_preview_writes_a_png(tmp_path):
    out = tmp_path / "preview.png"
    assert main(["data", "preview", "--augment", "elastic", "--count", "3", "--draws", "2", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")


def test_smoothing_matches_a_zero_padded_gaussian_convolution():
    fields = torch.rand(6, 2, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    kernel = gaussian_kernel(4.0)
    radius = len(kernel) // 2
    flat = fields.reshape(-1, 1, SIZE, SIZE)
    reference = F.conv2d(F.conv2d(flat, kernel.view(1, 1, -1, 1), padding=(radius, 0)),
                         kernel.view(1, 1, 1, -1), padding=(0, radius)).reshape(fields.shape)
    torch.testing.assert_close(smooth(fields, 4.0), reference, rtol=0, atol=1e-6)
    assert float(kernel.sum()) == pytest.approx(1.0)
