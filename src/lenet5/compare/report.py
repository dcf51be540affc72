"""Write a comparison's report: a table per variant, overlay curves with a band over the
seeds, and one verdict per claim, as report.md and report.html next to the study store."""

from __future__ import annotations

import html
import statistics
from dataclasses import dataclass
from pathlib import Path

from ..files import atomic_write_text
from .metrics import METRICS, metric_values
from .store import TrialRecord
from .studies import Study
from .verdict import describe, verdicts

TABLE_METRICS = ("test_accuracy", "best_val_loss", "best_epoch", "seconds_to_target", "wall_seconds")
CURVES = "curves.png"


@dataclass
class Report:
    """What ``write_report`` produced, for the CLI to print."""

    markdown: Path
    html: Path
    verdicts: list[str]
    missing: int


def table_rows(study: Study, records: list[TrialRecord], seeds: int) -> tuple[list[str], list[list[str]]]:
    """Header and one row per variant: mean ± std over seeds of each metric."""
    metrics = TABLE_METRICS + tuple(m for m in study.extras if m in METRICS)
    header = ["variant", "trials"] + [METRICS[m].title for m in metrics]
    rows = []
    for label in study.labels():
        mine = [r for r in records if r.variant == label]
        diverged = sum(r.status == "diverged" for r in mine)
        trials = f"{len(mine)}/{seeds}" + (f" ({diverged} NaN)" if diverged else "")
        cells = []
        for metric in metrics:
            values = metric_values(records, label, metric)
            reached = "" if len(values) == len(mine) else f" ({len(values)}/{len(mine)})"
            cells.append(describe(metric, values) + reached if values else "n/a")
        rows.append([label, trials] + cells)
    return header, rows


def plot_overlay(study: Study, records: list[TrialRecord], path: Path) -> None:
    """Validation loss and accuracy per epoch: a mean line per variant, a band of ± 1 std."""
    from ..plots import _pyplot, save_figure

    plt = _pyplot()
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label in study.labels():
        histories = [r.history for r in records if r.variant == label and r.history]
        if not histories:
            continue
        for ax, key in ((loss_ax, "val_loss"), (acc_ax, "val_acc")):
            epochs, means, lows, highs = _band(histories, key)
            line, = ax.plot(epochs, means, "o-", markersize=3, label=label)
            ax.fill_between(epochs, lows, highs, color=line.get_color(), alpha=0.2)
    from matplotlib.ticker import MaxNLocator

    loss_ax.set_yscale("log")  # a diverged variant's loss is orders of magnitude above the rest
    for ax, title in ((loss_ax, "validation loss (log)"), (acc_ax, "validation accuracy")):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # a variant that diverged at once has no curve
            ax.legend(fontsize=8)
    seeds = len({r.seed for r in records})
    fig.suptitle(f"{study.name}: mean over {seeds} seed{'s' if seeds != 1 else ''}, band = ± 1 std")
    save_figure(fig, path)


def _band(histories: list[list[dict]], key: str) -> tuple[list[int], list[float], list[float], list[float]]:
    """Per epoch, the mean and mean ± std over the seeds that reached that epoch."""
    epochs, means, lows, highs = [], [], [], []
    for index in range(max(len(h) for h in histories)):
        values = [h[index][key] for h in histories if index < len(h) and h[index][key] is not None]
        if not values:
            continue
        mean = statistics.fmean(values)
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        epochs.append(index + 1)
        means.append(mean)
        lows.append(mean - std)
        highs.append(mean + std)
    return epochs, means, lows, highs


def write_report(study: Study, records: list[TrialRecord], seeds: int, study_dir: Path,
                 command: str = "") -> Report:
    """Write report.md, report.html and curves.png into ``study_dir``."""
    lines = verdicts(study, records)
    header, rows = table_rows(study, records, seeds)
    if records:
        plot_overlay(study, records, study_dir / CURVES)
    missing = len(study.variants) * seeds - len(records)
    status = f"{len(records)} of {len(study.variants) * seeds} trials done" + (
        f"; {missing} missing: re-run the command to finish them" if missing else "")
    md = [f"# Compare: {study.name}", "", f"**Question.** {study.question}", "", status, ""]
    if command:
        md += ["Reproduce with:", "", "```", command, "```", ""]
    md += ["## Verdicts", ""] + [f"- {line}" for line in lines] + ["", "## Results (mean ± std over seeds)", ""]
    md += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(row) + " |" for row in rows]
    md += ["", f"![validation curves]({CURVES})", "", "Variants:", ""]
    md += [f"- **{v.label}**: {_options(v.options)}" for v in study.variants]
    md += ["", f"Base options for every variant: {_options(study.base) or 'the training defaults'}", ""]
    md_path, html_path = study_dir / "report.md", study_dir / "report.html"
    atomic_write_text(md_path, "\n".join(md))
    atomic_write_text(html_path, _html(study, status, command, lines, header, rows, bool(records)))
    return Report(md_path, html_path, lines, missing)


def _options(options: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in options.items())


def _html(study: Study, status: str, command: str, lines: list[str], header: list[str],
          rows: list[list[str]], has_plot: bool) -> str:
    esc = html.escape
    cells = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    items = "".join(f"<li>{esc(line)}</li>" for line in lines)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Compare: {esc(study.name)}</title>",
        "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}td:first-child{text-align:left}"
        "</style></head><body>",
        f"<h1>Compare: {esc(study.name)}</h1><p><b>Question.</b> {esc(study.question)}</p><p>{esc(status)}</p>",
        f"<pre>{esc(command)}</pre>" if command else "",
        f"<h2>Verdicts</h2><ul>{items}</ul>",
        f"<h2>Results (mean ± std over seeds)</h2><table><tr>{cells}</tr>{body}</table>",
        f"<p><img src='{CURVES}' alt='validation curves' style='max-width:100%'></p>" if has_plot else "",
        "</body></html>",
    ]
    return "\n".join(parts)
