"""Preprocessing speed: the MNIST recipe (``to_mnist``) before and after it was made fast, side by side.

"Before" is ``tests/reference_preprocess.py``, the recipe as it was (float64, 16 percentile
calls, numpy's histogram); "after" is ``lenet5.preprocess``. Both run on the same decoded
images, alternately, so machine noise hits both alike. Prints the median milliseconds per
image and the speed-up, on one thread.

    python benchmarks/preprocess_speed.py [--repeats 200] [--photo-repeats 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))
import reference_preprocess  # noqa: E402
from drawn_digits import draw_digit, photo_like  # noqa: E402

from lenet5.data.mnist import load_split  # noqa: E402
from lenet5.preprocess import to_mnist  # noqa: E402

CANVAS = (280, 280)  # the web page's drawing pad
PHOTO = (4000, 3000)  # a 12-megapixel phone photo


def cases() -> dict[str, list[Image.Image]]:
    """A few images of each kind; the timing cycles through them."""
    digits = load_split("test")[0][:8].numpy()
    return {
        "280x280 canvas drawing (RGBA)": [draw_digit(d, canvas=CANVAS).convert("RGBA") for d in range(8)],
        "280x280 MNIST digit, dark on white": [Image.fromarray(255 - d).resize(CANVAS, Image.Resampling.BILINEAR)
                                               for d in digits],
        "12 MP photo (RGB)": [photo_like(draw_digit(d, canvas=PHOTO, mode="RGB"), seed=d).convert("RGB")
                              for d in (3, 5)],
    }


def median_ms(recipe: Callable[[Image.Image], np.ndarray], images: list[Image.Image],
              repeats: int) -> tuple[float, float]:
    """Median (wall, CPU) milliseconds per call."""
    wall, cpu = [], []
    for i in range(repeats):
        image = images[i % len(images)]
        start, start_cpu = time.perf_counter(), time.process_time()
        recipe(image)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per small image kind and recipe")
    parser.add_argument("--photo-repeats", type=int, default=10, help="timed calls for the 12 MP photos")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the recipe's resizes are torch products: keep them to the one thread measured
    print(f"{'image':<36} {'before ms':>9} {'after ms':>9} {'speed-up':>8} {'before CPU ms':>13} {'after CPU ms':>12}")
    for kind, images in cases().items():
        repeats = args.photo_repeats if "MP" in kind else args.repeats
        for image in images:  # warm-up, and the check that both still agree
            assert np.abs(to_mnist(image).astype(int) - reference_preprocess.to_mnist(image)).max() <= 1
        before, after = [], []
        for _ in range(3):  # alternate, so a noisy moment hits both
            before.append(median_ms(reference_preprocess.to_mnist, images, max(1, repeats // 3)))
            after.append(median_ms(to_mnist, images, max(1, repeats // 3)))
        (old, old_cpu), (new, new_cpu) = [tuple(statistics.median(column) for column in zip(*runs))
                                          for runs in (before, after)]
        print(f"{kind:<36} {old:>9.2f} {new:>9.2f} {old / new:>7.1f}x {old_cpu:>13.2f} {new_cpu:>12.2f}")

if __name__ == "__main__":
    main()
