"""The web application: pages, JSON API, static files, safe defaults and error pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from . import api, pages
from .context import WebContext
from .errors import install_error_handlers
from .models import ApiError
from .security import SecurityMiddleware

__all__ = ["create_app", "STATIC_DIR"]

STATIC_DIR = Path(__file__).parent / "static"


def create_app(ctx: WebContext) -> FastAPI:
    """A FastAPI app over ``ctx`` (which the caller opens and closes). OpenAPI at ``/api/openapi.json``.

    FastAPI's own docs pages load their scripts from a CDN, so they are off; ``/api/docs``
    renders the same OpenAPI description on the server instead.
    """
    app = FastAPI(title="newswatch", summary="Search, topics, map, alerts and feed health of the newswatch pipeline",
                  version="1", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json", debug=False)
    app.state.ctx = ctx
    app.state.security = ctx.security
    app.add_middleware(SecurityMiddleware, security=ctx.security)
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's description, saying what the error handlers really answer: a bad parameter or body
    is a 400 with ``{"error", "status"}`` (:mod:`.errors`), not FastAPI's 422 with its own shape."""
    if app.openapi_schema is None:
        FastAPI.openapi(app)
        spec = app.openapi_schema
        assert spec is not None
        error_ref = {"$ref": "#/components/schemas/ApiError"}
        for methods in spec.get("paths", {}).values():
            for op in methods.values():
                responses = op.get("responses", {})
                if responses.pop("422", None) is not None:
                    responses.setdefault("400", {"description": "a bad parameter (one line)",
                                                 "content": {"application/json": {"schema": error_ref}}})
        schemas = spec.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        schemas.setdefault("ApiError", ApiError.model_json_schema())
    return app.openapi_schema
