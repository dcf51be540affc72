"""What one server process holds at most: the limits behind ``lenet5 serve``'s flags, and the memory formula.

Kept free of FastAPI so ``lenet5 serve --help`` can show the defaults without importing it.
"""

from __future__ import annotations

DEFAULT_MAX_UPLOAD_BYTES = 4 * 1024 * 1024  # a phone photo fits; a denial-of-service body does not
DEFAULT_MAX_IN_FLIGHT = 32  # per process: at ~2 ms a drawing, a full queue is ~60 ms of work
DEFAULT_UPLOAD_TIMEOUT_S = 10.0  # the longest wait for the next piece of a body before answering 408
RETRY_AFTER_S = 1  # what a 503 tells the client to wait
# While one image is decoded and preprocessed, a process holds it as RGB(A), its grayscale
# copy and, for a transparent image, the white canvas and the composite: up to 14 bytes per
# pixel for a transparent PNG, 4 for a photo (RGB + gray). The working copies are at most
# 1024 x 1024 (the recipe's working size) in float32.
DECODE_BYTES_PER_PIXEL = 14
WORKING_BYTES = 16 * 2**20


def peak_memory_bound(workers: int, base_bytes: int, max_in_flight: int, max_upload_bytes: int,
                      max_pixels: int) -> int:
    """The most memory ``lenet5 serve`` can hold, in bytes.

    Each of ``workers`` processes holds its baseline ``base_bytes`` (Python, torch, the model),
    the bodies of up to ``max_in_flight`` uploads of at most ``max_upload_bytes`` each, and one
    decoded image of at most ``max_pixels`` with its working copies (decoding runs one image
    at a time per process).
    """
    bodies = max_in_flight * max_upload_bytes
    decode = DECODE_BYTES_PER_PIXEL * max_pixels + WORKING_BYTES
    return workers * (base_bytes + bodies + decode)
