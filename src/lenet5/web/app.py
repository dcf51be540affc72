"""The FastAPI application: the draw-a-digit page, the JSON API and offline API docs.

The model is loaded once, by whoever calls :func:`create_app`, and shared by every request;
inference runs in the thread pool so a slow upload never stalls the event loop. Every refusal
is a 4xx with ``{"error": "<what is wrong>"}``; a 5xx means a bug.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import Lenet5Error
from ..images import ImageTooLargeError
from ..predict import Predictor
from ..preprocess import MAX_IMAGE_PIXELS, NoDigitError
from .schemas import ErrorBody, Health, ModelInfo, PredictBody
from .service import DigitService, analysis_payload
from .uploads import (
    DEFAULT_MAX_UPLOAD_BYTES,
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
    422: {"model": ErrorBody, "description": "an image with no digit in it, e.g. an empty canvas"},
}
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
               max_pixels: int = MAX_IMAGE_PIXELS) -> FastAPI:
    """The web app around an already loaded ``predictor``.

    Args:
        predictor: from :func:`lenet5.predict.load`; shared by all requests.
        max_upload_bytes: larger request bodies get 413 before they are read whole.
        max_pixels: images with more pixels get 413 before they are decoded.
    """
    service = DigitService(predictor, max_pixels=max_pixels)
    model_info = service.model_info()  # computed once: it cannot change while serving
    # FastAPI's own /docs pulls Swagger UI from a CDN; ours is a local page over /openapi.json.
    app = FastAPI(title="LeNet-5 digit recogniser", version="1", docs_url=None, redoc_url=None,
                  description="Draw or upload a handwritten digit; LeNet-5 says which it is.")
    _add_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(STATIC / "docs.html", headers=PAGE_HEADERS)

    @app.get("/healthz", summary="Liveness check", response_model=Health)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/model", summary="Architecture, parameter count, training config and test accuracy",
             response_model=ModelInfo)
    def model() -> dict[str, Any]:
        return model_info

    @app.post("/api/predict", summary="Predict the digit in a PNG or JPEG image", response_model=PredictBody,
              responses=ERROR_RESPONSES, openapi_extra=PREDICT_REQUEST_BODY)
    async def predict(request: Request) -> dict[str, Any]:
        upload = await read_upload(request, max_upload_bytes)
        analysis = await run_in_threadpool(service.analyse, upload.data, upload.name)
        return analysis_payload(analysis)

    return app


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
