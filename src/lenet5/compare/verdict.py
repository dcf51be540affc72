"""One honest line per claim, computed from the per-seed numbers.

A difference counts only when it is larger than the spread over seeds: the gap between two
means must exceed the sum of their standard deviations. Otherwise the verdict says "no clear
difference over K seeds", because another set of seeds could well reverse it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from .metrics import CHANCE_LOSS, METRICS, metric_values
from .store import TrialRecord
from .studies import Claim, Study

HELD, NOT_HELD, UNCLEAR = "HELD", "DID NOT HOLD", "NO CLEAR DIFFERENCE"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def separated(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when the gap between the means is larger than the spread over seeds covers."""
    (mean_a, std_a), (mean_b, std_b) = mean_std(a), mean_std(b)
    return abs(mean_a - mean_b) > std_a + std_b


def describe(metric: str, values: Sequence[float]) -> str:
    mean, std = mean_std(values)
    fmt = METRICS[metric].fmt
    return f"{fmt(mean)} ± {fmt(std)}"


def compare_pair(metric: str, winner: Sequence[float], loser: Sequence[float]) -> str:
    """HELD / DID NOT HOLD / NO CLEAR DIFFERENCE for 'winner beats loser on metric'."""
    seeds = min(len(winner), len(loser))
    if seeds < 2:
        return f"{UNCLEAR} (only {seeds} seed{'s' if seeds != 1 else ''}: cannot tell signal from noise)"
    if not separated(winner, loser):
        return f"{UNCLEAR} over {seeds} seeds (the spread covers the gap)"
    sign = 1 if METRICS[metric].higher_is_better else -1
    better = sign * (statistics.fmean(winner) - statistics.fmean(loser)) > 0
    return HELD if better else f"{NOT_HELD} (the opposite was clearly true)"


def pair_verdict(claim: Claim, records: list[TrialRecord]) -> str:
    winner = metric_values(records, claim.winner, claim.metric)
    loser = metric_values(records, claim.loser, claim.metric)
    name = METRICS[claim.metric].title
    if not winner or not loser:
        empty = claim.winner if not winner else claim.loser
        return f"{claim.text}: cannot judge, no finished trial of {empty!r} has a {name}"
    return (f"{claim.text}: {compare_pair(claim.metric, winner, loser)}: {name} "
            f"{claim.winner} {describe(claim.metric, winner)} vs {claim.loser} {describe(claim.metric, loser)}")


def diverged(record: TrialRecord) -> bool:
    """NaN loss, or a final val loss worse than guessing uniformly over 10 digits."""
    if record.status == "diverged":
        return True
    last = record.history[-1]["val_loss"] if record.history else None
    return last is None or not math.isfinite(last) or last > CHANCE_LOSS


def divergence_verdict(claim: Claim, records: list[TrialRecord]) -> str:
    mine = [r for r in records if r.variant == claim.winner]
    if not mine:
        return f"{claim.text}: cannot judge, no finished trial of {claim.winner!r}"
    count = sum(diverged(r) for r in mine)
    finals = [r.history[-1]["val_loss"] for r in mine if r.history and r.history[-1]["val_loss"] is not None]
    detail = f"final val loss {', '.join(f'{v:.3g}' for v in finals)}" if finals else "loss became NaN"
    outcome = HELD if count == len(mine) else (NOT_HELD if count == 0 else f"{UNCLEAR} (mixed)")
    return (f"{claim.text}: {outcome}: {claim.winner} diverged in {count}/{len(mine)} seeds "
            f"(NaN, or val loss above chance level {CHANCE_LOSS:.2f}; {detail})")


def eval_mode_verdict(claim: Claim, records: list[TrialRecord], study: Study) -> str:
    """Per variant: eval-mode vs train-mode test accuracy of the same weights, paired by seed."""
    parts, any_clear = [], False
    for label in study.labels():
        eval_acc = metric_values(records, label, "test_accuracy")
        train_acc = metric_values(records, label, "train_mode_accuracy")
        if not eval_acc or len(eval_acc) != len(train_acc):
            parts.append(f"{label}: not measured")
            continue
        gaps = [t - e for t, e in zip(train_acc, eval_acc)]
        gap, spread = mean_std(gaps)
        clear = len(gaps) > 1 and abs(gap) > spread
        any_clear |= clear
        parts.append(f"{label}: eval() {describe('test_accuracy', eval_acc)} vs train() "
                     f"{describe('train_mode_accuracy', train_acc)} ({gap * 100:+.2f} ± {spread * 100:.2f} points"
                     f"{'' if clear else ', no clear difference'})")
    seeds = len({r.seed for r in records})
    outcome = HELD if any_clear else f"{UNCLEAR} over {seeds} seeds"
    return f"{claim.text}: {outcome}: " + "; ".join(parts)


