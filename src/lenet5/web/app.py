"""The FastAPI application: the draw-a-digit page, the JSON API and offline API docs.

The model is loaded once, by whoever calls :func:`create_app`, and shared by every request.
Bodies are read on the event loop, so a slow upload never stalls anyone else. A small image
is then analysed on the loop; a big one on one worker thread per process (``admission.py``,
which also bounds how many requests a process holds). Every refusal is a 4xx with
``{"error": "<what is wrong>"}``, or 503 with Retry-After when the server is full; any other
5xx means a bug.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import Lenet5Error
from ..images import ImageTooLargeError
from ..predict import Predictor
from ..preprocess import MAX_IMAGE_PIXELS, NoDigitError
from .admission import DEFAULT_MAX_IN_FLIGHT, Admission
from .schemas import ErrorBody, Health, ModelInfo, PredictBody
from .service import DigitService, analysis_payload
from .uploads import (
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_UPLOAD_TIMEOUT_S,
    FILE_FIELD,
    MULTIPART,
    RAW_IMAGE_TYPES,
    UploadError,
    read_upload,
)

STATIC = Path(__file__).parent / "static"
# The page loads nothing but its own files; the browser enforces it, not just our good intentions.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "empty body, not an image, or a form without a file"},
    413: {"model": ErrorBody, "description": "upload over the size cap or image over the pixel cap"},
    415: {"model": ErrorBody, "description": "a content type other than PNG, JPEG or multipart"},
    408: {"model": ErrorBody, "description": "the upload stalled: no data for the upload timeout (10 s by default)"},
    422: {"model": ErrorBody, "description": "an image with no digit in it, e.g. an empty canvas; or a bad `maps`"},
    503: {"model": ErrorBody, "description": "the server is full; the Retry-After header says when to try again",
          "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}},
}
MAPS_QUERY = Query(True, description="1 (default): include the 28x28 input and the conv1 feature maps as PNG "
                                     "data URLs; 0: only the digit, its probabilities and the notes (cheaper)")
# The body is read by hand (to cap its size), so describe it for the OpenAPI schema here.
IMAGE_BODY = {"type": "string", "format": "binary"}
PREDICT_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            **{media_type: {"schema": IMAGE_BODY} for media_type in RAW_IMAGE_TYPES},
            MULTIPART: {"schema": {"type": "object", "required": [FILE_FIELD],
                                   "properties": {FILE_FIELD: IMAGE_BODY}}},
        },
    }
}


def create_app(predictor: Predictor, *, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               max_pixels: int = MAX_IMAGE_PIXELS, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
               upload_timeout: float = DEFAULT_UPLOAD_TIMEOUT_S) -> FastAPI:
    """The web app around an already loaded ``predictor``.

    Args:
        predictor: from :func:`lenet5.predict.load`; shared by all requests.
        max_upload_bytes: larger request bodies get 413 before they are read whole.
        max_pixels: images with more pixels get 413 before they are decoded.
        max_in_flight: predictions this process holds at once; the next one gets 503 at once.
        upload_timeout: seconds to wait for the next piece of a body before answering 408.
    """
    service = DigitService(predictor, max_pixels=max_pixels)
    admission = Admission(max_in_flight)
    model_info = service.model_info()  # computed once: it cannot change while serving

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        admission.close()

    # FastAPI's own /docs pulls Swagger UI from a CDN; ours is a local page over /openapi.json.
    app = FastAPI(title="LeNet-5 digit recogniser", version="1", docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Draw or upload a handwritten digit; LeNet-5 says which it is.")
    app.state.admission = admission
    _add_error_handlers(app)
    app.mount("/static", PageFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(STATIC / "docs.html", headers=PAGE_HEADERS)

    @app.get("/healthz", summary="Liveness check", response_model=Health)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/model", summary="Architecture, parameter count, training config and test accuracy",
             response_model=ModelInfo)
    async def model() -> dict[str, Any]:
        return model_info

    @app.post("/api/predict", summary="Predict the digit in a PNG or JPEG image", response_model=PredictBody,
              response_model_exclude_none=True, responses=ERROR_RESPONSES, openapi_extra=PREDICT_REQUEST_BODY)
    async def predict(request: Request, maps: bool = MAPS_QUERY) -> Response:
        if not admission.try_enter():
            return admission.busy()
        try:
            upload = await read_upload(request, max_upload_bytes, upload_timeout)
            analysis = await admission.run(service.analyse, upload.data, upload.name, maps,
                                           inline=service.is_small(upload.data))
        finally:
            admission.leave()
        # Built here rather than by response_model: the payload is already plain JSON.
        return Response(json.dumps(analysis_payload(analysis)), media_type="application/json")

    return app


class PageFiles(StaticFiles):
    """The static files, with the page's security headers on every HTML file among them."""

    def file_response(self, full_path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(full_path, *args, **kwargs)
        if str(full_path).endswith(".html"):
            response.headers.update(PAGE_HEADERS)
        return response


def _add_error_handlers(app: FastAPI) -> None:
    """Turn every refusal into ``{"error": ...}`` with a 4xx status."""

    def error(status_code: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status_code)

    @app.exception_handler(UploadError)
    async def upload_error(request: Request, exc: UploadError) -> JSONResponse:
        return error(exc.status_code, exc.message)

    @app.exception_handler(Lenet5Error)
    async def image_error(request: Request, exc: Lenet5Error) -> JSONResponse:
        return error(image_error_status(exc), str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return error(422, problems or "invalid request")


def image_error_status(exc: Lenet5Error) -> int:
    """The HTTP status for an image the preprocessing refused."""
    if isinstance(exc, NoDigitError):
        return 422
    if isinstance(exc, ImageTooLargeError):
        return 413
    return 400
