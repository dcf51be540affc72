"""Training speed: lenet5's in-memory pipeline against the usual per-sample DataLoader recipe.

Two arms train the same LeNet-5 (tanh, max pool) on MNIST with the same thread count, on
the CPU, and measure test accuracy after every epoch until it reaches 99% or the epoch cap:

* ours: ``lenet5.train.fit`` with the default ``TrainConfig`` (AdamW, one-cycle, batch 128,
  55,000 training images indexed out of one uint8 tensor, 5,000 held out for validation).
  ``epochs`` is set to ``--max-epochs`` (15 is the default anyway), so the one-cycle schedule
  spans the cap.
* reference: the way most tutorials write it. A Dataset turns every sample into a PIL image
  and runs per-sample ToTensor + Normalize((0.5,), (0.5,)) transforms (re-written here with
  numpy/torch, since torchvision is not a dependency), DataLoader(batch_size=64,
  shuffle=True), SGD(lr=0.01, momentum=0.9), CrossEntropyLoss, all 60,000 training images.

The clock counts training only. The per-epoch test evaluation is outside it, and both arms
use the same judge (``lenet5.train.evaluate`` on the 10,000 test images with the [-1, 1]
normalisation, which is what the reference transforms compute). Our arm's epoch time is
fit's own ``seconds``: it includes fit's 5,000-image validation pass (a few percent of an
epoch), but not checkpoint writing.

    .venv/bin/python benchmarks/train_speed.py                  # both arms, ~10 min on 2 cores
    .venv/bin/python benchmarks/train_speed.py --epochs-table   # plus one row per epoch
    .venv/bin/python benchmarks/train_speed.py --quick          # seconds-long smoke test
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lenet5.config import ModelConfig, TrainConfig
from lenet5.data.mnist import load_split
from lenet5.inference import evaluate
from lenet5.model import IMAGE_SIZE, LeNet5
from lenet5.preprocess import Normalization
from lenet5.train import fit
from lenet5.weights import LAST, load_model

TARGET_ACCURACY = 0.99
# The reference recipe, as pytorch/examples-style MNIST tutorials write it.
REFERENCE_BATCH_SIZE = 64
REFERENCE_LR = 0.01
REFERENCE_MOMENTUM = 0.9
REFERENCE_MEAN, REFERENCE_STD = 0.5, 0.5  # Normalize((0.5,), (0.5,)): pixels to [-1, 1]
# --quick: enough to run every code path once, in seconds.
QUICK_TRAIN_IMAGES = 2000
QUICK_TEST_IMAGES = 1000
QUICK_VAL_IMAGES = 500  # fit's validation pass would otherwise dwarf a 2,000-image epoch


@dataclass
class Epoch:
    """One training epoch of one arm."""

    number: int
    seconds: float  # training time only
    images: int
    train_loss: float
    test_accuracy: float

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds


@dataclass
class Arm:
    """Everything measured for one way of training."""

    name: str
    epochs: list[Epoch] = field(default_factory=list)

    @property
    def reached_epoch(self) -> int | None:
        """The first epoch whose test accuracy met the target, if any."""
        return next((e.number for e in self.epochs if e.test_accuracy >= TARGET_ACCURACY), None)

    @property
    def seconds_to_target(self) -> float | None:
        reached = self.reached_epoch
        if reached is None:
            return None
        return sum(e.seconds for e in self.epochs if e.number <= reached)

    @property
    def mean_images_per_second(self) -> float:
        """Total images over total training time, so slow epochs weigh by their length."""
        return sum(e.images for e in self.epochs) / sum(e.seconds for e in self.epochs)


@dataclass(frozen=True)
class TestSet:
    """The judge both arms share: uint8 test images, labels and the [-1, 1] normalisation."""

    images: torch.Tensor
    labels: torch.Tensor

    def accuracy(self, model: nn.Module, normalize: Normalization) -> float:
        return evaluate(model, self.images, self.labels, normalize)[1]


# --- the reference arm -------------------------------------------------------------------

class ToTensor:
    """torchvision's ToTensor for a mode-L PIL image: (1, H, W) float32 in [0, 1]."""

    def __call__(self, image) -> torch.Tensor:
        pixels = torch.from_numpy(np.array(image, np.uint8, copy=True))
        return pixels.unsqueeze(0).to(torch.float32).div(255)


