"""The epoch loop's cost: ``lenet5.train.train_one_epoch`` against the loop it replaced, and with augmentation.

The earlier loop normalised every batch from uint8, called ``loss.item()`` and formatted a
progress-bar postfix on every batch. The current one normalises the training split once and
keeps its running sums on the device. Both train the same LeNet-5 (the lab recipe) with the
same seeds, so their weights must come out identical; this script checks that. It also times
the current loop with ``--augment affine`` and ``elastic`` (default magnitudes), whose cost
the issue caps at 1.3x an undistorted epoch. Epochs alternate between the arms so a machine
that gets busier hits all alike, and each arm reports its best epoch (the least disturbed).

    .venv/bin/python benchmarks/train_loop.py [--threads 2] [--images 20000] [--repeats 3]
    .venv/bin/python benchmarks/train_loop.py --quick
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from lenet5.config import TrainConfig
from lenet5.data.augment import augmenter_for
from lenet5.data.mnist import load_splits
from lenet5.model import LeNet5
from lenet5.preprocess import Normalization
from lenet5.train import batch_indices, make_optimizer, make_scheduler, train_one_epoch

SEED = 0
QUICK_IMAGES = 1000


def previous_epoch(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, normalize: Normalization,
                   optimizer: torch.optim.Optimizer, scheduler: Any, config: TrainConfig,
                   generator: torch.Generator, progress: Any) -> tuple[float, float]:
    """The loop as it was before: per-batch normalisation, ``.item()`` and postfix."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    total_loss, correct, seen = 0.0, 0, 0
    batches = list(batch_indices(len(images), config.batch_size, generator))
    for step, index in enumerate(batches, start=1):
        inputs, targets = normalize(images[index]), labels[index]
        logits = model(inputs)
        loss = loss_fn(logits, targets)
        if not torch.isfinite(loss):
            raise RuntimeError("non-finite loss")
        (loss / config.accumulate).backward()
        if step % config.accumulate == 0 or step == len(batches):
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
        total_loss += loss.item() * len(index)
        correct += int((logits.argmax(1) == targets).sum())
        seen += len(index)
        progress.update(1)
        progress.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}", refresh=False)
    return total_loss / seen, correct / seen


def setup(config: TrainConfig, updates: int) -> tuple[nn.Module, torch.optim.Optimizer, Any]:
    torch.manual_seed(SEED)
    model = LeNet5.from_config(config.model)
    optimizer = make_optimizer(model, config)
    return model, optimizer, make_scheduler(optimizer, config, updates)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=20000, help="training images per epoch")
    parser.add_argument("--repeats", type=int, default=3, help="epochs timed per loop")
    parser.add_argument("--quick", action="store_true", help=f"smoke test: {QUICK_IMAGES} images, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.repeats = QUICK_IMAGES, 1
    torch.set_num_threads(args.threads)
    config = TrainConfig()  # the lab recipe
    splits = load_splits(None, config.val_size, args.images)
    normalize = Normalization.fit(config.normalization, splits.train_images)
    updates = -(-len(splits.train_images) // config.batch_size) * (args.repeats + 1)
    arms = {name: setup(config, updates) for name in ("previous", "current", "affine", "elastic")}
    best = {name: float("inf") for name in arms}
    inputs = None
    for repeat in range(args.repeats):
        for name, (model, optimizer, scheduler) in arms.items():
            generator = torch.Generator().manual_seed(SEED * 1_000_003 + repeat)
            started = time.perf_counter()
            with tqdm(disable=True) as bar:  # piped, as in benchmarks and compare workers
                if name == "previous":
                    previous_epoch(model, splits.train_images, splits.train_labels, normalize, optimizer,
                                   scheduler, config, generator, bar)
                else:
                    if inputs is None:
                        inputs = normalize(splits.train_images)  # fit does this once per run
                    augment = None if name == "current" else augmenter_for(replace(config, augment=name), 1)
                    train_one_epoch(model, inputs, splits.train_labels, augment, optimizer, scheduler, config,
                                    generator, bar)
            best[name] = min(best[name], time.perf_counter() - started)
    weights = [arms[name][0].state_dict() for name in ("previous", "current")]
    identical = all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
    count = len(splits.train_images)
    print(f"train_loop: torch {torch.__version__}, {args.threads} thread(s), {count:,} images x {args.repeats} "
          f"epochs per loop, lab recipe (batch {config.batch_size})\n")
    print("| loop              | best epoch s | img/s  | time vs current |")
    print("|-------------------|--------------|--------|-----------------|")
    for name, seconds in best.items():
        label = name if name in ("previous", "current") else f"current + {name}"
        print(f"| {label:<17} | {seconds:12.2f} | {count / seconds:6,.0f} | {seconds / best['current']:14.2f}x |")
    print(f"\ncurrent / previous throughput: {best['previous'] / best['current']:.2f}x; "
          f"weights bit-identical: {identical}")
    if not identical:
        raise SystemExit("the loops disagree: the current one changed the numerics")


if __name__ == "__main__":
    main()
