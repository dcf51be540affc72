"""The fast MNIST recipe against the one it replaced (``reference_preprocess.py``).

A corpus of drawings, photos, scans and the other tests' fixtures goes through both; the
28x28 outputs must agree within one grey level, and an image one calls blank the other must
call blank too.
"""

from __future__ import annotations

import io
from typing import Iterator

import numpy as np
import pytest
import reference_preprocess
from drawn_digits import draw_digit, photo_like, with_alpha, with_exif_rotation
from PIL import Image, ImageDraw, ImageFilter

from lenet5.data.mnist import load_split
from lenet5.preprocess import NoDigitError, open_image, to_mnist

GREY_LEVELS_APART = 1


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return open_image(buffer.getvalue())[0]


def drawings() -> Iterator[tuple[str, Image.Image]]:
    """Canvas drawings as the page sends them (opaque RGBA), plus grey and transparent ones."""
    for digit in range(10):
        yield f"canvas {digit}", draw_digit(digit, canvas=(280, 280)).convert("RGBA")
        yield f"grey {digit}", draw_digit(digit, canvas=(281, 197), ink=0, paper=255)
        yield f"transparent {digit}", with_alpha(draw_digit(digit, canvas=(300, 240)))
    yield "light strokes on transparent", Image.merge("RGBA", [Image.new("L", (200, 200), 250)] * 3
                                                      + [draw_digit(7, canvas=(200, 200)).point(lambda v: 255 - v)])
    yield "off-centre corner", draw_digit(4, canvas=(800, 600), box=(20, 30, 90, 140))
    yield "tight crop", draw_digit(8, canvas=(100, 130), box=(10, 6, 80, 118))
    yield "palette", draw_digit(2, canvas=(280, 280)).convert("P")
    yield "bilevel", draw_digit(5, canvas=(280, 280)).convert("1")


def photos() -> Iterator[tuple[str, Image.Image]]:
    """Phone-photo-like digits: shading, grain, colour, JPEG, some of them big."""
    for digit in range(10):
        canvas = (900 + 37 * digit, 700 + 11 * digit)
        yield f"photo {digit}", photo_like(draw_digit(digit, canvas=canvas, mode="RGB"), seed=digit)
        yield f"photo jpeg {digit}", _jpeg(photo_like(draw_digit(digit, canvas=canvas), seed=digit).convert("RGB"),
                                           quality=40 + 5 * digit)
    for digit in (1, 6):
        yield f"12 MP photo {digit}", photo_like(draw_digit(digit, canvas=(4000, 3000), mode="RGB"), seed=digit)
    yield "exif rotated", open_image(with_exif_rotation(draw_digit(9, mode="RGB")))[0]
    yield "small photo", photo_like(draw_digit(3, canvas=(60, 45)), seed=3)
    yield "tiny", photo_like(draw_digit(0, canvas=(9, 7)), seed=0)


def scans() -> Iterator[tuple[str, Image.Image]]:
    """Flatbed scans: paper grain, a shadow along one edge, a speck of dust, blur, light-on-dark."""
    rng = np.random.default_rng(11)
    for digit in range(10):
        page = np.asarray(draw_digit(digit, canvas=(850, 1100), box=(300, 400, 200, 300)), dtype=np.float64)
        page = page + rng.normal(0, 3, page.shape)
        page[:, :120] -= np.linspace(90, 0, 120)  # the book's spine
        image = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8))
        if digit % 3 == 0:
            ImageDraw.Draw(image).ellipse((700, 150, 706, 156), fill=30)
        if digit % 2:
            image = image.filter(ImageFilter.GaussianBlur(2))
        yield f"scan {digit}", image
    yield "light-on-dark scan", Image.eval(draw_digit(6, canvas=(500, 400)), lambda v: 255 - v)


def fixtures() -> Iterator[tuple[str, Image.Image]]:
    """MNIST itself (28x28 passes through), blank images, and a faint smudge."""
    images = load_split("test")[0][:20].numpy()
    for index, image in enumerate(images):
        yield f"mnist {index}", Image.fromarray(image)
        yield f"mnist inverted {index}", Image.fromarray(255 - image)
        yield f"mnist upscaled {index}", Image.fromarray(image).resize((280, 280), Image.Resampling.BILINEAR)
    yield "blank white", Image.new("L", (280, 280), 255)
    yield "blank noise", photo_like(Image.new("L", (300, 300), 200), seed=5)
    yield "faint smudge", Image.eval(draw_digit(1, canvas=(280, 280)), lambda v: 200 + v // 10)


CORPUS = [*drawings(), *photos(), *scans(), *fixtures()]


def _run(recipe, image: Image.Image) -> np.ndarray | None:
    try:
        return recipe(image.copy())
    except NoDigitError:
        return None


@pytest.mark.parametrize("kind, image", CORPUS, ids=[kind for kind, _ in CORPUS])
def test_fast_recipe_matches_the_reference(kind, image):
    expected = _run(reference_preprocess.to_mnist, image)
    actual = _run(to_mnist, image)
    if expected is None or actual is None:
        assert expected is None and actual is None, f"{kind}: only one of the two found no digit"
        return
    assert actual.dtype == np.uint8 and actual.shape == (28, 28)
    difference = np.abs(actual.astype(int) - expected.astype(int))
    assert difference.max() <= GREY_LEVELS_APART, f"{kind}: {difference.max()} grey levels apart"


def test_the_corpus_covers_both_outcomes_and_every_path():
    outcomes = [_run(to_mnist, image) is None for _, image in CORPUS]
    assert sum(outcomes) >= 2 and len(outcomes) - sum(outcomes) >= 120  # blank ones and many digits
