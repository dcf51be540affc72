"""Inference speed, PyTorch vs ONNX Runtime: images/s at batch 1, 64 and 1000 on 2 CPU threads.

Times the model alone on already-normalised MNIST test images (preprocessing is the same
shared code for both backends), then the whole path from PNG bytes (decode, the MNIST
recipe, PyTorch) for 28x28 MNIST PNGs and for 280x280 drawings like the web page's canvas,
with the decode-and-preprocess part alone on one thread beside each.

    python benchmarks/predict_speed.py [--weights RUN_OR_FILE] [--threads 2] [--seconds 2]

Without --weights it uses what `lenet5 predict` would: the newest run, else the pretrained
weights (speed does not depend on the weights' values).
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

from lenet5.data.mnist import load_split
from lenet5.export import export_onnx, onnx_session
from lenet5.predict import Predictor
from lenet5.preprocess import image_to_mnist
from lenet5.weights import load_model, resolve_weights

BATCH_SIZES = (1, 64, 1000)
END_TO_END_IMAGES = 256  # one Predictor batch
CANVAS_SIZE = 280  # the web page's drawing pad


def images_per_second(run_batch: Callable[[], object], batch_size: int, seconds: float) -> float:
    """Repeat ``run_batch`` for about ``seconds`` after a warm-up; return images per second."""
    return timed(run_batch, batch_size, seconds)[0]


def timed(run_batch: Callable[[], object], batch_size: int, seconds: float) -> tuple[float, float]:
    """(images per second, microseconds of process CPU per image) over the same timing window.

    On a shared machine the wall clock also counts the time spent waiting for a core; the
    CPU time counts only the work (all of this process's threads).
    """
    for _ in range(3):
        run_batch()
    count, start, cpu = 0, time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - start) < seconds:
        run_batch()
        count += 1
    images = count * batch_size
    return images / elapsed, (time.process_time() - cpu) / images * 1e6


def png_bytes(images: list[Image.Image]) -> list[bytes]:
    encoded = []
    for image in images:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    return encoded


def end_to_end(predictor: Predictor, label: str, pngs: list[bytes], seconds: float) -> None:
    """Whole-path images/s from PNG bytes, and the decode-and-preprocess part alone (one thread)."""
    speed, cpu = timed(lambda: predictor.predict(pngs), len(pngs), seconds)
    alone, alone_cpu = timed(lambda: [image_to_mnist(png) for png in pngs], len(pngs), seconds)
    print(f"end to end from PNG bytes, {label}, batch {len(pngs)}: {speed:,.0f} img/s, {cpu:.0f} us CPU per "
          f"image (decode + preprocess alone: {alone:,.0f} img/s, {alone_cpu:.0f} us CPU per image)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="run folder or .safetensors (default: newest run, else the pretrained weights)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0, help="timing window per measurement")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_model(resolve_weights(args.weights, pretrained=True))
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
    predictor = Predictor(loaded, normalization=loaded.normalization, path=loaded.path)
    digits = images[:END_TO_END_IMAGES].numpy()
    end_to_end(predictor, "28x28 MNIST digits", png_bytes([Image.fromarray(d) for d in digits]), args.seconds)
    drawings = [Image.fromarray(255 - d).resize((CANVAS_SIZE, CANVAS_SIZE), Image.Resampling.BILINEAR)
                for d in digits]  # dark ink on a white canvas, as the page sends them
    end_to_end(predictor, f"{CANVAS_SIZE}x{CANVAS_SIZE} drawings", png_bytes(drawings), args.seconds)

if __name__ == "__main__":
    main()
