"""Training speed and accuracy: lenet5's recipes against the usual per-sample DataLoader recipe.

Every arm trains LeNet-5 (same topology and layer sizes) on MNIST with the same thread count,
on the CPU, and the clock counts training only. After every epoch the weights are judged on
the 10,000 test images (off the clock), which gives the epoch and the seconds at which test
accuracy first reaches 99%.

* lab, speedrun, best: ``lenet5.train.fit`` with that recipe (``lenet5 train --list-recipes``),
  run for the recipe's whole schedule, since one-cycle peaks at its end. An epoch's seconds
  are fit's own: they include fit's validation pass where the recipe holds one out (lab: 5,000
  images, a few percent of an epoch), but not checkpoint writing.
* reference: the way most tutorials write it. A Dataset turns every sample into a PIL image
  and runs per-sample ToTensor + Normalize((0.5,), (0.5,)) transforms (re-written here with
  numpy/torch, since torchvision is not a dependency), DataLoader(batch_size=64,
  shuffle=True), SGD(lr=0.01, momentum=0.9), CrossEntropyLoss, all 60,000 training images.
  It has no schedule, so it stops at the first epoch that reaches 99% (or ``--max-epochs``).

Both judges agree: ``lenet5.inference.evaluate`` on the test images with the [-1, 1]
normalisation, which is what the reference transforms compute. Ratios compare each recipe
with the reference measured in the same run. ``--seeds N`` repeats every arm with N seeds
(0..N-1 unless ``--first-seed`` says otherwise) and reports mean +- std and the minimum.

    .venv/bin/python benchmarks/train_speed.py                          # all four arms, 1 seed
    .venv/bin/python benchmarks/train_speed.py --arms speedrun --seeds 5
    .venv/bin/python benchmarks/train_speed.py --epochs-table           # plus one row per epoch
    .venv/bin/python benchmarks/train_speed.py --quick                  # seconds-long smoke test
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
from lenet5.recipes import recipe_config
from lenet5.train import fit
from lenet5.weights import LAST, load_model

TARGET_ACCURACY = 0.99
RECIPE_ARMS = ("lab", "speedrun", "best")
REFERENCE = "reference"
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
    seed: int = 0

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
    arm = Arm(REFERENCE, seed=seed)
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


# --- the recipe arms ---------------------------------------------------------------------

def run_recipe(name: str, config: TrainConfig, train_count: int, test: TestSet) -> Arm:
    """Train ``config`` for its whole schedule; after each epoch, judge the weights fit saved as last."""
    arm = Arm(name, seed=config.seed)
    with tempfile.TemporaryDirectory(prefix="train_speed_") as folder:
        run_dir = Path(folder)

        def on_epoch_end(row: dict[str, float]) -> None:
            loaded = load_model(run_dir / LAST)
            arm.epochs.append(Epoch(int(row["epoch"]), row["seconds"], train_count, row["train_loss"],
                                    test.accuracy(loaded.model, loaded.normalization)))
            _report_epoch(arm)

        fit(config, run_dir, on_epoch_end=on_epoch_end, log=lambda _: None)
    return arm


def recipe_arm_config(name: str, args: argparse.Namespace, seed: int, full_count: int) -> tuple[TrainConfig, int]:
    """The recipe's config for this run, and how many images each of its epochs trains on."""
    overrides: dict = {"threads": args.threads, "device": "cpu", "seed": seed}
    if args.quick:
        overrides.update(epochs=1, train_subset=QUICK_TRAIN_IMAGES)
    config = recipe_config(name, overrides)
    if args.quick and config.val_size:
        config.val_size = QUICK_VAL_IMAGES  # fit's validation pass would otherwise dwarf the epoch
    # fit holds val_size images out of the training split, then keeps at most train_subset.
    return config, min(full_count - config.val_size, config.train_subset or full_count)


def _warm_up(batch_sizes: list[int]) -> None:
    """A few throwaway steps at every batch size, so one-time kernel and thread-pool set-up
    is not charged to whichever arm happens to run first."""
    model = LeNet5()
    optimizer = torch.optim.SGD(model.parameters(), lr=REFERENCE_LR)
    for batch_size in sorted(set(batch_sizes)):
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
    print(f"  {arm.name:<9} seed {arm.seed} epoch {epoch.number:>2}: {epoch.seconds:6.1f} s, "
          f"{epoch.images_per_second:7,.0f} img/s, test acc {epoch.test_accuracy:.4f}", flush=True)


def _mean_std(values: list[float], digits: int, thousands: bool = False) -> str:
    """``mean`` for one value, ``mean +- std`` (sample std) for several."""
    spec = f",.{digits}f" if thousands else f".{digits}f"
    mean = float(np.mean(values))
    if len(values) < 2:
        return format(mean, spec)
    return f"{format(mean, spec)} +- {format(float(np.std(values, ddof=1)), spec)}"


def group(arms: list[Arm]) -> dict[str, list[Arm]]:
    """Arms by name (one per seed), in the order they ran."""
    grouped: dict[str, list[Arm]] = {}
    for arm in arms:
        grouped.setdefault(arm.name, []).append(arm)
    return grouped


