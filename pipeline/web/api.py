"""The JSON API under ``/api/``: one route per page, each calling the same function the page renders.

Query parameters are the CLI's (``search QUERY --topic --entity --since --until --limit``)
plus ``source`` and ``page``; the OpenAPI description is at ``/api/openapi.json`` and
readable at ``/api/docs``. The one write, ``POST /api/alerts/{id}/feedback``, follows the rules
of :mod:`.security` (CSRF header from a browser; beyond loopback the bearer token).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from . import queries
from .context import WebContext
from .models import (
    AlertView,
    ApiError,
    ArticleView,
    FeedbackRequest,
    FeedbackResult,
    FeedsPage,
    FilterOptions,
    PlacesMap,
    SearchFilters,
    SearchResults,
    TopicPage,
    TopicSummary,
)
from .security import require_write

__all__ = ["router", "get_context", "get_filters", "get_map_filters", "FeedStatusFilter"]

router = APIRouter(prefix="/api", tags=["api"])


def get_context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx


def get_filters(
    q: Annotated[str, Query(description='places or actors in any spelling or script, words, "phrases", OR, '
                                        '-excluded (as the CLI\'s search QUERY)', max_length=500)] = "",
    topic: Annotated[str | None, Query(description="only articles that fired this watch topic id")] = None,
    entity: Annotated[str | None, Query(description="only articles mentioning this entity id")] = None,
    source: Annotated[str | None, Query(description="only articles from this source (site name or host)")] = None,
    since: Annotated[str | None, Query(description="published on or after (YYYY-MM-DD)")] = None,
    until: Annotated[str | None, Query(description="published before (YYYY-MM-DD)")] = None,
) -> SearchFilters:
    return queries.search_filters(q, topic, entity, source, since, until)


def get_map_filters(
    topic: Annotated[str | None, Query(description="only articles that fired this watch topic id")] = None,
    source: Annotated[str | None, Query(description="only articles from this source (site name or host)")] = None,
    since: Annotated[str | None, Query(description="published on or after (YYYY-MM-DD)")] = None,
    until: Annotated[str | None, Query(description="published before (YYYY-MM-DD)")] = None,
) -> SearchFilters:
    return queries.search_filters(topic=topic, source=source, since=since, until=until)


def _error(description: str) -> dict[str, Any]:
    return {"model": ApiError, "description": description}


Ctx = Annotated[WebContext, Depends(get_context)]
Filters = Annotated[SearchFilters, Depends(get_filters)]
MapFilters = Annotated[SearchFilters, Depends(get_map_filters)]
Page = Annotated[int, Query(ge=1, le=queries.MAX_PAGE, description="page number, from 1")]
Limit = Annotated[int, Query(ge=1, le=100, description="results per page")]


class Health(BaseModel):
    index: str
    documents: int
    alerts: int


@router.get("/search", response_model=SearchResults, summary="Full-text search with filters, one page")
def api_search(ctx: Ctx, filters: Filters, page: Page = 1, limit: Limit = queries.PER_PAGE) -> SearchResults:
    """Ranked results (newest first when q is empty), each with a plain snippet and the ranges of its matches."""
    return queries.run_search(ctx, filters, page, limit)


@router.get("/filters", response_model=FilterOptions, summary="Values the search filters can take, with counts")
def api_filters(ctx: Ctx) -> FilterOptions:
    return queries.filter_options(ctx)


@router.get("/topics", response_model=list[TopicSummary], summary="Watch topics with article and alert counts")
def api_topics(ctx: Ctx) -> list[TopicSummary]:
    return queries.topics(ctx)


@router.get("/topics/{topic_id}", response_model=TopicPage, responses={404: _error("no such watch topic")},
            summary="A topic: articles per day, latest articles, alerts and why they fired")
def api_topic(ctx: Ctx, topic_id: Annotated[str, Path(max_length=100)]) -> TopicPage:
    return queries.topic_page(ctx, topic_id)


@router.get("/map", response_model=PlacesMap, summary="Places mentioned, with the number of articles each")
def api_map(ctx: Ctx, filters: MapFilters) -> PlacesMap:
    """Catalogue coordinates; on_map says whether the place is drawn (a point inside the map), note why not."""
    return queries.places_map(ctx, filters)


@router.get("/alerts", response_model=list[AlertView],
            summary="Alerts, newest first, with delivery status per channel, attempts and last error")
def api_alerts(ctx: Ctx, topic: Annotated[str | None, Query(description="only this watch topic")] = None,
               status: Annotated[str | None, Query(description="only alerts with a channel in this status: "
                                                                "pending, sending, sent or failed")] = None,
               judged: Annotated[str | None, Query(description="only alerts the analysts judged so: false-hit, "
                                                                "confirmed, or none (not judged yet)")] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[AlertView]:
    return queries.alerts(ctx, topic=topic or None, status=status or None, judged=judged or None, limit=limit)


@router.post("/alerts/{alert_id}/feedback", response_model=FeedbackResult, dependencies=[Depends(require_write)],
             summary="Record the analyst's judgement of an alert: false hit or confirmed",
             responses={400: _error("bad judgement or note, or the alert's article is no longer indexed"),
                        403: _error("no CSRF token (X-CSRF-Token, from a browser), a cross-site request, or beyond "
                                    "loopback no bearer token"),
                        404: _error("no such alert")})
def api_alert_feedback(ctx: Ctx, alert_id: Annotated[str, Path(max_length=64)], body: FeedbackRequest) -> FeedbackResult:
    """Stored in the analysts' feedback store (as `feedback false-hit|confirmed ALERT_ID`), scored by eval-tags:
    a false hit is a labelled negative, a confirmed alert a labelled positive, for the alert's topic. An article
    and topic keep one judgement, the latest; sending the same judgement and note again writes nothing
    (`changed` false). Scripts send `Authorization: Bearer <PIPELINE_WEB_TOKEN>` (needed beyond loopback);
    browsers the `X-CSRF-Token` header holding their `newswatch_csrf` cookie."""
    return queries.record_alert_feedback(ctx, alert_id, body.judgement, body.note)


FeedStatusFilter = Annotated[str | None, Query(max_length=20, description="only feeds in this status: failing, "
                                                                          "silent, new or ok")]


@router.get("/feeds", response_model=FeedsPage,
            summary="Each configured feed's health, failing and silent first, and what ops were told")
def api_feeds(ctx: Ctx, status: FeedStatusFilter = None) -> FeedsPage:
    """The same records as `feeds --json` (`pipeline.feedhealth.health_of` over `$PIPELINE_FEEDS` or
    `config/feeds.yaml` and the run state), with each feed's ops alarm state and that alert's delivery;
    `counts` are over every feed whatever the filter."""
    return queries.feeds(ctx, status=status or None)


@router.get("/articles/{doc_id}", response_model=ArticleView, responses={404: _error("no such article in the index")},
            summary="One indexed article as stored")
def api_article(ctx: Ctx, doc_id: Annotated[str, Path(max_length=64)]) -> ArticleView:
    return queries.article(ctx, doc_id)


@router.get("/health", response_model=Health, summary="Is the index reachable; how much is in it")
def api_health(ctx: Ctx) -> Health:
    return Health(index=ctx.settings.index, documents=ctx.index.count(), alerts=len(ctx.alerts.store.all_alerts()))
