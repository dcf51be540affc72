"""Do SDLM mini-batches move the 1998 network as one-sample updates do?

The paper updates after every sample. ``lenet5.sdlm.SDLM`` steps on a batch's mean gradient
times the batch size, so each sample still gets eta / (mu + h_kk); the only difference is that
the samples of one batch all see the same weights. This trains the same initial network, on
the same images in the same order, with the same curvature estimate, at batch 1 and at larger
batches, for the paper's first two passes (eta = 0.0005), then prints per arm: the training
criterion, the test error, and how far its weights ended from the batch-1 arm's, relative
to how far the batch-1 arm moved from the start.

    .venv/bin/python benchmarks/sdlm_batch.py                        # 10,000 images, batches 1, 32, 128
    .venv/bin/python benchmarks/sdlm_batch.py --images 60000 --passes 2 --batches 1 32
    .venv/bin/python benchmarks/sdlm_batch.py --quick                # seconds-long smoke test
"""

from __future__ import annotations

import argparse
import time

import torch

from lenet5.config import ModelConfig
from lenet5.data.mnist import load_split
from lenet5.inference import evaluate
from lenet5.losses import MAPLoss
from lenet5.model import build_model, input_size
from lenet5.preprocess import Normalization
from lenet5.sdlm import SDLM, curvature_sample

PAPER_FIRST_ETA = 0.0005
QUICK_IMAGES, QUICK_TEST = 256, 500


def train_arm(batch_size: int, initial: dict, images: torch.Tensor, labels: torch.Tensor,
              normalize: Normalization, passes: int, seed: int) -> tuple[torch.nn.Module, float, float]:
    """Train a copy of ``initial``; returns (model, mean criterion over the last pass, seconds)."""
    config = ModelConfig(arch="lenet5-1998")
    model = build_model(config)
    model.load_state_dict(initial)
    loss_fn = MAPLoss()
    optimizer = SDLM(model.parameters(), lr=PAPER_FIRST_ETA, samples_per_step=batch_size)
    inputs = normalize(images)
    started = time.perf_counter()
    for epoch in range(passes):
        generator = torch.Generator().manual_seed(seed * 1000 + epoch)
        sample = curvature_sample(len(images), generator)
        optimizer.estimate_curvature(model, inputs[sample], labels[sample], loss_fn)
        order = torch.randperm(len(images), generator=generator)
        total = 0.0
        for index in order.split(batch_size):
            loss = loss_fn(model(inputs[index]), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
    return model, total / len(images), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000, help="training images (the first N)")
    parser.add_argument("--passes", type=int, default=2, help="passes at eta = 0.0005 (the paper's first two)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32, 128])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fan-in-power", type=float, default=None,
                        help="initialise with +-2.4 / fan-in ** P (1: the paper's text taken literally)")
    parser.add_argument("--quick", action="store_true", help="a few hundred images: proves the script runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train_images, train_labels = load_split("train")
    test_images, test_labels = load_split("test")
    count = QUICK_IMAGES if args.quick else args.images
    if args.quick:
        test_images, test_labels = test_images[:QUICK_TEST], test_labels[:QUICK_TEST]
    images, labels = train_images[:count], train_labels[:count]
    config = ModelConfig(arch="lenet5-1998")
    normalize = Normalization.fit("lecun1998", images, input_size(config))
    torch.manual_seed(args.seed)
    initial_model = build_model(config)
    if args.fan_in_power is not None:
        initial_model.reset_parameters(args.fan_in_power)
    initial = {k: v.clone() for k, v in initial_model.state_dict().items()}
    start = torch.cat([p.detach().flatten() for p in initial_model.parameters()])

    print(f"{count:,} images, {args.passes} passes at eta {PAPER_FIRST_ETA}, {args.threads} thread(s), "
          f"seed {args.seed}\n")
    print("| batch | train criterion (last pass) | test error | weight gap to batch 1 | img/s |")
    print("|------:|----------------------------:|-----------:|----------------------:|------:|")
    reference = None
    for batch_size in args.batches:
        model, criterion, seconds = train_arm(batch_size, initial, images, labels, normalize, args.passes, args.seed)
        _, accuracy = evaluate(model, test_images, test_labels, normalize)
        weights = torch.cat([p.detach().flatten() for p in model.parameters()])
        if reference is None:
            reference = weights
        gap = float((weights - reference).norm() / (reference - start).norm())
        print(f"| {batch_size} | {criterion:.4f} | {1 - accuracy:.2%} | {gap:.1%} | "
              f"{count * args.passes / seconds:,.0f} |")


if __name__ == "__main__":
    main()
