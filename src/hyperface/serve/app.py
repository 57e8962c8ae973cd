"""The HTTP service (Starlette): ``POST /analyze``, ``GET /health`` and the page at ``GET /``.

``POST /analyze`` takes one image, as a multipart file (any field; ``file`` by convention) or as the
raw request body, and answers the JSON object ``hyperface analyze`` writes for it (``input``: the
upload's file name, or ``"upload"`` for a raw body). Analyzer options come as query parameters
(:mod:`hyperface.serve.options`). Every refusal is JSON ``{"error": MESSAGE}`` with a 4xx status that
says which: 400 a bad request or option, 413 a body over the size limit or an image over the pixel
limit (a decompression bomb), 415 bytes that are not an image; 503 when the pool is full. An
unexpected failure is a logged 500 for that request only.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from hyperface import __version__
from hyperface.analysis_lines import ImageReadError, ImageTooLargeError
from hyperface.serve.options import OPTIONS, OptionError, parse_options
from hyperface.serve.page import page_html
from hyperface.serve.pool import AnalyzerPool, PoolFull

__all__ = ["create_app", "DEFAULT_MAX_UPLOAD_BYTES", "RAW_UPLOAD_NAME"]

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
RAW_UPLOAD_NAME = "upload"


class _UploadTooLarge(Exception):
    pass


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _limited(request: Request, limit: int) -> Request:
    """``request`` whose body stops with :class:`_UploadTooLarge` past ``limit`` bytes, however it is sent
    (a Content-Length that says so is refused before reading; a chunked body as it arrives)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _UploadTooLarge
    received = 0

    async def receive() -> dict[str, Any]:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _UploadTooLarge
        return message

    return Request(request.scope, receive)


async def _upload(request: Request) -> tuple[bytes, str]:
    """(image bytes, name) of a multipart file or a raw body."""
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=1, max_fields=16)
        except HTTPException as exc:  # malformed multipart, or more than one file
            raise _BadRequest(400, f"bad multipart upload: {exc.detail}") from None
        files = [v for v in form.values() if isinstance(v, UploadFile)]
        if not files:
            raise _BadRequest(400, "the multipart upload has no file; send the image as a file field named 'file'")
        upload = files[0]
        data = await upload.read()
        await form.close()
        return data, upload.filename or RAW_UPLOAD_NAME
    chunks = [chunk async for chunk in request.stream()]
    return b"".join(chunks), RAW_UPLOAD_NAME


def create_app(pool: AnalyzerPool, *, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> Starlette:
    """The service around a started :class:`AnalyzerPool` (the caller starts and closes it)."""
    if max_upload_bytes < 1:
        raise ValueError(f"max_upload_bytes must be >= 1, got {max_upload_bytes}")

    async def analyze(request: Request) -> Response:
        try:
            options = parse_options(request.query_params.multi_items())
            data, name = await _upload(_limited(request, max_upload_bytes))
        except OptionError as exc:
            return error(400, str(exc))
        except _UploadTooLarge:
            return error(413, f"upload too large: the limit is {max_upload_bytes:,} bytes "
                              f"(hyperface serve --max-upload-mb)")
        except _BadRequest as exc:
            return error(exc.status, str(exc))
        if not data:
            return error(400, f"{name}: empty upload; send an image file")
        try:
            future = pool.submit(data, name, options)
        except PoolFull as exc:
            return error(503, str(exc), headers={"Retry-After": "1"})
        try:
            record = await asyncio.wrap_future(future)
        except ImageTooLargeError as exc:  # a decompression bomb, or just a very large photo
            message = str(exc).split("; if the file is genuine")[0]
            return error(413, f"{message} (hyperface serve --max-megapixels)")
        except ImageReadError as exc:
            return error(415, f"not an image this service can read: {exc}")
        except (ValueError, TypeError) as exc:  # options the analyzer refuses in combination
            return error(400, f"bad options: {exc}")
        except Exception:
            log.exception("analysing %s failed", name)
            return error(500, f"{name}: internal error while analysing; see the server log")
        return JSONResponse(record)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__, **pool.stats(),
                             "max_upload_bytes": max_upload_bytes, "max_pixels": pool.max_pixels,
                             "options": {name: option.help for name, option in OPTIONS.items()}})

    async def page(request: Request) -> Response:
        return HTMLResponse(page_html())

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, str(exc.detail), headers=exc.headers)

    return Starlette(routes=[Route("/", page, methods=["GET"]), Route("/health", health, methods=["GET"]),
                             Route("/analyze", analyze, methods=["POST"])],
                     exception_handlers={HTTPException: http_error})