def summary_table(arms: list[Arm]) -> str:
    """One row per arm: mean +- std over its seeds, and the worst seed's final accuracy."""
    target = f"{TARGET_ACCURACY:.0%}"
    header = ("arm", "seeds", "epochs run", "mean img/s", f"{target} at epoch", f"seconds to {target}",
              "final test acc", "min final acc")
    rows = [header]
    for name, runs in group(arms).items():
        reached = [arm for arm in runs if arm.reached_epoch is not None]
        epochs_run = sorted({len(arm.epochs) for arm in runs})
        if len(reached) == len(runs):
            at_epoch = _mean_std([arm.reached_epoch for arm in runs], 1 if len(runs) > 1 else 0)
            seconds = _mean_std([arm.seconds_to_target for arm in runs], 1)
        elif reached:
            at_epoch, seconds = f"{len(reached)} of {len(runs)} seeds", "-"
        else:
            count = epochs_run[-1]
            at_epoch, seconds = f"not reached in {count} epoch{'s' * (count > 1)}", "-"
        finals = [arm.epochs[-1].test_accuracy for arm in runs]
        rows.append((name, str(len(runs)), "/".join(map(str, epochs_run)),
                     _mean_std([arm.mean_images_per_second for arm in runs], 0, thousands=True),
                     at_epoch, seconds, _mean_std(finals, 4), f"{min(finals):.4f}"))
    return _format(rows)


def epochs_table(arms: list[Arm]) -> str:
    rows = [("arm", "seed", "epoch", "train s", "images", "img/s", "train loss", "test acc", "cumulative s")]
    for arm in arms:
        cumulative = 0.0
        for e in arm.epochs:
            cumulative += e.seconds
            rows.append((arm.name, str(arm.seed), str(e.number), f"{e.seconds:.1f}", f"{e.images:,}",
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
    """Per recipe, its throughput and time to the target as multiples of the reference's (means over seeds)."""
    grouped = group(arms)
    if REFERENCE not in grouped:
        return []

    def mean_rate(runs: list[Arm]) -> float:
        return float(np.mean([arm.mean_images_per_second for arm in runs]))

    def mean_time(runs: list[Arm]) -> float | None:
        times = [arm.seconds_to_target for arm in runs]
        return float(np.mean(times)) if all(t is not None for t in times) else None

    reference = grouped[REFERENCE]
    lines = []
    for name, runs in grouped.items():
        if name == REFERENCE:
            continue
        line = f"{name}: throughput {mean_rate(runs) / mean_rate(reference):.2f}x the reference"
        ours, theirs = mean_time(runs), mean_time(reference)
        if ours and theirs:
            line += f"; {theirs / ours:.1f}x faster to {TARGET_ACCURACY:.0%}"
        lines.append(line)
    return lines


# --- command line ------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads for every arm (default 2)")
    parser.add_argument("--max-epochs", type=int, default=TrainConfig().epochs,
                        help="epoch cap for the reference, which stops once it reaches 99%% test accuracy")
    parser.add_argument("--arms", nargs="+", choices=(*RECIPE_ARMS, REFERENCE), default=[*RECIPE_ARMS, REFERENCE],
                        help="which arms to run, in this order (default: all)")
    parser.add_argument("--seeds", type=int, default=1, help="repeat every arm with N seeds (default 1)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds run from this one up (default 0), so one study can be split across processes")
    parser.add_argument("--epochs-table", action="store_true", help="also print one row per epoch")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: 1 epoch on {QUICK_TRAIN_IMAGES:,} training images, "
                             f"{QUICK_TEST_IMAGES:,} test images")
    args = parser.parse_args(argv)
    for flag, value in (("--threads", args.threads), ("--max-epochs", args.max_epochs), ("--seeds", args.seeds)):
        if value < 1:
            parser.error(f"{flag} {value}: must be at least 1")
    if args.quick:
        args.max_epochs = 1
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    train_images, train_labels = load_split("train")
    test_images, test_labels = load_split("test")
    full_count = len(train_images)
    if args.quick:
        train_images, train_labels = train_images[:QUICK_TRAIN_IMAGES], train_labels[:QUICK_TRAIN_IMAGES]
        test_images, test_labels = test_images[:QUICK_TEST_IMAGES], test_labels[:QUICK_TEST_IMAGES]
    test = TestSet(test_images, test_labels)
    print(f"train_speed: torch {torch.__version__}, {args.threads} thread(s), {platform.machine()}, "
          f"{args.seeds} seed(s), target {TARGET_ACCURACY:.0%} on {len(test_images):,} test images"
          f"{' (quick: a smoke test, not a measurement)' if args.quick else ''}", flush=True)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    configs = {(name, seed): recipe_arm_config(name, args, seed, full_count)
               for name in args.arms if name != REFERENCE for seed in seeds}
    _warm_up([REFERENCE_BATCH_SIZE, *(config.batch_size for config, _ in configs.values())])
    arms = []
    # Seeds outermost, so a machine that gets busier half-way hits every arm alike.
    for seed in seeds:
        for name in args.arms:
            if name == REFERENCE:
                arms.append(run_reference(train_images, train_labels, test, args.max_epochs, seed))
            else:
                arms.append(run_recipe(name, *configs[name, seed], test))
    print()
    print(summary_table(arms))
    for line in speedups(arms):
        print(line)
    print("Seconds count training only (recipes: fit's own, with any validation pass); "
          "the per-epoch test evaluation is off the clock.")
    if args.epochs_table:
        print()
        print(epochs_table(arms))


if __name__ == "__main__":
    main()
