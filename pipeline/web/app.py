"""The web application: pages, JSON API, static files, safe defaults and error pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from . import api, pages
from .context import WebContext
from .errors import install_error_handlers
from .security import SecurityMiddleware

__all__ = ["create_app", "STATIC_DIR"]

STATIC_DIR = Path(__file__).parent / "static"


def create_app(ctx: WebContext) -> FastAPI:
    """A FastAPI app over ``ctx`` (which the caller opens and closes). OpenAPI at ``/api/openapi.json``.

    FastAPI's own docs pages load their scripts from a CDN, so they are off; ``/api/docs``
    renders the same OpenAPI description on the server instead.
    """
    app = FastAPI(title="newswatch", summary="Search, topics, map and alerts of the newswatch pipeline",
                  version="1", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json", debug=False)
    app.state.ctx = ctx
    app.state.security = ctx.security
    app.add_middleware(SecurityMiddleware, security=ctx.security)
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    return app
