"""Prediction on real image files: the trained model reads drawn digits and MNIST PNGs; the CLI reports per file."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch
from drawn_digits import (
    as_jpeg,
    as_png,
    draw_digit,
    photo_like,
    with_alpha,
    with_exif_rotation,
)
from PIL import Image

import lenet5
from lenet5 import weights
from lenet5.cli import main
from lenet5.data.mnist import load_split
from lenet5.errors import WeightsError
from lenet5.inference import predict_logits
from lenet5.predict import Prediction
from lenet5.preprocess import ImageError, NoDigitError
from lenet5.weights import load_model


@pytest.fixture(scope="module")
def predictor(trained_run):
    return lenet5.load(trained_run)


def varied_digits() -> list[tuple[int, object]]:
    """Two realistic files per digit, cycling through the ways real images differ from MNIST."""
    makers = [
        lambda d: as_png(draw_digit(d, canvas=(1000, 800))),
        lambda d: as_jpeg(photo_like(draw_digit(d, canvas=(900, 700), box=(560, 60, 180, 270)), seed=d), 50),
        lambda d: with_exif_rotation(draw_digit(d, mode="RGB"), orientation=8),
        lambda d: with_alpha(draw_digit(d, canvas=(300, 300), box=(40, 150, 80, 120))),
    ]
    return [(digit, makers[(digit + turn) % len(makers)](digit)) for digit in range(10) for turn in (0, 2)]


def test_trained_model_reads_most_realistic_drawn_digits(predictor):
    cases = varied_digits()
    predictions = predictor.predict([source for _, source in cases])
    correct = [p.digit == digit for (digit, _), p in zip(cases, predictions)]
    assert len(cases) == 20 and sum(correct) >= 16, [p.digit for p in predictions]


def test_mnist_png_files_predict_like_the_tensors(predictor, trained_run, tmp_path):
    images, _ = load_split("test")
    images = images[:300]
    paths = []
    for index, image in enumerate(images.numpy()):
        paths.append(tmp_path / f"{index}.png")
        Image.fromarray(image).save(paths[-1])
    loaded = load_model(trained_run)
    expected = torch.softmax(predict_logits(loaded.model, images, loaded.normalization).double(), 1).numpy()
    predictions = predictor.predict(paths)
    np.testing.assert_array_equal([p.digit for p in predictions], expected.argmax(1))
    np.testing.assert_allclose([p.probabilities for p in predictions], expected, atol=1e-6)
    np.testing.assert_array_equal(predictions[0].preprocessed, images[0].numpy())


def test_prediction_fields_and_every_input_kind(predictor):
    drawn = draw_digit(7)
    sources = [as_png(drawn), drawn, np.asarray(drawn), torch.from_numpy(np.asarray(drawn) / 255.0)]
    predictions = predictor.predict(sources)
    for prediction in predictions:
        assert isinstance(prediction, Prediction) and prediction.digit == 7
        assert len(prediction.probabilities) == 10 and abs(sum(prediction.probabilities) - 1) < 1e-9
        assert prediction.probability == max(prediction.probabilities)
        assert prediction.preprocessed.shape == (28, 28) and prediction.preprocessed.dtype == np.uint8
        assert prediction.top(3)[0] == (7, prediction.probability)
    np.testing.assert_allclose(predictor.predict_one(drawn).probabilities, predictions[1].probabilities, atol=1e-6)


def test_a_bad_item_raises_or_is_reported_in_place(predictor):
    blank = Image.new("L", (50, 50), 255)
    with pytest.raises(NoDigitError, match="^third: no digit found"):
        predictor.predict([draw_digit(1), draw_digit(2), blank], names=["first", "second", "third"])
    results = predictor.predict_each([b"junk", draw_digit(1), blank])
    assert isinstance(results[0], ImageError) and results[0].reason == "not an image file PIL can read"
    assert isinstance(results[1], Prediction) and results[1].digit == 1
    assert isinstance(results[2], NoDigitError)


def test_concurrent_predictions_agree(predictor):
    images = [draw_digit(d) for d in range(10)]
    expected = [p.probabilities for p in predictor.predict(images)]
    answers, errors = [], []

    def worker():
        try:
            answers.append([p.probabilities for p in predictor.predict(images)])
        except Exception as exc:  # surfaced below; a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and all(answer == expected for answer in answers)


def test_load_without_runs_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert lenet5.load().path == weights.PRETRAINED  # the shipped weights (test_pretrained.py has the rest)
    monkeypatch.setattr(weights, "PRETRAINED", tmp_path / "not-shipped.safetensors")
    with pytest.raises(WeightsError, match="lenet5 train"):
        lenet5.load()
    with pytest.raises(WeightsError, match="unknown backend"):
        lenet5.load(tmp_path, backend="tflite")


def test_cli_predicts_a_folder_and_reports_bad_files(trained_run, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a_seven.png").write_bytes(as_png(draw_digit(7)))
    (folder / "b_zero.jpg").write_bytes(as_jpeg(draw_digit(0)))
    (folder / "c_broken.png").write_bytes(as_png(draw_digit(3))[:200])
    (folder / "d_empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image extension: skipped in folders")
    out_dir = tmp_path / "seen"
    code = main(["predict", str(folder), "--weights", str(trained_run), "--format", "json",
                 "--save-preprocessed", str(out_dir), "--batch-size", "2"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [row["file"].rsplit("/", 1)[1] for row in rows] == ["a_seven.png", "b_zero.jpg", "c_broken.png",
                                                               "d_empty.png"]
    assert [row.get("digit") for row in rows[:2]] == [7, 0]
    assert len(rows[0]["probabilities"]) == 10 and rows[0]["probability"] == max(rows[0]["probabilities"])
    assert rows[2]["error"].startswith("truncated or corrupt PNG") and rows[3]["error"] == "empty file (0 bytes)"
    saved = sorted(p.name for p in out_dir.iterdir())
    assert saved == ["a_seven.png", "b_zero.png"]
    assert Image.open(out_dir / "a_seven.png").size == (28, 28)


def test_cli_table_and_csv(trained_run, tmp_path, capsys):
    image = tmp_path / "four.png"
    image.write_bytes(as_png(draw_digit(4)))
    assert main(["predict", str(image), "--weights", str(trained_run)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["file", "digit", "probability"] and table[1].split()[1] == "4"
    assert main(["predict", str(image), "--weights", str(trained_run), "--format", "csv"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.startswith("file,digit,probability,p0,") and row.split(",")[1] == "4"
