"""What one server process holds at most: the limits behind ``lenet5 serve``'s flags, and the memory formula.

Kept free of FastAPI so ``lenet5 serve --help`` can show the defaults without importing it.
"""

from __future__ import annotations

DEFAULT_MAX_UPLOAD_BYTES = 4 * 1024 * 1024  # a phone photo fits; a denial-of-service body does not
DEFAULT_MAX_IN_FLIGHT = 32  # per process: at ~2 ms a drawing, a full queue is ~60 ms of work
DEFAULT_UPLOAD_TIMEOUT_S = 10.0  # the longest wait for the next piece of a body before answering 408
RETRY_AFTER_S = 1  # what a 503 tells the client to wait
# Images up to this many pixels (the page's 280x280 canvas, scans of a digit) are analysed on
# the event loop itself: about 1.5 ms of work, less than handing it to the prediction thread
# costs. Bigger ones go to that thread, so a phone photo never holds up the loop.
INLINE_PIXELS = 512 * 512
# While one image is decoded and preprocessed, a process holds it as PIL stores it (4 bytes
# a pixel for RGB or RGBA), its grayscale copy and, for a transparent image, a white canvas and
# the composite. Measured above the idle RSS: 5.5 bytes a pixel for a 12 MP JPEG photo, 11.4
# for a transparent 12 MP PNG. The working copies are at most 1024 x 1024 (the recipe's working
# size) in float32.
DECODE_BYTES_PER_PIXEL = 14
WORKING_BYTES = 16 * 2**20
RESIZE_CACHE_BYTES = 12 * 2**20  # the recipe's cached resize matrices (lenet5.resample), when full


def peak_memory_bound(idle_bytes: int, workers: int, max_in_flight: int, max_upload_bytes: int,
                      max_pixels: int) -> int:
    """The most memory ``lenet5 serve`` can hold, in bytes.

    On top of what the whole server holds at rest (``idle_bytes``: the supervisor and each
    worker's Python, torch and model), each of ``workers`` processes holds the bodies of up to
    ``max_in_flight`` uploads of at most ``max_upload_bytes`` each, one decoded image of at most
    ``max_pixels`` with its working copies (the prediction thread decodes one at a time), one
    of at most INLINE_PIXELS on the event loop, and the recipe's cache of resize matrices.
    """
    bodies = max_in_flight * max_upload_bytes
    decode = DECODE_BYTES_PER_PIXEL * (max_pixels + INLINE_PIXELS) + 2 * WORKING_BYTES + RESIZE_CACHE_BYTES
    return idle_bytes + workers * (bodies + decode)