def early_stopping_verdict(claim: Claim, records: list[TrialRecord]) -> str:
    """Did val loss turn up in the full runs, and did patience stop near that epoch?"""
    full = [r for r in records if r.variant == claim.loser and r.history and r.status == "finished"]
    patient = {r.seed: r for r in records if r.variant == claim.winner and r.status == "finished"}
    if not full or not patient:
        return f"{claim.text}: cannot judge, missing finished trials"
    turned = [r for r in full if _turned_up(r)]
    same_epoch = sum(1 for r in full if r.seed in patient
                     and patient[r.seed].summary.get("best_epoch") == r.summary.get("best_epoch"))
    best = [r.summary["best_epoch"] for r in full]
    stopped = [r.summary["epochs_run"] for r in patient.values()]
    epochs = full[0].summary["epochs_run"]
    best_acc = metric_values(records, claim.winner, "test_accuracy")
    last_acc = metric_values(records, claim.loser, "last_epoch_accuracy")
    stopped_early = sum(1 for r in patient.values() if r.summary.get("stopped_early"))
    outcome = HELD if len(turned) == len(full) and stopped_early == len(patient) else NOT_HELD
    return (f"{claim.text}: {outcome}: val loss turned up in {len(turned)}/{len(full)} full runs "
            f"(lowest at epoch {statistics.fmean(best):.1f} of {epochs}); patience stopped at epoch "
            f"{statistics.fmean(stopped):.1f} and restored the full run's best epoch in {same_epoch}/{len(full)} "
            f"seeds, training {1 - statistics.fmean(stopped) / epochs:.0%} fewer epochs; test accuracy of the "
            f"restored weights {describe('test_accuracy', best_acc)} vs last-epoch weights "
            f"{describe('last_epoch_accuracy', last_acc) if last_acc else 'not measured'}"
            f"{_accuracy_note(best_acc, last_acc)}")


def _accuracy_note(restored: list[float], last: list[float]) -> str:
    """Lowest val loss is not always highest accuracy: say which weights were more accurate."""
    if not restored or not last:
        return ""
    return f" (restored weights more accurate: {compare_pair('test_accuracy', restored, last)})"


def _turned_up(record: TrialRecord, tolerance: float = 0.02) -> bool:
    losses = [row["val_loss"] for row in record.history]
    lowest = min(losses)
    return losses.index(lowest) < len(losses) - 1 and losses[-1] > lowest * (1 + tolerance)


def grid_verdict(study: Study, records: list[TrialRecord]) -> str:
    """For a custom grid: is the best variant (by test accuracy) clearly ahead of the runner-up?"""
    ranked = sorted((label for label in study.labels() if metric_values(records, label, "test_accuracy")),
                    key=lambda label: -statistics.fmean(metric_values(records, label, "test_accuracy")))
    if len(ranked) < 2:
        return "fewer than two variants finished: nothing to compare"
    claim = Claim(f"best variant {ranked[0]!r} beats runner-up {ranked[1]!r}", winner=ranked[0], loser=ranked[1])
    return pair_verdict(claim, records)


def verdicts(study: Study, records: list[TrialRecord]) -> list[str]:
    """One line per claim of ``study`` (or one for a custom grid)."""
    if not study.claims:
        return [grid_verdict(study, records)]
    lines = []
    for claim in study.claims:
        if claim.kind == "diverges":
            lines.append(divergence_verdict(claim, records))
        elif claim.kind == "eval_mode":
            lines.append(eval_mode_verdict(claim, records, study))
        elif claim.kind == "early_stopping":
            lines.append(early_stopping_verdict(claim, records))
        else:
            lines.append(pair_verdict(claim, records))
    return lines
