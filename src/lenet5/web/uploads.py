"""Read an uploaded image out of a request without trusting its size or type.

``POST /api/predict`` takes the image as the raw body (``image/png`` or ``image/jpeg``) or as
the ``file`` field of a ``multipart/form-data`` form, which is what an HTML file input sends.
The body is read in chunks and refused as soon as it passes the size cap, so an oversized
upload never sits whole in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.requests import Request

RAW_IMAGE_TYPES = ("image/png", "image/jpeg")
MULTIPART = "multipart/form-data"
FILE_FIELD = "file"
DEFAULT_MAX_UPLOAD_BYTES = 4 * 1024 * 1024  # a phone photo fits; a denial-of-service body does not
# Room for the multipart envelope (boundaries, part headers) on top of the file itself.
MULTIPART_OVERHEAD_BYTES = 16 * 1024


class UploadError(Exception):
    """A request the API refuses before looking at pixels; carries its HTTP status."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@dataclass(frozen=True)
class Upload:
    data: bytes
    name: str  # for error messages: the uploaded file's name, or "request body"


async def read_upload(request: Request, max_bytes: int) -> Upload:
    """The image bytes in ``request``, raw or multipart.

    Raises:
        UploadError: 415 for another content type, 413 past ``max_bytes``, 400 for an empty
            body or a form without a ``file`` field.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in RAW_IMAGE_TYPES:
        data = await _read_capped(request, max_bytes)
        return _non_empty(Upload(data, "request body"))
    if media_type == MULTIPART:
        return _non_empty(await _read_form_file(request, max_bytes))
    shown = media_type or "missing"
    raise UploadError(415, f"Content-Type {shown} is not accepted: send image/png or image/jpeg as the body, "
                           f"or {MULTIPART} with the image in a '{FILE_FIELD}' field")


async def _read_capped(request: Request, max_bytes: int) -> bytes:
    """The whole body, refused with 413 the moment it passes ``max_bytes``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_form_file(request: Request, max_bytes: int) -> Upload:
    body = await _read_capped(request, max_bytes + MULTIPART_OVERHEAD_BYTES)

    async def replay() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    # A fresh Request over the already-capped bytes: the form parser never reads the socket.
    form = await Request(request.scope, replay).form(max_files=1, max_fields=8, max_part_size=max_bytes)
    try:
        field = form.get(FILE_FIELD)
        if not isinstance(field, UploadFile):
            raise UploadError(400, f"the {MULTIPART} body has no file in a '{FILE_FIELD}' field")
        data = await field.read()
        if len(data) > max_bytes:
            raise _too_large(max_bytes)
        return Upload(data, field.filename or "uploaded file")
    finally:
        await form.close()


def _non_empty(upload: Upload) -> Upload:
    if not upload.data:
        raise UploadError(400, f"{upload.name} is empty: send a PNG or JPEG image")
    return upload


def _too_large(max_bytes: int) -> UploadError:
    return UploadError(413, f"upload is larger than the {max_bytes / 2**20:g} MiB limit ({max_bytes} bytes)")