class Normalize:
    """torchvision's Normalize for one channel: (x - mean) / std."""

    def __init__(self, mean: float, std: float) -> None:
        self.mean, self.std = mean, std

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        return (tensor - self.mean) / self.std


class Compose:
    def __init__(self, transforms: list[Callable]) -> None:
        self.transforms = transforms

    def __call__(self, value):
        for transform in self.transforms:
            value = transform(value)
        return value


class PerSampleMnist(torch.utils.data.Dataset):
    """What ``torchvision.datasets.MNIST.__getitem__`` does: PIL image, then the transforms."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        image = Image.fromarray(self.images[index].numpy(), mode="L")
        return self.transform(image), int(self.labels[index])


def run_reference(train_images: torch.Tensor, train_labels: torch.Tensor, test: TestSet,
                  max_epochs: int, seed: int) -> Arm:
    """Train the tutorial way, stopping at the first epoch that reaches the target."""
    transform = Compose([ToTensor(), Normalize(REFERENCE_MEAN, REFERENCE_STD)])
    dataset = PerSampleMnist(train_images, train_labels, transform)
    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=REFERENCE_BATCH_SIZE, shuffle=True)
    model = LeNet5.from_config(ModelConfig(activation="tanh"))
    optimizer = torch.optim.SGD(model.parameters(), lr=REFERENCE_LR, momentum=REFERENCE_MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()
    judge = Normalization("[-1,1]", REFERENCE_MEAN, REFERENCE_STD)
    arm = Arm("reference")
    for number in range(1, max_epochs + 1):
        started = time.perf_counter()
        model.train()
        total_loss = 0.0
        for inputs, targets in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(inputs), targets)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(targets)
        seconds = time.perf_counter() - started  # the test pass below is off the clock
        arm.epochs.append(Epoch(number, seconds, len(dataset), total_loss / len(dataset),
                                test.accuracy(model, judge)))
        _report_epoch(arm)
        if arm.reached_epoch is not None:
            break
    return arm


# --- our arm -----------------------------------------------------------------------------

class _TargetReached(Exception):
    """Raised from fit's epoch callback to end the run once the target is met."""


def run_ours(config: TrainConfig, train_count: int, test: TestSet) -> Arm:
    """Train with ``fit`` on ``train_count`` images; after each epoch, judge the weights fit saved as last."""
    arm = Arm("ours")
    with tempfile.TemporaryDirectory(prefix="train_speed_") as folder:
        run_dir = Path(folder)

        def on_epoch_end(row: dict[str, float]) -> None:
            loaded = load_model(run_dir / LAST)
            arm.epochs.append(Epoch(int(row["epoch"]), row["seconds"], train_count, row["train_loss"],
                                    test.accuracy(loaded.model, loaded.normalization)))
            _report_epoch(arm)
            if arm.reached_epoch is not None:
                raise _TargetReached

        try:
            fit(config, run_dir, on_epoch_end=on_epoch_end, log=lambda _: None)
        except _TargetReached:
            pass
    return arm


def _warm_up() -> None:
    """A few throwaway steps at both batch sizes, so one-time kernel and thread-pool set-up
    is not charged to whichever arm happens to run first."""
    model = LeNet5()
    optimizer = torch.optim.SGD(model.parameters(), lr=REFERENCE_LR)
    for batch_size in (REFERENCE_BATCH_SIZE, TrainConfig().batch_size):
        for _ in range(3):
            images = torch.randn(batch_size, 1, IMAGE_SIZE, IMAGE_SIZE)
            labels = torch.randint(0, ModelConfig().num_classes, (batch_size,))
            nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
            optimizer.zero_grad()


# --- reporting ---------------------------------------------------------------------------

def _report_epoch(arm: Arm) -> None:
    """A progress line per epoch, so a long run shows it is alive."""
    epoch = arm.epochs[-1]
    print(f"  {arm.name:<9} epoch {epoch.number:>2}: {epoch.seconds:6.1f} s, {epoch.images_per_second:7,.0f} img/s, "
          f"test acc {epoch.test_accuracy:.4f}", flush=True)


