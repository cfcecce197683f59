"""The HTML pages: each calls the function its ``/api/`` twin returns, and renders a template."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from . import queries
from .api import Ctx, Filters, MapFilters, Page
from .charts import chart_geometry
from .geo import layout_markers, map_frame
from .render import templates
from .security import AUTH_COOKIE, require_same_site

__all__ = ["router"]

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

def _render(request: Request, template: str, section: str, **context: Any) -> Response:
    return templates.TemplateResponse(request, template, {"section": section, **context})


@router.get("/")
@router.get("/search")
def search_page(request: Request, ctx: Ctx, filters: Filters, page: Page = 1) -> Response:
    results = queries.run_search(ctx, filters, page) if filters.active() else None
    return _render(request, "search.html", "/", filters=filters, results=results,
                   options=queries.filter_options(ctx))


@router.get("/topics")
def topics_page(request: Request, ctx: Ctx) -> Response:
    return _render(request, "topics.html", "/topics", topics=queries.topics(ctx))


@router.get("/topics/{topic_id}")
def topic_page(request: Request, ctx: Ctx, topic_id: Annotated[str, Path(max_length=100)]) -> Response:
    data = queries.topic_page(ctx, topic_id)
    return _render(request, "topic.html", "/topics", data=data, chart=chart_geometry(data.chart))


@router.get("/map")
def map_page(request: Request, ctx: Ctx, filters: MapFilters) -> Response:
    data = queries.places_map(ctx, filters)
    topics = queries.topics(ctx)
    markers = layout_markers((p.id, p.name, p.articles, p.lat, p.lon) for p in data.places if p.on_map)
    return _render(request, "map.html", "/map", data=data, frame=map_frame(), markers=markers, topics=topics,
                   filters=filters)


@router.get("/alerts")
def alerts_page(request: Request, ctx: Ctx,
                topic: Annotated[str | None, Query(max_length=100)] = None,
                status: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    return _render(request, "alerts.html", "/alerts", alerts=queries.alerts(ctx, topic=topic or None,
                                                                           status=status or None),
                   topics=queries.topics(ctx), topic=topic or "", status=status or "")


@router.get("/articles/{doc_id}")
def article_page(request: Request, ctx: Ctx, doc_id: Annotated[str, Path(max_length=64)]) -> Response:
    return _render(request, "article.html", "/", article=queries.article(ctx, doc_id))


@router.get("/login")
def login_page(request: Request, ctx: Ctx, next: Annotated[str, Query(max_length=200)] = "/") -> Response:
    return _render(request, "login.html", "", needed=ctx.security.token_required,
                   configured=ctx.security.token is not None, next=_local_path(next))


def _local_path(target: str) -> str:
    """Only redirect to our own paths (no ``//host`` or scheme): no open redirect."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


@router.post("/login", dependencies=[Depends(require_same_site)])
def login(ctx: Ctx, token: Annotated[str, Form(max_length=500)] = "",
          next: Annotated[str, Form(max_length=200)] = "/") -> Response:
    """Trade the token for an HttpOnly, SameSite=Strict cookie (needed only beyond loopback)."""
    if ctx.security.token is None or not ctx.security.token_matches(token):
        raise HTTPException(403, "wrong token" if ctx.security.token else "no token is set on this server "
                                                                          "(PIPELINE_WEB_TOKEN)")
    response = RedirectResponse(_local_path(next), status_code=303)
    response.set_cookie(AUTH_COOKIE, ctx.security.auth_cookie_value(), httponly=True, samesite="strict", path="/")
    return response


@router.get("/api/docs")
def api_docs(request: Request) -> Response:
    spec = request.app.openapi()
    routes = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            routes.append({"path": path, "method": method.upper(), "op": op})
    return _render(request, "api_docs.html", "/api/docs", routes=routes, schemas=spec.get("components", {}))
