"""The HTML pages: each calls the function its ``/api/`` twin returns, and renders a template."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..errors import InputError
from . import queries
from .api import Ctx, FeedStatusFilter, Filters, MapFilters, Page
from .charts import chart_geometry
from .geo import layout_markers, map_frame
from .render import templates
from .security import AUTH_COOKIE, require_same_site, require_write

__all__ = ["router"]

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

def _render(request: Request, template: str, section: str, **context: Any) -> Response:
    return templates.TemplateResponse(request, template, {"section": section, **context})


@router.get("/")
@router.get("/search")
def search_page(request: Request, ctx: Ctx, filters: Filters, page: Page = 1) -> Response:
    """The search form and one page of results; a bad filter (an unknown topic or entity id, with
    the closest ids suggested) is shown above the form it came from, as a 400."""
    results, error = None, ""
    if filters.active():
        try:
            results = queries.run_search(ctx, filters, page)
        except InputError as exc:
            error = str(exc)
    response = _render(request, "search.html", "/", filters=filters, results=results, error=error,
                       fixes=queries.filter_fixes(ctx, filters) if error else [], options=queries.filter_options(ctx))
    response.status_code = 400 if error else 200
    return response


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
                status: Annotated[str | None, Query(max_length=20)] = None,
                judged: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    return _render(request, "alerts.html", "/alerts",
                   alerts=queries.alerts(ctx, topic=topic or None, status=status or None, judged=judged or None),
                   topics=queries.topics(ctx), topic=topic or "", status=status or "", judged=judged or "")


@router.post("/alerts/{alert_id}/feedback", dependencies=[Depends(require_write)])
def alert_feedback(ctx: Ctx, alert_id: Annotated[str, Path(max_length=64)],
                   judgement: Annotated[Literal["false-hit", "confirmed"], Form()],
                   note: Annotated[str, Form(max_length=500)] = "",
                   next: Annotated[str, Form(max_length=300)] = "/alerts") -> Response:
    """The "false hit" / "confirmed" buttons: record, then back to the page they were on, at the alert."""
    queries.record_alert_feedback(ctx, alert_id, judgement, note)
    return RedirectResponse(f"{_local_path(next.split('#', 1)[0])}#alert-{alert_id}", status_code=303)


@router.get("/feeds")
def feeds_page(request: Request, ctx: Ctx, status: FeedStatusFilter = None) -> Response:
    return _render(request, "feeds.html", "/feeds", data=queries.feeds(ctx, status=status or None))


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
    schemas = spec.get("components", {}).get("schemas", {})
    routes = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            responses = [(code, r.get("description", ""), _schema_name(r)) for code, r in op.get("responses", {}).items()]
            routes.append({"path": path, "method": method.upper(), "op": op, "responses": responses,
                           "body": schemas.get(body.get("$ref", "").rsplit("/", 1)[-1])})
    return _render(request, "api_docs.html", "/api/docs", routes=routes, schemas=schemas)


def _schema_name(response: dict[str, Any]) -> str:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    if schema.get("type") == "array":
        return f"list of {schema.get('items', {}).get('$ref', '').rsplit('/', 1)[-1]}"
    return str(schema.get("$ref", "")).rsplit("/", 1)[-1]
