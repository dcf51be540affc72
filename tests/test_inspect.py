"""`lenet5 inspect`: hooks that leave the model alone, report numbers vs references, the report itself."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from lenet5.cli import main
from lenet5.data.mnist import load_split
from lenet5.evaluate import evaluate_model
from lenet5.hooks import capture_activations
from lenet5.inspection import metrics, probes
from lenet5.weights import load_model

SECTIONS = ("curves", "confusion", "per-class", "mistakes", "filters", "feature-maps", "pca", "reliability")


@pytest.fixture(scope="module")
def loaded(trained_run):
    return load_model(trained_run)


@pytest.fixture(scope="module")
def test_digits():
    images, labels = load_split("test")
    return images[:64], labels[:64]


@pytest.fixture(scope="module")
def report_dir(trained_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    assert main(["inspect", "--weights", str(trained_run), "--out", str(out)]) == 0
    return out


def test_hooks_leave_outputs_unchanged(loaded, test_digits):
    model, batch = loaded.model, loaded.normalization(test_digits[0])
    stages = ("c1", "s2", "c3", "s4", "flatten", "f5", "f6", "output")
    with torch.no_grad():
        before = model(batch)
        with capture_activations(model, stages) as captured:
            during = model(batch)
        after = model(batch)
    assert torch.equal(before, during) and torch.equal(before, after)
    assert torch.equal(captured["output"], before)  # the last hook saw exactly the logits
    assert all(not module._forward_hooks for module in model.modules())


def test_probes_match_a_manual_forward_and_change_nothing(loaded, test_digits):
    model = loaded.model
    state = {k: v.clone() for k, v in model.state_dict().items()}
    features = probes.f6_features(model, test_digits[0], loaded.normalization)
    probabilities, maps = probes.feature_maps(model, test_digits[0][0].numpy(), loaded.normalization)
    with torch.no_grad():
        x = loaded.normalization(test_digits[0])
        c1 = model.c1(x)
        s4 = model.s4(model.c3(model.s2(c1)))
        f6 = model.f6(model.f5(model.flatten(s4)))
        logits = model.output(f6)
    assert features.shape == (64, 84)
    np.testing.assert_allclose(features, f6.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps["c1"], c1[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps["s4"], s4[0].numpy(), rtol=1e-5, atol=1e-6)
    assert {k: v.shape for k, v in maps.items()} == {"c1": (6, 28, 28), "s2": (6, 14, 14), "c3": (16, 10, 10),
                                                     "s4": (16, 5, 5)}
    np.testing.assert_allclose(probabilities, torch.softmax(logits[0], 0).numpy(), rtol=1e-5, atol=1e-7)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all(not module._forward_hooks for module in model.modules())


def test_per_class_scores_by_hand():
    # digit 0: 8 right, 2 called 1; digit 1: 1 called 0, 4 right, 0 called 2; digit 2 never occurs.
    confusion = np.array([[8, 2, 0], [1, 4, 0], [0, 0, 0]])
    scores = metrics.per_class_scores(confusion)
    assert scores[0] == pytest.approx({"digit": 0, "precision": 8 / 9, "recall": 0.8,
                                       "f1": 2 * (8 / 9) * 0.8 / (8 / 9 + 0.8), "support": 10})
    assert scores[1]["precision"] == pytest.approx(4 / 6) and scores[1]["recall"] == pytest.approx(0.8)
    assert scores[2] == {"digit": 2, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert metrics.most_confused_pairs(confusion) == [{"true": 0, "predicted": 1, "count": 2},
                                                      {"true": 1, "predicted": 0, "count": 1}]
    np.testing.assert_allclose(metrics.row_normalised(confusion)[0], [0.8, 0.2, 0.0])


def test_worst_mistakes_are_the_most_confident_wrong_ones():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.05, 0.95]])
    labels = np.array([0, 0, 0, 1])  # rows 1 (p=0.8) and 2 (p=0.6) are wrong
    assert metrics.worst_mistakes(probabilities, labels, 5).tolist() == [1, 2]


def test_reliability_by_hand():
    # confidences 0.95, 0.95, 0.55, 0.55 with 1 of 2 right in each bin
    probabilities = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.45, 0.55]])
    labels = np.array([0, 1, 0, 0])
    calibration = metrics.reliability(probabilities, labels, bins=10)
    rows = calibration.rows()
    assert [r["count"] for r in rows] == [2, 2] and [r["accuracy"] for r in rows] == [0.5, 0.5]
    assert [r["low"] for r in rows] == pytest.approx([0.5, 0.9])
    assert calibration.expected_calibration_error == pytest.approx((2 * 0.05 + 2 * 0.45) / 4)


def test_pca_matches_the_covariance_eigenvectors():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6))
    points, explained = metrics.pca_2d(data)
    eigenvalues = np.linalg.eigh(np.cov(data, rowvar=False))[0][::-1]
    np.testing.assert_allclose(points.var(0, ddof=1), eigenvalues[:2], rtol=1e-8)
    np.testing.assert_allclose(explained, eigenvalues[:2] / eigenvalues.sum(), rtol=1e-8)


def test_report_has_every_section_with_real_data(report_dir, trained_run, loaded):
    page = (report_dir / "report.html").read_text()
    record = json.loads((report_dir / "report.json").read_text())
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    # Self-contained: every image is embedded and equals the PNG written beside the page.
    embedded = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="[^"]*"><figcaption>([\w.]+):', page)
    names = {name for _, name in embedded}
    assert names == {"curves.png", "confusion.png", "mistakes.png", "filters_conv1.png", "filters_conv2.png",
                     "feature_maps_0.png", "feature_maps_1.png", "feature_maps_2.png", "pca_f6.png", "reliability.png"}
    for data, name in embedded:
        assert base64.b64decode(data) == (report_dir / name).read_bytes()
    assert "http://" not in page and "https://" not in page and "<script" not in page
    # The numbers are the run's own.
    evaluation = evaluate_model(loaded)
    summary = json.loads((trained_run / "summary.json").read_text())
    assert record["test_accuracy"] == evaluation.accuracy
    assert f"test accuracy {evaluation.accuracy:.2%}" in page
    assert summary["verdict"] in page and record["curves"]["best_epoch"] == summary["best_epoch"]
    assert np.array_equal(record["confusion"], evaluation.confusion)
    top = record["most_confused_pairs"][0]
    off_diagonal = evaluation.confusion * (1 - np.eye(10, dtype=int))
    assert top["count"] == off_diagonal.max() and f"<td>{top['true']} -&gt; {top['predicted']}</td>" in page
    digit = record["per_class"][3]
    assert f"<td>3</td><td>{digit['precision']:.4f}</td><td>{digit['recall']:.4f}</td>" in page
    mistakes = record["worst_mistakes"]
    assert 0 < len(mistakes) <= 24
    assert all(int(evaluation.predictions[m["index"]]) == m["predicted"] != m["true"] for m in mistakes)
    assert sum(b["count"] for b in record["reliability"]["bins"]) == len(evaluation.labels)


def test_inspect_an_image_file_through_the_shared_preprocessing(trained_run, tmp_path):
    from PIL import Image

    images, labels = load_split("test")
    # A user's photo: dark ink on white paper, much bigger than 28x28.
    photo = Image.fromarray(255 - images[0].numpy()).resize((140, 140), Image.BILINEAR)
    photo_path = tmp_path / "my digit.png"
    photo.save(photo_path)
    out = tmp_path / "report"
    assert main(["inspect", "--weights", str(trained_run), "--out", str(out), "--image", str(photo_path)]) == 0
    page = (out / "report.html").read_text()
    assert "my digit.png: predicted" in page
    assert f"predicted {int(labels[0])}" in page  # the model still reads the photo's 7 correctly
    assert sorted(p.name for p in out.glob("feature_maps_*.png")) == ["feature_maps_0.png"]


def test_bad_inputs_are_one_line_errors(trained_run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default output folder would be runs/inspect/exp here
    out = tmp_path / "never"
    assert main(["inspect", "--weights", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "weights file not found" in capsys.readouterr().err
    assert main(["inspect", "--weights", str(trained_run), "--out", str(out), "--image", str(tmp_path / "x.png")]) == 2
    assert "x.png: image file not found" in capsys.readouterr().err
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    assert main(["inspect", "--weights", str(trained_run), "--out", str(out), "--image", str(not_an_image)]) == 2
    assert "notes.png" in capsys.readouterr().err
    assert main(["inspect", "--weights", str(trained_run), "--image", str(not_an_image)]) == 2
    assert not out.exists() and not (tmp_path / "runs").exists()