def summary_table(arms: list[Arm]) -> str:
    header = ("arm", "epochs run", "mean img/s", f"{TARGET_ACCURACY:.0%} at epoch", f"seconds to {TARGET_ACCURACY:.0%}",
              "final test acc")
    rows = [header]
    for arm in arms:
        reached = arm.reached_epoch
        rows.append((arm.name, str(len(arm.epochs)), f"{arm.mean_images_per_second:,.0f}",
                     str(reached) if reached else f"not reached in {len(arm.epochs)} epoch{'s' * (len(arm.epochs) > 1)}",
                     f"{arm.seconds_to_target:.1f}" if reached else "-",
                     f"{arm.epochs[-1].test_accuracy:.4f}"))
    return _format(rows)


def epochs_table(arms: list[Arm]) -> str:
    rows = [("arm", "epoch", "train s", "images", "img/s", "train loss", "test acc", "cumulative s")]
    for arm in arms:
        cumulative = 0.0
        for e in arm.epochs:
            cumulative += e.seconds
            rows.append((arm.name, str(e.number), f"{e.seconds:.1f}", f"{e.images:,}",
                         f"{e.images_per_second:,.0f}", f"{e.train_loss:.4f}", f"{e.test_accuracy:.4f}",
                         f"{cumulative:.1f}"))
    return _format(rows)


def _format(rows: list[tuple[str, ...]]) -> str:
    """A Markdown table, columns padded so it also reads well in a terminal."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def speedups(arms: list[Arm]) -> list[str]:
    """One line per ratio that both arms allow: throughput, and time to the target."""
    by_name = {arm.name: arm for arm in arms}
    if set(by_name) != {"ours", "reference"}:
        return []
    ours, reference = by_name["ours"], by_name["reference"]
    lines = [f"throughput: ours {ours.mean_images_per_second / reference.mean_images_per_second:.1f}x the reference"]
    if ours.seconds_to_target and reference.seconds_to_target:
        lines.append(f"time to {TARGET_ACCURACY:.0%}: ours {reference.seconds_to_target / ours.seconds_to_target:.1f}x "
                     "faster than the reference")
    return lines


# --- command line ------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads for both arms (default 2)")
    parser.add_argument("--max-epochs", type=int, default=TrainConfig().epochs,
                        help="epoch cap for each arm; an arm stops earlier once it reaches 99%% test accuracy")
    parser.add_argument("--arms", choices=("both", "ours", "reference"), default="both")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs-table", action="store_true", help="also print one row per epoch")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: 1 epoch on {QUICK_TRAIN_IMAGES:,} training images, "
                             f"{QUICK_TEST_IMAGES:,} test images")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads {args.threads}: must be at least 1")
    if args.max_epochs < 1:
        parser.error(f"--max-epochs {args.max_epochs}: must be at least 1")
    if args.quick:
        args.max_epochs = 1
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    train_images, train_labels = load_split("train")
    test_images, test_labels = load_split("test")
    full_count = len(train_images)
    subset = QUICK_TRAIN_IMAGES if args.quick else None
    if args.quick:
        train_images, train_labels = train_images[:subset], train_labels[:subset]
        test_images, test_labels = test_images[:QUICK_TEST_IMAGES], test_labels[:QUICK_TEST_IMAGES]
    test = TestSet(test_images, test_labels)
    config = TrainConfig(epochs=args.max_epochs, threads=args.threads, device="cpu", seed=args.seed,
                         train_subset=subset)
    if args.quick:
        config.val_size = QUICK_VAL_IMAGES
    # fit holds val_size images out of the training split, then keeps at most train_subset.
    ours_count = min(full_count - config.val_size, subset or full_count)
    print(f"train_speed: torch {torch.__version__}, {args.threads} thread(s), {platform.machine()}, "
          f"cap {args.max_epochs} epoch(s), target {TARGET_ACCURACY:.0%} on {len(test_images):,} test images"
          f"{' (quick: a smoke test, not a measurement)' if args.quick else ''}", flush=True)
    _warm_up()
    arms = []
    if args.arms in ("both", "ours"):
        arms.append(run_ours(config, ours_count, test))
    if args.arms in ("both", "reference"):
        arms.append(run_reference(train_images, train_labels, test, args.max_epochs, args.seed))
    print()
    print(summary_table(arms))
    for line in speedups(arms):
        print(line)
    print("Seconds count training only: the per-epoch test evaluation is off the clock.")
    if args.arms != "reference":
        print(f"Our arm's seconds are fit's own and include its {config.val_size:,}-image validation pass.")
    if args.epochs_table:
        print()
        print(epochs_table(arms))


if __name__ == "__main__":
    main()
