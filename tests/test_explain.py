"""`lenet5 explain`: every worked example's numbers against the handout and an independent reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lenet5.cli import main
from lenet5.explain import TOPICS, explain
from lenet5.explain.layers import EDGE_KERNEL, HANDOUT_IMAGE


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> str:
    assert main(["explain", *argv]) == 0
    return capsys.readouterr().out


def test_conv_feature_map_matches_a_hand_written_loop(capsys):
    image, kernel = np.array(HANDOUT_IMAGE), np.array(EDGE_KERNEL)
    expected = [[float((image[r:r + 3, c:c + 3] * kernel).sum()) for c in range(3)] for r in range(3)]
    values = explain("conv").values
    assert values["feature_map"] == expected
    # The handout prints -3 for the top-left value, but its own terms (1+0-1)+(0+0-1)+(0+0-1) sum to -2;
    # -3 is the value one row down. The tool shows the real number and says so.
    assert values["top_left"] == -2 == (1 + 0 - 1) + (0 + 0 - 1) + (0 + 0 - 1)
    assert values["handout_top_left"] == -3 == values["feature_map"][1][0]
    text = run_cli(capsys, "conv")
    assert "same top-left value: -2" in text and "the handout prints -3" in text
    assert "    -2   0   2\n    -3  -2   2\n    -3  -1   2" in text


def test_conv_output_size_formula_agrees_with_conv2d():
    sizes = explain("conv").values["output_sizes"]
    assert {(s["padding"], s["stride"]): s["conv2d"] for s in sizes} == {(0, 1): 3, (1, 1): 5, (0, 2): 2, (1, 2): 3}
    assert all(s["formula"] == s["conv2d"] for s in sizes)


def test_pool_reproduces_the_handout(capsys):
    values = explain("pool").values
    assert values["max"] == [[6.0, 8.0], [14.0, 16.0]]
    assert values["salient"]["max"] == pytest.approx(0.8)
    assert values["salient"]["avg"] == pytest.approx(0.35)
    assert (values["small"]["max"], values["small"]["avg"]) == (4.0, 2.5)
    text = run_cli(capsys, "pool")
    assert "     6   8\n    14  16" in text
    assert "max = 0.8, average = (0.1 + 0.2 + 0.8 + 0.3) / 4 = 0.35" in text


def test_activation_matches_handout(capsys):
    values = explain("activation").values
    assert values["tanh"]["outputs"] == pytest.approx([-0.964, 0.0, 0.964], abs=5e-4)
    assert values["relu"]["outputs"] == [0.0, 0.0, 2.0]
    assert values["tanh_slope"]["outputs"] == pytest.approx([1 - math.tanh(x) ** 2 for x in (0, 2, 5)], abs=1e-6)
    text = run_cli(capsys, "activation")
    assert "nn.Tanh()([-2, 0, 2]) = [-0.964, 0, 0.964]" in text
    assert "nn.ReLU()([-3, 0, 2]) = [0, 0, 2]" in text


def test_softmax_and_cross_entropy_match_handout(capsys):
    softmax = explain("softmax").values
    assert softmax["probabilities"] == pytest.approx([0.659, 0.243, 0.098], abs=1e-3)
    exps = [math.exp(z) for z in (2.0, 1.0, 0.1)]
    assert softmax["probabilities"] == pytest.approx([e / sum(exps) for e in exps], rel=1e-6)
    ce = explain("cross-entropy").values
    assert ce["loss_torch"] == pytest.approx(0.417, abs=5e-4)
    assert ce["loss_one_hot"] == pytest.approx(ce["loss_torch"], rel=1e-6)
    assert ce["loss_index"] == pytest.approx(-math.log(exps[0] / sum(exps)), rel=1e-6)
    assert ce["one_hot"] == [1.0, 0.0, 0.0]
    assert ce["batch"]["mean"] == pytest.approx(ce["batch"]["torch"], rel=1e-6)
    assert "torch.softmax(z, dim=0) = [0.659, 0.242, 0.099]" in run_cli(capsys, "softmax")
    text = run_cli(capsys, "cross-entropy")
    assert "nn.CrossEntropyLoss()(logits, tensor([0])) = 0.417" in text
    assert "one-hot label   y = [1, 0, 0]" in text


@pytest.mark.parametrize("topic", ["sgd", "adam"])
def test_update_by_hand_equals_torch_optim(topic):
    values = explain(topic).values
    assert values["steps"] == 2
    assert max(values["max_abs_difference"]) < 1e-6
    for hand, torch_bias in zip(values["hand_bias"], values["torch_bias"]):
        assert hand == pytest.approx(torch_bias, abs=1e-6)
    # The parameters really moved, so equality is not two copies of the start.
    assert values["torch_bias"][-1] != pytest.approx(values["start_bias"], abs=1e-5)


def test_adam_first_step_moves_each_parameter_by_lr():
    values = explain("adam").values
    moved = np.abs(np.array(values["hand_bias"][0]) - np.array(values["start_bias"]))
    assert moved == pytest.approx([values["settings"]["lr"]] * 2, rel=1e-3)


def test_modes_show_train_and_eval_behaviour():
    values = explain("modes").values
    train_out = values["dropout"]["train"]
    assert values["dropout"]["eval"] == [1.0] * 8
    assert set(train_out) <= {0.0, 2.0} and 0.0 in train_out and 2.0 in train_out
    batchnorm = values["batchnorm"]
    assert np.mean(batchnorm["train"], axis=0) == pytest.approx([0.0, 0.0], abs=1e-6)
    assert batchnorm["running_mean"] == pytest.approx([0.25, 2.5])
    assert not np.allclose(batchnorm["eval"], batchnorm["train"], atol=1e-2)
    assert values["no_grad"] == {"outside_requires_grad": True, "inside_requires_grad": False, "same_values": True}


def test_normalize_ranges_on_a_real_mnist_digit():
    modes = explain("normalize").values["modes"]
    assert (modes["[-1,1]"]["min"], modes["[-1,1]"]["max"]) == (-1.0, 1.0)
    assert (modes["[0,1]"]["min"], modes["[0,1]"]["max"]) == (0.0, 1.0)
    assert modes["none"]["max"] == pytest.approx(255.0)
    zscore = modes["zscore"]
    assert zscore["mean"] == pytest.approx(0.1307, abs=1e-3) and zscore["std"] == pytest.approx(0.3081, abs=1e-3)
    assert zscore["min"] == pytest.approx(-zscore["mean"] / zscore["std"], rel=1e-5)


def test_flatten_shapes(capsys):
    values = explain("flatten").values
    assert values["flatten_shape"] == values["view_shape"] == [1, 3136]
    assert values["lenet_shape"] == [1, 400]
    assert "[1, 3136]" in run_cli(capsys, "flatten")


def test_json_output_holds_values_and_lines(capsys):
    payload = json.loads(run_cli(capsys, "pool", "--json"))
    assert payload["topic"] == "pool" and payload["values"]["max"] == [[6.0, 8.0], [14.0, 16.0]]
    assert any("0.35" in line for line in payload["lines"])


def test_all_topics_run_and_print(capsys):
    text = run_cli(capsys, "all")
    for topic in TOPICS:
        assert explain(topic).title in text


def test_unknown_topic_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "backprop"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'backprop'" in capsys.readouterr().err
