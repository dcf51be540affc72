"""The 1998 network: the paper's counts, Table I, the squashing function, the RBF bitmaps, and
round trips through safetensors and ONNX."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from lenet5.config import ModelConfig, TrainConfig
from lenet5.errors import WeightsError
from lenet5.model import build_model, count_parameters
from lenet5.model1998 import (
    C3_TABLE,
    DIGIT_BITMAPS,
    LeNet5_1998,
    ScaledTanh,
    digit_bitmaps,
)
from lenet5.preprocess import Normalization
from lenet5.summary import trace
from lenet5.weights import load_model, save_weights

# LeCun et al. 1998, section II.B: (output shape per sample, trainable parameters, connections).
PAPER = {
    "c1": ([6, 28, 28], 156, 122_304),
    "s2": ([6, 14, 14], 12, 5_880),
    "c3": ([16, 10, 10], 1_516, 151_600),
    "s4": ([16, 5, 5], 32, 2_000),
    "c5": ([120, 1, 1], 48_120, 48_120),
    "f6": ([84], 10_164, 10_164),
    "output": ([10], 0, 840),
}
CONFIG_1998 = TrainConfig(model=ModelConfig(arch="lenet5-1998"), normalization="lecun1998")


def test_every_layer_has_the_papers_shape_parameters_and_connections():
    rows = {row.stage: row for row in trace(LeNet5_1998())}
    for stage, (shape, parameters, connections) in PAPER.items():
        assert (rows[stage].output_shape[1:], rows[stage].parameters, rows[stage].connections) == \
            (shape, parameters, connections), stage
    assert count_parameters(LeNet5_1998()) == 60_000


def test_c3_follows_table_one_and_masked_weights_get_no_gradient():
    model = LeNet5_1998()
    conv = model.c3[0]
    assert [int(n) for n in conv.weight_mask[:, :, 0, 0].sum(1)] == [3] * 6 + [4] * 9 + [6]
    for out_map, in_maps in enumerate(C3_TABLE):
        assert conv.weight_mask[out_map, :, 0, 0].nonzero().flatten().tolist() == sorted(in_maps)
    model(torch.randn(4, 1, 32, 32)).sum().backward()
    masked = conv.weight_mask == 0
    assert conv.weight[masked].abs().max() == 0  # start at zero...
    assert conv.weight.grad[masked].abs().max() == 0  # ...and never move
    assert conv.weight.grad[~masked].abs().max() > 0


def test_masked_weights_do_not_leak_into_the_output():
    model = LeNet5_1998().eval()
    images = torch.randn(2, 1, 32, 32)
    before = model(images)
    with torch.no_grad():
        model.c3[0].weight.add_(1.0 - model.c3[0].weight_mask)  # write into every masked slot
    torch.testing.assert_close(model(images), before)


def test_squashing_function_maps_plus_minus_one_to_itself():
    squash = ScaledTanh()
    values = squash(torch.tensor([1.0, -1.0, 0.0]))
    torch.testing.assert_close(values, torch.tensor([1.0, -1.0, 0.0]), atol=1e-4, rtol=0)


def test_rbf_centres_are_distinct_7_by_12_bitmaps_of_plus_minus_one():
    assert len(DIGIT_BITMAPS) == 10
    for bitmap in DIGIT_BITMAPS:
        assert len(bitmap) == 12 and all(len(row) == 7 and set(row) <= {"#", "."} for row in bitmap)
    centres = digit_bitmaps()
    assert centres.shape == (10, 84) and set(centres.unique().tolist()) == {-1.0, 1.0}
    differing = (centres[:, None, :] != centres[None, :, :]).sum(-1) + 84 * torch.eye(10, dtype=torch.long)
    assert differing.min() >= 6  # every pair differs in several pixels, not just one
    model = LeNet5_1998()
    assert "output.centres" in model.state_dict() and not any(p is model.output.centres for p in model.parameters())


def test_logits_are_minus_the_rbf_distances():
    model = LeNet5_1998().eval()
    images = torch.randn(3, 1, 32, 32)
    features = model.f6(model.c5(model.s4(model.c3(model.s2(model.c1(images))))))
    distances = torch.cdist(features, digit_bitmaps()).pow(2)
    torch.testing.assert_close(model(images), -distances, atol=1e-4, rtol=1e-5)


def test_lecun1998_normalisation_pads_to_32_with_background():
    normalize = Normalization.fit("lecun1998", None, input_size=32)
    digits = torch.zeros(2, 28, 28, dtype=torch.uint8)
    digits[:, 10, 10] = 255
    inputs = normalize(digits)
    assert inputs.shape == (2, 1, 32, 32)
    assert math.isclose(float(inputs[0, 0, 0, 0]), -0.1, abs_tol=1e-6)  # padding = background
    assert math.isclose(float(inputs[0, 0, 12, 12]), 1.175, abs_tol=1e-6)  # ink, shifted by the pad of 2


def test_init_is_uniform_within_two_point_four_over_root_fan_in():
    model = LeNet5_1998()
    bound = 2.4 / math.sqrt(16 * 25)
    weights = model.c5[0].weight
    assert weights.abs().max() <= bound and weights.abs().max() > 0.9 * bound


def test_safetensors_round_trip_gives_the_same_logits(tmp_path):
    torch.manual_seed(0)
    model = build_model(CONFIG_1998.model).eval()
    normalize = Normalization.fit("lecun1998", None, input_size=32)
    save_weights(tmp_path / "w.safetensors", model, CONFIG_1998, normalize)
    loaded = load_model(tmp_path / "w.safetensors")
    assert isinstance(loaded.model, LeNet5_1998) and loaded.normalization == normalize
    digits = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    torch.testing.assert_close(loaded.model(loaded.normalization(digits)), model(normalize(digits)), rtol=0, atol=0)


def test_onnx_round_trip_matches_pytorch(tmp_path):
    pytest.importorskip("onnxruntime")
    from lenet5.export import check_against_torch, export_onnx

    torch.manual_seed(0)
    normalize = Normalization.fit("lecun1998", None, input_size=32)
    save_weights(tmp_path / "w.safetensors", build_model(CONFIG_1998.model), CONFIG_1998, normalize)
    loaded = load_model(tmp_path / "w.safetensors")
    onnx_path = export_onnx(loaded, tmp_path / "model.onnx")
    digits = torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8)
    assert check_against_torch(loaded, onnx_path, digits) < 1e-3  # logits are distances, up to ~100


@pytest.mark.parametrize("saved, claimed", [("lenet5-1998", "lab"), ("lab", "lenet5-1998")])
def test_weights_of_one_architecture_loaded_as_the_other_name_both(tmp_path, saved, claimed):
    path = tmp_path / "w.safetensors"
    config = TrainConfig(model=ModelConfig(arch=claimed))
    save_weights(path, build_model(ModelConfig(arch=saved)), config, Normalization.fit("[-1,1]", None))
    with pytest.raises(WeightsError, match=f"holds {saved} weights but its config says arch {claimed}"):
        load_model(path)
    result = subprocess.run([sys.executable, "-m", "lenet5", "eval", "--weights", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and saved in lines[0] and claimed in lines[0]


def test_the_cli_trains_evaluates_exports_and_predicts_with_a_1998_model(tmp_path):
    pytest.importorskip("onnxruntime")
    from PIL import Image

    from lenet5.data.mnist import load_split

    def lenet5(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "lenet5", *args], capture_output=True, text=True, check=True,
                              cwd=tmp_path)  # eval writes runs/eval/ under the working directory

    lenet5("train", "--recipe", "paper1998", "--epochs", "1", "--train-subset", "300", "--threads", "1",
           "--project", str(tmp_path), "--name", "run")
    run = tmp_path / "run"
    assert "accuracy" in lenet5("eval", "--weights", str(run)).stdout
    summary = lenet5("summary", "--weights", str(run)).stdout
    assert "EuclideanRBF" in summary and "340,908" in summary
    lenet5("export", str(run), "--format", "onnx")
    images, _ = load_split("test")
    Image.fromarray(images[0].numpy()).save(tmp_path / "digit.png")
    torch_out = lenet5("predict", str(tmp_path / "digit.png"), "--weights", str(run), "--format", "json").stdout
    onnx_out = lenet5("predict", str(tmp_path / "digit.png"), "--weights", str(run), "--format", "json",
                      "--backend", "onnx").stdout
    assert json.loads(torch_out)[0]["digit"] == json.loads(onnx_out)[0]["digit"]


def test_compare_can_grid_over_the_architecture():
    from lenet5.compare.studies import grid_study

    study = grid_study(["arch=lab,lenet5-1998"], "arch")
    configs = [study.config(label, seed=0) for label in study.labels()]
    assert [c.model.arch for c in configs] == ["lab", "lenet5-1998"]
    assert isinstance(build_model(configs[1].model), LeNet5_1998)
