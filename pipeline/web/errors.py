"""Error responses: a one-line reason as a page or as JSON, never a stack trace.

``/api/`` paths (and clients asking for JSON) get ``{"error": ..., "status": ...}``; pages
get ``error.html``. Unexpected exceptions are logged with a reference that the response
shows, so ops can find the traceback in the server log without it ever reaching a browser.
"""

from __future__ import annotations

import logging
import secrets

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from ..errors import ConfigError, InputError, PipelineError
from .queries import NotFoundError
from .render import templates

__all__ = ["install_error_handlers", "error_response"]

log = logging.getLogger(__name__)

_TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
           500: "Internal error", 503: "Data store unavailable"}


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return request.url.path.startswith("/api/") or ("application/json" in accept and "text/html" not in accept)


def error_response(request: Request, status: int, message: str) -> Response:
    message = " ".join(str(message).split())[:500]
    if _wants_json(request):
        return JSONResponse({"error": message, "status": status}, status_code=status)
    return templates.TemplateResponse(request, "error.html", {"status": status, "title": _TITLES.get(status, "Error"),
                                                              "message": message}, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "path", "body"))
        parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "error")
        response = error_response(request, exc.status_code, detail)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(request, 400, _validation_message(exc))

    async def input_error(request: Request, exc: Exception) -> Response:
        return error_response(request, 404 if isinstance(exc, NotFoundError) else 400, str(exc))

    async def pipeline_error(request: Request, exc: Exception) -> Response:
        log.warning("web: %s %s: %s", request.method, request.url.path, exc)
        if isinstance(exc, ConfigError):  # a file read per request (the feeds file) became invalid
            return error_response(request, 503, f"configuration: {exc}")
        return error_response(request, 503, f"the index or alert store failed: {exc}")

    async def unexpected(request: Request, exc: Exception) -> Response:
        ref = secrets.token_hex(4)
        log.error("web: %s %s: unexpected error (ref %s)", request.method, request.url.path, ref,
                  exc_info=(type(exc), exc, exc.__traceback__))
        return error_response(request, 500, f"something went wrong on our side (reference {ref}, in the server log)")

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(InputError, input_error)
    app.add_exception_handler(PipelineError, pipeline_error)
    app.add_exception_handler(Exception, unexpected)
