"""Inference speed, PyTorch vs ONNX Runtime: images/s at batch 1, 64 and 1000 on 2 CPU threads.

Times the model alone on already-normalised MNIST test images (preprocessing is the same
shared code for both backends), plus one line for the whole path from PNG bytes.

    python benchmarks/predict_speed.py [--weights RUN_OR_FILE] [--threads 2] [--seconds 2]

Without --weights it uses the newest run, or an untrained LeNet-5 if there is none (speed
does not depend on the weights' values).
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
from PIL import Image

from lenet5.config import TrainConfig
from lenet5.data.mnist import load_split
from lenet5.errors import WeightsError
from lenet5.export import export_onnx, onnx_session
from lenet5.model import LeNet5
from lenet5.predict import Predictor
from lenet5.preprocess import Normalization
from lenet5.weights import LoadedModel, load_model

BATCH_SIZES = (1, 64, 1000)


def images_per_second(run_batch: Callable[[], object], batch_size: int, seconds: float) -> float:
    """Repeat ``run_batch`` for about ``seconds`` after a warm-up; return images per second."""
    for _ in range(3):
        run_batch()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        run_batch()
        count += 1
    return count * batch_size / elapsed


def model_to_time(weights: str | None) -> LoadedModel:
    try:
        return load_model(weights)
    except WeightsError:
        if weights is not None:
            raise
        config = TrainConfig()
        return LoadedModel(LeNet5.from_config(config.model).eval(), config, Normalization.fit("[-1,1]", None),
                           {}, Path("untrained"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="run folder or .safetensors (default: newest run)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0, help="timing window per measurement")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = model_to_time(args.weights)
    images = load_split("test")[0]
    inputs = loaded.normalization(images)
    with tempfile.TemporaryDirectory() as folder:
        session = onnx_session(export_onnx(loaded, Path(folder) / "model.onnx"), threads=args.threads)
    print(f"weights: {loaded.path}   threads: {args.threads}   torch {torch.__version__}")
    print(f"{'batch':>6} {'PyTorch img/s':>14} {'ONNX Runtime img/s':>19} {'ORT / PyTorch':>14}")
    for batch_size in BATCH_SIZES:
        batch = inputs[:batch_size].contiguous()
        array = batch.numpy()

        def torch_batch() -> object:
            with torch.inference_mode():
                return loaded.model(batch)

        torch_speed = images_per_second(torch_batch, batch_size, args.seconds)
        onnx_speed = images_per_second(lambda: session.run(None, {"images": array}), batch_size, args.seconds)
        print(f"{batch_size:>6} {torch_speed:>14,.0f} {onnx_speed:>19,.0f} {onnx_speed / torch_speed:>13.2f}x")
    pngs = []
    for image in images[:256].numpy():
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    predictor = Predictor(loaded, normalization=loaded.normalization, path=loaded.path)
    speed = images_per_second(lambda: predictor.predict(pngs), len(pngs), args.seconds)
    print(f"end to end from PNG bytes (decode + preprocess + PyTorch), batch {len(pngs)}: {speed:,.0f} img/s")


if __name__ == "__main__":
    main()
