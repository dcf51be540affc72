"""The benchmarks run end to end (``--quick``) and their bookkeeping adds up."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lenet5.preprocess import Normalization

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load_train_speed():
    spec = importlib.util.spec_from_file_location("train_speed", BENCHMARKS / "train_speed.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_speed"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


train_speed = _load_train_speed()


def test_train_speed_quick_prints_every_arm() -> None:
    result = subprocess.run([sys.executable, str(BENCHMARKS / "train_speed.py"), "--quick", "--threads", "1",
                             "--arms", "lab", "speedrun", "reference", "--epochs-table"],
                            capture_output=True, text=True, timeout=180, cwd=BENCHMARKS.parent)
    assert result.returncode == 0, result.stderr
    tables = _table_rows(result.stdout)
    rows = {cells[0]: cells for cells in tables[8]}
    assert set(rows) == {"lab", "speedrun", "reference"}, result.stdout
    per_epoch = {cells[0]: cells for cells in tables[9]}  # arm, seed, epoch, s, images, img/s, loss, acc, cum. s
    assert [(cells[0], cells[2], cells[4]) for cells in tables[9]] == [
        ("lab", "1", "2,000"), ("speedrun", "1", "2,000"), ("reference", "1", "2,000")]
    for name, (_, seeds, epochs, images_per_second, reached, _, accuracy, worst) in rows.items():
        assert seeds == "1" and epochs == "1"
        # The summary is the epoch table's bookkeeping: one epoch, so the same rate and accuracy.
        _, _, _, _, _, epoch_rate, _, epoch_accuracy, _ = per_epoch[name]
        assert images_per_second == epoch_rate and float(accuracy) == float(epoch_accuracy)
        assert 0.0 <= float(accuracy) <= 1.0 and accuracy == worst
        # 2,000 images for one epoch cannot honestly reach 99%.
        assert reached == "not reached in 1 epoch", name
    assert "speedrun: throughput" in result.stdout


def _table_rows(stdout: str) -> dict[int, list[list[str]]]:
    """Data rows of the printed Markdown tables, keyed by their number of columns."""
    tables: dict[int, list[list[str]]] = {}
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] in (*train_speed.RECIPE_ARMS, train_speed.REFERENCE):
            tables.setdefault(len(cells), []).append(cells)
    return tables


def test_train_loop_quick_finds_both_loops_identical() -> None:
    result = subprocess.run([sys.executable, str(BENCHMARKS / "train_loop.py"), "--quick", "--threads", "1"],
                            capture_output=True, text=True, timeout=120, cwd=BENCHMARKS.parent)
    assert result.returncode == 0, result.stderr
    assert "weights bit-identical: True" in result.stdout


def test_train_speed_rejects_bad_threads() -> None:
    result = subprocess.run([sys.executable, str(BENCHMARKS / "train_speed.py"), "--threads", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--threads 0: must be at least 1" in result.stderr


def test_reference_transforms_match_lenet5_preprocessing() -> None:
    """The shared test judge may only stand in for the reference pipeline if both agree."""
    pixels = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    transform = train_speed.Compose([train_speed.ToTensor(), train_speed.Normalize(0.5, 0.5)])
    per_sample = torch.stack([transform(Image.fromarray(p.numpy(), mode="L")) for p in pixels])
    assert per_sample.shape == (5, 1, 28, 28) and per_sample.dtype == torch.float32
    torch.testing.assert_close(per_sample, Normalization("[-1,1]", 0.5, 0.5)(pixels))
    assert float(per_sample.min()) >= -1.0 and float(per_sample.max()) <= 1.0


def test_dataset_yields_what_torchvision_mnist_would() -> None:
    images = torch.from_numpy(np.arange(2 * 28 * 28, dtype=np.int64).reshape(2, 28, 28) % 256).to(torch.uint8)
    dataset = train_speed.PerSampleMnist(images, torch.tensor([3, 7]), train_speed.ToTensor())
    image, label = dataset[1]
    assert len(dataset) == 2 and label == 7 and isinstance(label, int)
    torch.testing.assert_close(image[0], images[1].float() / 255)


def _arm(accuracies: list[float], seconds: list[float]) -> object:
    arm = train_speed.Arm("x")
    for number, (accuracy, time) in enumerate(zip(accuracies, seconds), start=1):
        arm.epochs.append(train_speed.Epoch(number, time, 1000, 0.1, accuracy))
    return arm


def test_arm_counts_seconds_up_to_the_first_epoch_at_target() -> None:
    arm = _arm([0.97, 0.991, 0.985, 0.993], [10.0, 20.0, 30.0, 40.0])
    assert arm.reached_epoch == 2
    assert arm.seconds_to_target == pytest.approx(30.0)
    assert arm.mean_images_per_second == pytest.approx(4000 / 100.0)


def test_arm_that_never_reaches_target_says_so() -> None:
    arm = _arm([0.95, 0.98], [1.0, 1.0])
    assert arm.reached_epoch is None and arm.seconds_to_target is None
    assert "not reached in 2 epochs" in train_speed.summary_table([arm])


def test_seeds_give_mean_std_and_the_worst_seed() -> None:
    arms = [_arm([0.98, 0.992], [1.0, 1.0]), _arm([0.99, 0.994], [2.0, 2.0]), _arm([0.97, 0.988], [1.0, 1.0])]
    row = train_speed.summary_table(arms).splitlines()[2]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1] == "3" and cells[4] == "2 of 3 seeds"
    assert cells[6] == "0.9913 +- 0.0031" and cells[7] == "0.9880"


def test_sdlm_batch_quick_prints_one_row_per_batch_size() -> None:
    result = subprocess.run([sys.executable, str(BENCHMARKS / "sdlm_batch.py"), "--quick", "--batches", "1", "4"],
                            capture_output=True, text=True, timeout=300, cwd=BENCHMARKS.parent)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row.split("|")[1].strip() for row in rows] == ["1", "4"]
    assert rows[0].split("|")[4].strip() == "0.0%"  # batch 1 is its own reference


@pytest.mark.slow  # torchrun launches and a PostgreSQL server: about a minute
def test_scale_quick_prints_both_tables() -> None:
    result = subprocess.run([sys.executable, str(BENCHMARKS / "scale.py"), "--quick"], capture_output=True,
                            text=True, timeout=600, cwd=BENCHMARKS.parent)
    assert result.returncode == 0, result.stderr
    assert "| 1 process x 2 threads | 1 x 2 |" in result.stdout and "| 1 process x 1 thread | 1 x 1 |" in result.stdout
    assert "| DDP 2 processes x 1 thread | 2 x 1 |" in result.stdout
    assert "| 2 (separate processes) | 1 |" in result.stdout or "Studies: skipped" in result.stdout
