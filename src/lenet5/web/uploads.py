"""Read an uploaded image out of a request without trusting its size or type.

``POST /api/predict`` takes the image as the raw body (``image/png`` or ``image/jpeg``) or as
the ``file`` field of a ``multipart/form-data`` form, which is what an HTML file input sends.
The body is read in chunks and refused as soon as it passes the size cap, so an oversized
upload never sits whole in memory; a sender that stalls longer than the upload timeout gets
408, and one that hangs up mid-upload is one log line.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request

from .limits import DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_UPLOAD_TIMEOUT_S  # noqa: F401 (re-exported)

RAW_IMAGE_TYPES = ("image/png", "image/jpeg")
MULTIPART = "multipart/form-data"
FILE_FIELD = "file"
# Room for the multipart envelope (boundaries, part headers) on top of the file itself.
MULTIPART_OVERHEAD_BYTES = 16 * 1024

log = logging.getLogger("lenet5.web")


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


async def read_upload(request: Request, max_bytes: int, timeout: float = DEFAULT_UPLOAD_TIMEOUT_S) -> Upload:
    """The image bytes in ``request``, raw or multipart.

    Raises:
        UploadError: 415 for another content type, 413 past ``max_bytes``, 400 for an empty
            body or a form without a ``file`` field, 408 when no data came for ``timeout``
            seconds, 400 (that nobody receives) when the client hung up.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in RAW_IMAGE_TYPES:
        data = await _read_capped(request, max_bytes, timeout)
        return _non_empty(Upload(data, "request body"))
    if media_type == MULTIPART:
        return _non_empty(await _read_form_file(request, max_bytes, timeout))
    shown = media_type or "missing"
    raise UploadError(415, f"Content-Type {shown} is not accepted: send image/png or image/jpeg as the body, "
                           f"or {MULTIPART} with the image in a '{FILE_FIELD}' field")


async def _read_capped(request: Request, max_bytes: int, timeout: float) -> bytes:
    """The whole body, refused with 413 the moment it passes ``max_bytes``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks, size = [], 0
    stream = request.stream()
    try:
        while (chunk := await _next_chunk(stream, timeout)) is not None:
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(max_bytes)
            chunks.append(chunk)
    except ClientDisconnect:
        expected = f"{int(declared):,}" if declared.isdigit() else "an unknown number of"
        log.warning("client %s hung up mid-upload after %s of %s bytes", _peer(request), f"{size:,}", expected)
        raise UploadError(400, "the client disconnected before the upload was complete") from None
    return b"".join(chunks)


async def _next_chunk(stream: AsyncIterator[bytes], timeout: float) -> bytes | None:
    """The next piece of the body (None at its end); 408 when none comes within ``timeout`` s."""
    try:
        if sys.version_info < (3, 11):  # no asyncio.timeout yet: wait_for wraps the read in a task
            return await asyncio.wait_for(anext(stream), timeout)
        async with asyncio.timeout(timeout):
            return await anext(stream)
    except StopAsyncIteration:
        return None
    except asyncio.TimeoutError:
        raise UploadError(408, f"the upload stalled: no data for {timeout:g} s") from None


def _peer(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "(unknown)"


async def _read_form_file(request: Request, max_bytes: int, timeout: float) -> Upload:
    body = await _read_capped(request, max_bytes + MULTIPART_OVERHEAD_BYTES, timeout)

    async def replay() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    # A fresh Request over the already-capped bytes: the form parser never reads the socket.
    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=8, max_part_size=max_bytes)
    except ValueError as exc:  # python-multipart's parse errors; older releases let them escape Starlette
        raise UploadError(400, f"malformed {MULTIPART} body ({exc})") from None
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
