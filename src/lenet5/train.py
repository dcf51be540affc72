"""The training loop, top to bottom: optimiser, schedule, epochs, early stopping, test.

Everything the lab teaches is a field of :class:`TrainConfig`; nothing here reads flags.
Each epoch's randomness (shuffle order, dropout) is seeded from (seed, epoch), so a run
resumed from its saved state replays exactly what an uninterrupted run would have done.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import torch
from torch import nn

from .checkpoint import STATE, load_state, save_state
from .config import TrainConfig
from .data.augment import Augmenter, augmenter_for
from .data.mnist import Splits, load_splits
from .distributed import SINGLE, Shard, local_device, setup
from .errors import NonFiniteLossError
from .faults import fault_point
from .files import atomic_write_text, remove_partial_writes, write_csv
from .inference import resolve_device
from .losses import loss_function
from .model import build_model, count_parameters, describe_model, input_size
from .plots import plot_curves
from .preprocess import Normalization
from .sdlm import SDLM, curvature_sample
from .verdict import curve_verdict
from .weights import BEST, LAST, save_weights

EPOCH_SEED_STRIDE = 1_000_003  # a prime: (seed, epoch) pairs never collide for epoch < stride


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    lr = config.effective_lr
    if config.optimizer == "sdlm":
        return SDLM(model.parameters(), lr=lr, mu=config.sdlm_mu, samples_per_step=config.batch_size * config.accumulate)
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=config.momentum,
                               weight_decay=config.weight_decay, nesterov=config.nesterov)
    adam = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return adam(model.parameters(), lr=lr, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig,
                   updates_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Every schedule steps once per optimiser update, so all share one call site."""
    total = config.epochs * updates_per_epoch
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, config.step_size * updates_per_epoch, config.gamma)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total)
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, config.effective_lr, total_steps=total)
    if config.schedule == "paper1998":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda update: paper1998_factor(update // updates_per_epoch))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


# LeCun et al. 1998: eta = 0.0005 for 2 passes, 0.0002 for 3, 0.0001 for 3, 0.00005 for 4,
# then 0.00001; as (passes, factor of the first eta) so that --lr sets the first value.
PAPER1998_STEPS = ((2, 1.0), (3, 0.4), (3, 0.2), (4, 0.1))
PAPER1998_FINAL = 0.02


def paper1998_factor(epoch_index: int) -> float:
    """The paper's learning-rate multiplier for the pass ``epoch_index`` (0-based)."""
    for passes, factor in PAPER1998_STEPS:
        if epoch_index < passes:
            return factor
        epoch_index -= passes
    return PAPER1998_FINAL


def batch_indices(count: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    order = torch.randperm(count, generator=generator)
    return iter(order.split(batch_size))


def train_one_epoch(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, augment: Augmenter | None,
                    optimizer: torch.optim.Optimizer, scheduler: Any, config: TrainConfig,
                    generator: torch.Generator, progress: Any, shard: Shard = SINGLE) -> tuple[float, float]:
    """One pass over the (already normalised) training inputs; returns (mean loss, accuracy).

    ``augment``, if given, distorts each batch with draws from ``generator`` after the
    shuffle, so the epoch's seed fixes both. Under torchrun every rank draws the same global
    batch (and its distortions) and trains on its own slice of it.
    """
    model.train()  # dropout active, batchnorm uses and updates batch statistics
    loss_fn = loss_function(config.model, config.label_smoothing)
    # Running sums stay tensors: a per-batch .item() would wait for the device every step.
    total_loss = torch.zeros((), dtype=torch.float64, device=inputs.device)
    correct = torch.zeros((), dtype=torch.int64, device=inputs.device)
    seen = 0
    batches = list(batch_indices(len(inputs), config.batch_size, generator))
    for step, index in enumerate(batches, start=1):
        batch, targets = inputs[index], labels[index]
        if augment is not None:
            batch = augment(batch, generator)
        batch, targets = shard.local(batch), shard.local(targets)
        logits = model(batch)
        # A rank can hold no image of a short last batch; it still joins the gradient all-reduce.
        local_loss = loss_fn(logits, targets) if len(targets) else logits.sum() * 0.0
        if not shard.all_finite(local_loss):  # every rank stops at the same batch, none waits forever
            raise NonFiniteLossError(f"loss became {local_loss.item()} at batch {step}")
        loss = shard.scale_loss(local_loss, len(targets), len(index))
        # Accumulating k scaled gradients equals one step on a k-times-larger batch.
        (loss / config.accumulate).backward()
        if step % config.accumulate == 0 or step == len(batches):
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
        total_loss += local_loss.detach().double() * len(targets)
        correct += (logits.argmax(1) == targets).sum()
        seen += len(index)
        progress.update(1)
        fault_point("mid-epoch")
        if not progress.disable:  # formatting the postfix costs a sync and a string per batch
            progress.set_postfix(loss=f"{float(total_loss) / seen * shard.world_size:.4f}",
                                 acc=f"{int(correct) / seen * shard.world_size:.4f}", refresh=False)
    total_loss, correct = shard.sum(float(total_loss), int(correct))  # over ranks, once per epoch
    return total_loss / seen, correct / seen


@dataclass
class EarlyStopping:
    """Stop when validation loss has not improved by ``min_delta`` for ``patience`` epochs."""

    patience: int
    min_delta: float
    best_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0

    def update(self, val_loss: float, epoch: int) -> bool:
        """Record an epoch's validation loss; return True if it is the new best."""
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.bad_epochs = val_loss, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience


EpochCallback = Callable[[dict[str, float]], None]


def fit(config: TrainConfig, run_dir: Path, *, resume: bool = False,
        on_epoch_end: EpochCallback | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train LeNet-5 as ``config`` says, writing everything into ``run_dir``.

    Args:
        config: the whole run's settings.
        run_dir: an existing folder; it receives config.json, metrics.csv, curves.png,
            best/last weights, state.pt and summary.json.
        resume: continue from ``run_dir/state.pt`` instead of starting afresh.
        on_epoch_end: called with each epoch's metrics row (compare uses it to report).
        log: where progress lines go.

    Returns:
        The summary, also written to ``summary.json``.
    """
    config.validate()
    shard = setup()  # one of torchrun's processes, or SINGLE
    shard.check_batch_size(config.batch_size)
    if shard.is_main:
        remove_partial_writes(run_dir)  # temp files of a write that a crash interrupted
    device = local_device(resolve_device(config.device), shard)
    log = log if shard.is_main else _silent
    if config.threads:
        torch.set_num_threads(config.threads)
    splits = _splits_on(load_splits(config.data_dir, config.val_size, config.train_subset), device)
    normalize = Normalization.fit(config.normalization, splits.train_images, input_size(config.model))
    train_inputs = normalize(splits.train_images)  # once, not per batch: float32 (N, 1, H, W)
    torch.manual_seed(config.seed)
    model = build_model(config.model).to(device)
    trained = shard.wrap(model, device)  # all-reduces gradients under torchrun
    updates_per_epoch = math.ceil(math.ceil(len(splits.train_images) / config.batch_size) / config.accumulate)
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config, updates_per_epoch)
    stopper = EarlyStopping(config.patience, config.min_delta)
    history: list[dict[str, float]] = []
    start_epoch, stopped = 1, False
    if resume:
        state = shard.share(lambda: load_state(run_dir / STATE))  # rank 0's machine holds the run
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        stopper = EarlyStopping(**state["early_stopping"])
        history, stopped = state["history"], state["stopped"]
        start_epoch = state["epoch"] + 1
        log(f"resuming {run_dir} after epoch {state['epoch']}")
    elif shard.is_main:
        atomic_write_text(run_dir / "config.json", config.to_json())
    has_val = len(splits.val_images) > 0
    log(f"{describe_model(config.model)}: {count_parameters(model):,} parameters; "
        f"{len(splits.train_images):,} train / {len(splits.val_images):,} val / {len(splits.test_images):,} test "
        f"images on {device}")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    for epoch in range(start_epoch, config.epochs + 1):
        if stopped:  # a resumed run that had already stopped early
            break
        started = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]  # at the epoch's start; onecycle moves it within
        seed = config.seed * EPOCH_SEED_STRIDE + epoch
        torch.manual_seed(seed)  # dropout
        generator = torch.Generator().manual_seed(seed)  # shuffle order
        if isinstance(optimizer, SDLM):  # Appendix C: fresh curvature estimates before each pass
            sample = curvature_sample(len(splits.train_images), generator)
            optimizer.estimate_curvature(model, train_inputs[sample], splits.train_labels[sample],
                                         loss_function(config.model))
        with _progress(len(splits.train_images), config, f"epoch {epoch}/{config.epochs}") as bar:
            try:
                train_loss, train_acc = train_one_epoch(trained, train_inputs, splits.train_labels,
                                                        augmenter_for(config, epoch), optimizer, scheduler,
                                                        config, generator, bar, shard)
            except NonFiniteLossError as exc:
                _diverged(run_dir, epoch, str(exc), write=shard.is_main)
        val_loss, val_acc = shard.evaluate(model, splits.val_images, splits.val_labels, normalize,
                                           loss_function(config.model))
        if (has_val and not math.isfinite(val_loss)) or not all(p.isfinite().all() for p in model.parameters()):
            _diverged(run_dir, epoch, f"the weights became NaN or infinite (val loss {val_loss})", write=shard.is_main)
        row = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss,
               "val_acc": val_acc, "lr": lr, "seconds": time.perf_counter() - started}
        history.append(row)
        # Without a validation split every epoch counts as the best so far.
        improved = stopper.update(val_loss, epoch) if has_val else True
        stopped = has_val and stopper.should_stop
        if shard.is_main:  # every rank holds the same weights; one writes them
            if improved:
                save_weights(run_dir / BEST, model, config, normalize, {"epoch": epoch})
            save_weights(run_dir / LAST, model, config, normalize, {"epoch": epoch})
            fault_point("after-weights")
            save_state(run_dir / STATE, {
                "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "early_stopping": vars(stopper).copy(),
                "history": history, "stopped": stopped})
            write_csv(run_dir / "metrics.csv", history)
            plot_curves(history, run_dir / "curves.png", stopper.best_epoch or None, title=run_dir.name)
        log(f"epoch {epoch}/{config.epochs}  train loss {train_loss:.4f} acc {train_acc:.4f}  "
            f"{f'val loss {val_loss:.4f} acc {val_acc:.4f}' if has_val else 'no val split'}  lr {row['lr']:.2e}  "
            f"{len(splits.train_images) / row['seconds']:,.0f} img/s{'  *best' if improved else ''}")
        if on_epoch_end is not None:
            on_epoch_end(row)
        if stopped:
            log(f"early stopping: val loss has not improved for {config.patience} epochs; "
                f"restoring epoch {stopper.best_epoch}")
    summary = _finish(model, config, splits, normalize, stopper, history, run_dir, device, stopped, shard)
    shard.barrier()  # every rank leaves together, once rank 0 has written the run: no teardown mid-write
    return summary


def _finish(model: nn.Module, config: TrainConfig, splits: Splits, normalize: Normalization,
            stopper: EarlyStopping, history: list[dict[str, float]], run_dir: Path, device: torch.device,
            stopped: bool, shard: Shard = SINGLE) -> dict[str, Any]:
    """Restore the best weights, measure them once on the test set, write summary.json."""
    from safetensors.torch import load_file

    best_path = run_dir / BEST
    if shard.is_main:
        model.load_state_dict(load_file(str(best_path), device=str(device)))
    shard.broadcast_model(model)
    test_loss, test_acc = shard.evaluate(model, splits.test_images, splits.test_labels, normalize,
                                         loss_function(config.model))
    best_epoch = stopper.best_epoch or len(history)
    summary = {
        "status": "finished",
        "test_accuracy": test_acc,
        "test_loss": test_loss,
        "best_epoch": best_epoch,
        "best_val_loss": stopper.best_loss if math.isfinite(stopper.best_loss) else None,
        "epochs_run": len(history),
        "stopped_early": stopped,
        "verdict": curve_verdict([r["train_loss"] for r in history], [r["val_loss"] for r in history])
        if len(splits.val_images) else "no validation split: cannot judge the curves",
        "parameters": count_parameters(model),
        "train_seconds": sum(r["seconds"] for r in history),
        "device": str(device),
    }
    if device.type == "cuda":
        summary["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    if shard.active:
        summary["world_size"] = shard.world_size
    if not shard.is_main:
        return summary
    # The best weights now also record how well they did, for eval/serve to show.
    save_weights(best_path, model, config, normalize,
                 {"epoch": best_epoch, "test_accuracy": test_acc, "test_loss": test_loss})
    return _write_summary(run_dir, summary)


def _silent(_: str) -> None:
    """The log of ranks other than 0."""


def _diverged(run_dir: Path, epoch: int, reason: str, *, write: bool = True) -> NoReturn:
    """Record a diverged run in summary.json (``write``: rank 0 only) and stop with one line saying what is kept."""
    if write:
        _write_summary(run_dir, {"status": "diverged", "error": reason, "epoch": epoch})
    raise NonFiniteLossError(f"training stopped at epoch {epoch}: {reason}; try a smaller --lr. {_kept(run_dir)}")


def _kept(run_dir: Path) -> str:
    """What a diverged run leaves behind: say so only if an epoch finished."""
    if (run_dir / LAST).is_file():
        return f"The last good checkpoint is kept in {run_dir}"
    return f"No epoch finished, so no checkpoint was saved in {run_dir}"


def _write_summary(run_dir: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """summary.json must be valid JSON: NaN or infinity (an empty split, say) becomes null."""
    import json

    clean = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in summary.items()}
    atomic_write_text(run_dir / "summary.json", json.dumps(clean, indent=2, allow_nan=False))
    return clean


def _splits_on(splits: Splits, device: torch.device) -> Splits:
    """Move every split to ``device`` once, so batches never cross the bus one by one."""
    return Splits(*(t.to(device) for t in vars(splits).values()))


def _progress(images: int, config: TrainConfig, desc: str):
    """A per-batch progress bar on a terminal; silent when piped (epoch lines still print)."""
    from tqdm import tqdm

    total = math.ceil(images / config.batch_size)
    return tqdm(total=total, desc=desc, unit="batch", leave=False, disable=not sys.stderr.isatty())
