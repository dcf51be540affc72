"""The numbers a comparison reports per trial, each read from a trial's summary and epoch rows."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .store import TrialRecord

TARGET_VAL_ACC = 0.97  # "seconds to reach a fixed val accuracy" uses this bar
CHANCE_LOSS = math.log(10)  # cross-entropy of a uniform guess over 10 digits


def _percent(value: float) -> str:
    return f"{value * 100:.2f}%"


def _plain(value: float) -> str:
    return f"{value:.4f}"


def _seconds(value: float) -> str:
    return f"{value:.1f} s"


def _epochs(value: float) -> str:
    return f"{value:.1f}"


@dataclass(frozen=True)
class Metric:
    title: str
    fmt: Callable[[float], str]
    higher_is_better: bool
    read: Callable[[TrialRecord], float | None]


def _summary(key: str) -> Callable[[TrialRecord], float | None]:
    return lambda record: record.summary.get(key)


def _extra(key: str) -> Callable[[TrialRecord], float | None]:
    return lambda record: record.extras.get(key)


def seconds_to_target(record: TrialRecord, target: float = TARGET_VAL_ACC) -> float | None:
    """Training seconds until val accuracy first reached ``target``; None if it never did."""
    elapsed = 0.0
    for row in record.history:
        elapsed += row["seconds"]
        if row["val_acc"] is not None and row["val_acc"] >= target:
            return elapsed
    return None


def first_val_loss(record: TrialRecord) -> float | None:
    return record.history[0]["val_loss"] if record.history else None


METRICS: dict[str, Metric] = {
    "test_accuracy": Metric("test accuracy", _percent, True, _summary("test_accuracy")),
    "best_val_loss": Metric("best val loss", _plain, False, _summary("best_val_loss")),
    "best_epoch": Metric("epochs to best", _epochs, False, _summary("best_epoch")),
    "val_loss_epoch1": Metric("val loss after epoch 1", _plain, False, first_val_loss),
    "seconds_to_target": Metric(f"s to val acc {TARGET_VAL_ACC:.0%}", _seconds, False, seconds_to_target),
    "wall_seconds": Metric("wall time", _seconds, False, _summary("wall_seconds")),
    "epochs_run": Metric("epochs run", _epochs, False, _summary("epochs_run")),
    "train_mode_accuracy": Metric("test accuracy in train() mode", _percent, True,
                                  _extra("train_mode_accuracy")),
    "last_epoch_accuracy": Metric("test accuracy of last-epoch weights", _percent, True,
                                  _extra("last_epoch_accuracy")),
}


def metric_values(records: list[TrialRecord], label: str, metric: str) -> list[float]:
    """The metric over the seeds of one variant, leaving out trials where it does not exist."""
    read = METRICS[metric].read
    values = [read(r) for r in records if r.variant == label]
    return [float(v) for v in values if v is not None and math.isfinite(v)]
