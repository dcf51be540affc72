"""ONNX export: one self-contained file whose onnxruntime logits match PyTorch's."""

from __future__ import annotations

import numpy as np
import pytest
from drawn_digits import as_png, draw_digit

import lenet5
from lenet5.cli import main
from lenet5.data.mnist import load_split
from lenet5.errors import WeightsError
from lenet5.inference import predict_logits
from lenet5.weights import load_model

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

from lenet5.export import export_onnx, onnx_session, read_onnx_normalization  # noqa: E402


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    return export_onnx(load_model(trained_run), path)


def test_onnxruntime_matches_pytorch_on_the_whole_test_set(trained_run, exported):
    loaded = load_model(trained_run)
    images, _ = load_split("test")
    expected = predict_logits(loaded.model, images, loaded.normalization).numpy()
    session = onnx_session(exported, threads=2)
    actual = np.concatenate([session.run(None, {"images": loaded.normalization(chunk).numpy()})[0]
                             for chunk in images.split(2500)])
    assert actual.shape == (10000, 10)
    assert np.abs(actual - expected).max() <= 1e-5
    np.testing.assert_array_equal(actual.argmax(1), expected.argmax(1))


def test_file_is_self_contained_with_a_dynamic_batch_and_its_normalisation(trained_run, exported):
    model = onnx.load(str(exported))
    assert [p.name for p in exported.parent.iterdir()] == ["model.onnx"]  # no external data files
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.dim_value
    assert read_onnx_normalization(exported) == load_model(trained_run).normalization
    session = onnx_session(exported)
    for size in (1, 7):
        logits = session.run(None, {"images": np.zeros((size, 1, 28, 28), dtype=np.float32)})[0]
        assert logits.shape == (size, 10)


def test_onnx_predictor_agrees_with_torch(trained_run, exported):
    images = [draw_digit(d) for d in range(10)]
    torch_predictions = lenet5.load(trained_run).predict(images)
    onnx_predictor = lenet5.load(exported, backend="onnx")
    assert onnx_predictor.backend == "onnx" and onnx_predictor.loaded is None
    onnx_predictions = onnx_predictor.predict(images)
    assert [p.digit for p in onnx_predictions] == [p.digit for p in torch_predictions]
    np.testing.assert_allclose([p.probabilities for p in onnx_predictions],
                               [p.probabilities for p in torch_predictions], atol=1e-6)


def test_cli_export_then_predict_with_onnx(trained_run, tmp_path, capsys):
    out = tmp_path / "exported.onnx"
    assert main(["export", str(trained_run), "--format", "onnx", "--out", str(out)]) == 0
    assert "same predicted digits" in capsys.readouterr().out
    image = tmp_path / "six.png"
    image.write_bytes(as_png(draw_digit(6)))
    assert main(["predict", str(image), "--weights", str(out), "--backend", "onnx", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split(",")[1] == "6"


def test_onnx_backend_without_an_export_says_how_to_make_one(trained_run):
    with pytest.raises(WeightsError, match="lenet5 export"):
        lenet5.load(trained_run, backend="onnx")


def test_a_broken_onnx_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not protobuf at all")
    with pytest.raises(WeightsError, match="broken.onnx"):
        lenet5.load(path, backend="onnx")
