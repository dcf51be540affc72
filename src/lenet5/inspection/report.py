"""``lenet5 inspect``: a visual report of one trained model, as report.html plus its PNGs.

Each ``_*_section`` function computes one part of the report from real data (the run's
metrics.csv and summary.json, the test set, the weights, forward hooks) and writes its
figures into the output folder; :func:`build_report` puts them together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Lenet5Error
from ..evaluate import Evaluation, evaluate_model
from ..files import atomic_write_text
from ..weights import LoadedModel, load_model
from . import figures, metrics, probes
from .html import Section, Table, render

MISTAKES_SHOWN = 24
PCA_IMAGES = 2000  # enough points to see the clusters without drowning them
CONFUSED_PAIRS = 6


@dataclass
class Inputs:
    """What every section reads: the model, its test-set evaluation and softmax probabilities."""

    loaded: LoadedModel
    evaluation: Evaluation
    probabilities: np.ndarray  # (N, 10)
    labels: np.ndarray  # (N,)
    out_dir: Path


def build_report(weights: str | Path | None, out_dir: Path, *, image: Path | None = None,
                 data_dir: str | Path | None = None, digits: int = 3) -> Path:
    """Write report.html, report.json and the figures into ``out_dir``; return the HTML path.

    Args:
        weights: a run folder or weights file (None: the newest run under runs/train).
        out_dir: where everything goes (created if needed).
        image: show this image file's feature maps (through the shared preprocessing)
            instead of the first ``digits`` test digits.
        data_dir: MNIST-format test data (default: what the model was trained on).
    """
    loaded = load_model(weights)
    # A bad image file fails here, before any output folder exists.
    digit_source = probes.digit_from_file(image) if image is not None else None
    out_dir.mkdir(parents=True, exist_ok=True)
    evaluation = evaluate_model(loaded, data_dir)
    inputs = Inputs(loaded, evaluation, evaluation.probabilities,
                    evaluation.labels.numpy(), out_dir)
    record: dict[str, Any] = {"weights": str(loaded.path), "test_accuracy": evaluation.accuracy,
                              "test_loss": evaluation.loss, "test_images": len(inputs.labels)}
    sections = [
        _curves_section(inputs, record),
        _confusion_section(inputs, record),
        _scores_section(inputs, record),
        _mistakes_section(inputs, record),
        _filters_section(inputs),
        _feature_maps_section(inputs, digits, digit_source, image),
        _pca_section(inputs, record),
        _reliability_section(inputs, record),
    ]
    config = loaded.config
    subtitle = [f"weights {loaded.path}",
                f"test accuracy {evaluation.accuracy:.2%} (loss {evaluation.loss:.4f}) on {len(inputs.labels):,} "
                f"test images",
                f"activation {config.model.activation}, {config.model.pool} pooling, normalisation "
                f"{config.normalization}, optimiser {config.optimizer}, batch size {config.batch_size}"]
    html_path = out_dir / "report.html"
    atomic_write_text(html_path, render("LeNet-5 inspection report", subtitle, sections))
    atomic_write_text(out_dir / "report.json", json.dumps(record, indent=2))
    return html_path


def _run_files(loaded: LoadedModel) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """The training history and summary stored beside the weights, if this is a run folder."""
    from ..files import read_csv, read_json

    run_dir = loaded.path.parent
    history = read_csv(run_dir / "metrics.csv") if (run_dir / "metrics.csv").is_file() else []
    summary_path = run_dir / "summary.json"
    summary = read_json(summary_path) if summary_path.is_file() else {}
    if not isinstance(summary, dict):
        raise Lenet5Error(f"{summary_path}: not a run summary (a JSON object)")
    return history, summary


def _curves_section(inputs: Inputs, record: dict[str, Any]) -> Section:
    from ..plots import plot_curves
    from ..verdict import curve_verdict

    section = Section("curves", "Training curves")
    history, summary = _run_files(inputs.loaded)
    if not history:
        section.notes.append(f"no metrics.csv beside {inputs.loaded.path}: these weights carry no training history")
        return section
    best_epoch = int(summary.get("best_epoch") or inputs.loaded.extra.get("epoch") or len(history))
    verdict = summary.get("verdict") or curve_verdict([r["train_loss"] for r in history],
                                                      [r["val_loss"] for r in history])
    path = inputs.out_dir / "curves.png"
    plot_curves(history, path, best_epoch, title=f"{inputs.loaded.path.parent.name}: {len(history)} epochs")
    section.verdict = f"curve verdict - {verdict}"
    stopped = "stopped early" if summary.get("stopped_early") else "ran all its epochs"
    section.notes.append(f"{len(history)} epochs; the weights are from epoch {best_epoch} (dashed line), the "
                         f"lowest validation loss; training {stopped}.")
    section.figures.append((path, "train vs validation loss and accuracy per epoch"))
    record["curves"] = {"epochs": len(history), "best_epoch": best_epoch, "verdict": verdict}
    return section


def _confusion_section(inputs: Inputs, record: dict[str, Any]) -> Section:
    confusion = inputs.evaluation.confusion
    pairs = metrics.most_confused_pairs(confusion, CONFUSED_PAIRS)
    path = inputs.out_dir / "confusion.png"
    figures.plot_confusion_pair(confusion, metrics.row_normalised(confusion), path, inputs.evaluation.accuracy)
    section = Section("confusion", "Confusion matrix")
    mistakes = int(confusion.sum() - confusion.trace())
    section.notes.append(f"{mistakes:,} of {int(confusion.sum()):,} test digits misclassified. Rows are the true "
                         "digit, columns the prediction.")
    section.tables.append(Table("most-confused pairs", ["true -> predicted", "count", "share of true digit"],
                                [[f"{p['true']} -> {p['predicted']}", p["count"],
                                  f"{p['count'] / confusion[p['true']].sum():.2%}"] for p in pairs]))
    section.figures.append((path, "counts (left) and row-normalised shares (right)"))
    record["confusion"] = confusion.tolist()
    record["most_confused_pairs"] = pairs
    return section


def _scores_section(inputs: Inputs, record: dict[str, Any]) -> Section:
    scores = metrics.per_class_scores(inputs.evaluation.confusion)
    section = Section("per-class", "Per-class precision, recall and F1")
    section.notes.append("precision: of the images predicted as this digit, the share that were it; "
                         "recall: of the images of this digit, the share found.")
    rows = [[s["digit"], f"{s['precision']:.4f}", f"{s['recall']:.4f}", f"{s['f1']:.4f}", s["support"]]
            for s in scores]
    macro = [np.mean([s[k] for s in scores]) for k in ("precision", "recall", "f1")]
    rows.append(["macro mean", *(f"{v:.4f}" for v in macro), sum(s["support"] for s in scores)])
    section.tables.append(Table("per digit", ["digit", "precision", "recall", "F1", "support"], rows))
    worst = min(scores, key=lambda s: s["f1"])
    section.notes.append(f"weakest digit: {worst['digit']} (F1 {worst['f1']:.4f}).")
    record["per_class"] = scores
    return section


def _mistakes_section(inputs: Inputs, record: dict[str, Any]) -> Section:
    chosen = metrics.worst_mistakes(inputs.probabilities, inputs.labels, MISTAKES_SHOWN)
    predicted = inputs.probabilities.argmax(1)[chosen]
    confidence = inputs.probabilities[chosen, predicted]
    path = inputs.out_dir / "mistakes.png"
    figures.plot_mistakes(inputs.evaluation.images[chosen].numpy(), inputs.labels[chosen].tolist(),
                          predicted.tolist(), confidence.tolist(), path)
    section = Section("mistakes", "Worst misclassified test digits")
    section.notes.append(f"the {len(chosen)} mistakes the model was most sure of, with the true label, the "
                         "prediction and the probability it gave the prediction.")
    section.figures.append((path, "true -> predicted, p = predicted probability"))
    record["worst_mistakes"] = [{"index": int(i), "true": int(inputs.labels[i]), "predicted": int(p),
                                 "probability": float(c)} for i, p, c in zip(chosen, predicted, confidence)]
    return section


def _filters_section(inputs: Inputs) -> Section:
    section = Section("filters", "Learned convolution filters")
    section.notes.append("red: positive weights, blue: negative, on one shared scale per layer. conv1 filters look "
                         "at the digit directly; each conv2 filter combines all 6 S2 maps (one row each).")
    weights = probes.conv_weights(inputs.loaded.model)
    for name, title in (("conv1", "conv1 (C1): 6 filters of 5x5"),
                        ("conv2", "conv2 (C3): 16 filters x 6 input maps of 5x5")):
        path = inputs.out_dir / f"filters_{name}.png"
        figures.plot_filters(weights[name], path, title)
        section.figures.append((path, title))
    return section


def _feature_maps_section(inputs: Inputs, digits: int, digit_source: tuple[np.ndarray, list[str]] | None,
                          image: Path | None) -> Section:
    section = Section("feature-maps", "Feature maps after C1, S2, C3 and S4")
    section.notes.append("captured with forward hooks during one ordinary forward pass; the model is not changed.")
    if digit_source is not None:
        digit, notes = digit_source
        samples = [(digit, f"{Path(image).name}", None)]
        section.notes.append(f"{image}: preprocessed to 28x28 by the shared MNIST recipe"
                             + (f" ({'; '.join(notes)})" if notes else ""))
    else:
        indices = range(min(digits, len(inputs.labels)))
        samples = [(inputs.evaluation.images[i].numpy(), f"test digit #{i}", int(inputs.labels[i])) for i in indices]
    for number, (digit, name, label) in enumerate(samples):
        probabilities, maps = probes.feature_maps(inputs.loaded.model, digit, inputs.loaded.normalization)
        guess = int(probabilities.argmax())
        truth = f", true {label}" if label is not None else ""
        title = f"{name}: predicted {guess} (p = {probabilities[guess]:.3f}){truth}"
        path = inputs.out_dir / f"feature_maps_{number}.png"
        figures.plot_feature_maps(digit, maps, path, title)
        section.figures.append((path, title))
    return section


def _pca_section(inputs: Inputs, record: dict[str, Any]) -> Section:
    count = min(PCA_IMAGES, len(inputs.labels))
    features = probes.f6_features(inputs.loaded.model, inputs.evaluation.images[:count], inputs.loaded.normalization)
    points, explained = metrics.pca_2d(features.astype(np.float64))
    path = inputs.out_dir / "pca_f6.png"
    figures.plot_pca(points, inputs.labels[:count], explained, path)
    section = Section("pca", "F6 features in 2-D (PCA)")
    section.notes.append(f"the 84 numbers F6 computes for each of the first {count:,} test digits, projected onto "
                         f"their two main directions ({explained.sum():.0%} of the variance). Separate clusters "
                         "mean the output layer has an easy job.")
    section.figures.append((path, "one colour per true digit; labels mark each cluster's centre"))
    record["pca"] = {"images": count, "explained_variance_ratio": explained.tolist()}
    return section


def _reliability_section(inputs: Inputs, record: dict[str, Any]) -> Section:
    calibration = metrics.reliability(inputs.probabilities, inputs.labels)
    path = inputs.out_dir / "reliability.png"
    figures.plot_reliability(calibration, path)
    section = Section("reliability", "Reliability: does 0.9 confidence mean 90% right?")
    section.notes.append(f"expected calibration error {calibration.expected_calibration_error:.4f}: the "
                         "count-weighted gap between confidence and accuracy. Bars on the diagonal are calibrated; "
                         "below it the model is over-confident.")
    rows = [[f"({r['low']:.1f}, {r['high']:.1f}]", r["count"], f"{r['confidence']:.3f}", f"{r['accuracy']:.3f}"]
            for r in calibration.rows()]
    section.tables.append(Table("confidence bins", ["confidence", "images", "mean confidence", "accuracy"], rows))
    section.figures.append((path, "accuracy per confidence bin vs the diagonal; images per bin below"))
    record["reliability"] = {"bins": calibration.rows(), "ece": calibration.expected_calibration_error}
    return section
