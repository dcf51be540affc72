"""Numbers behind the inspection report: per-class scores, confusions, calibration, PCA.

Pure functions on arrays, so each can be checked against a hand-worked example.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def per_class_scores(confusion: np.ndarray) -> list[dict[str, float]]:
    """Precision, recall, F1 and support per class from a (true x predicted) count matrix.

    A class that is never predicted (or never present) gets 0 for the undefined ratio.
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    correct = confusion.diagonal()
    predicted = confusion.sum(0)
    actual = confusion.sum(1)
    precision = np.divide(correct, predicted, out=np.zeros_like(correct), where=predicted > 0)
    recall = np.divide(correct, actual, out=np.zeros_like(correct), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(correct), where=both > 0)
    return [{"digit": digit, "precision": float(precision[digit]), "recall": float(recall[digit]),
             "f1": float(f1[digit]), "support": int(actual[digit])} for digit in range(len(confusion))]


def row_normalised(confusion: np.ndarray) -> np.ndarray:
    """Each row divided by its total: the share of each true digit that went to each prediction."""
    confusion = np.asarray(confusion, dtype=np.float64)
    totals = confusion.sum(1, keepdims=True)
    return np.divide(confusion, totals, out=np.zeros_like(confusion), where=totals > 0)


def most_confused_pairs(confusion: np.ndarray, count: int = 5) -> list[dict[str, int]]:
    """The off-diagonal cells with the most mistakes, biggest first (ties: lower digits first)."""
    confusion = np.asarray(confusion)
    pairs = [(int(confusion[t, p]), t, p) for t in range(len(confusion)) for p in range(len(confusion))
             if t != p and confusion[t, p] > 0]
    pairs.sort(key=lambda item: (-item[0], item[1], item[2]))
    return [{"true": t, "predicted": p, "count": n} for n, t, p in pairs[:count]]


def worst_mistakes(probabilities: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Indices of misclassified images, most confidently wrong first."""
    predictions = probabilities.argmax(1)
    wrong = np.flatnonzero(predictions != labels)
    confidence = probabilities[wrong, predictions[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:count]


@dataclass
class Reliability:
    """Calibration: per confidence bin, how often the top prediction was right."""

    edges: np.ndarray  # (bins + 1,)
    counts: np.ndarray  # images per bin
    confidence: np.ndarray  # mean top probability per bin (nan when empty)
    accuracy: np.ndarray  # share correct per bin (nan when empty)
    expected_calibration_error: float  # count-weighted mean |accuracy - confidence|

    def rows(self) -> list[dict[str, float]]:
        return [{"low": float(lo), "high": float(hi), "count": int(n), "confidence": float(c), "accuracy": float(a)}
                for lo, hi, n, c, a in zip(self.edges[:-1], self.edges[1:], self.counts, self.confidence,
                                           self.accuracy) if n > 0]


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> Reliability:
    """Bin images by their top probability and compare it with how often they were right."""
    confidence = probabilities.max(1)
    correct = (probabilities.argmax(1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bins are (low, high]; a confidence of exactly 0 (impossible after softmax) would go in the first.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(which, weights=confidence, minlength=bins) / counts
        accuracy = np.bincount(which, weights=correct, minlength=bins) / counts
    gaps = np.abs(np.nan_to_num(accuracy) - np.nan_to_num(mean_confidence))
    error = float((counts * gaps).sum() / max(len(labels), 1))
    return Reliability(edges, counts, mean_confidence, accuracy, error)


def pca_2d(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project rows onto their two principal components.

    Returns:
        (points (N, 2), explained-variance ratio of the two components).
    """
    centred = features - features.mean(0, keepdims=True)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    variance = singular**2
    return centred @ components[:2].T, variance[:2] / variance.sum()

