"""Search request bodies and their answers, shared by the Elasticsearch and OpenSearch adapters.

Both engines take the same query DSL for what newswatch asks, so the bodies are built here
once (:func:`search_body` is the one place that decides how a search query matches) and each
adapter only sends them. Index names and mappings are in :mod:`pipeline.index.es_mapping`.
"""

from __future__ import annotations

from typing import Any

from .base import SearchHit

__all__ = ["EXPORT_PAGE", "export_body", "hits_from_response", "ids_body", "search_body"]

EXPORT_PAGE = 500
# no_match_size: a title-only match still gets the start of the text as its snippet (``text`` itself is
# left out of ``_source`` in search answers)
_HIGHLIGHT = {"fields": {"text": {"fragment_size": 160, "number_of_fragments": 1, "no_match_size": 160}},
              "pre_tags": ["["], "post_tags": ["]"]}


def search_filters(*, topic: str | None, entity: str | None, since: str | None,
                   until: str | None) -> list[dict[str, Any]]:
    """Exact filters: topic id, entity id, date range (``date`` = published, else fetched_at)."""
    filters: list[dict[str, Any]] = []
    if topic:
        filters.append({"term": {"topics": topic}})
    if entity:
        filters.append({"term": {"entities.id": entity}})
    if since or until:
        rng: dict[str, str] = {}
        if since:
            rng["gte"] = since
        if until:
            rng["lt"] = until
        filters.append({"range": {"date": rng}})
    return filters


def search_body(query: str, *, topic: str | None = None, entity: str | None = None, since: str | None = None,
                until: str | None = None, limit: int = 20) -> dict[str, Any]:
    """The ``_search`` body of :meth:`SearchIndex.search`: BM25 over title (x3) and text with every
    word required, a highlighted snippet; an empty query lists the filtered documents newest first."""
    filters = search_filters(topic=topic, entity=entity, since=since, until=until)
    body: dict[str, Any] = {"size": limit, "_source": {"excludes": ["text", "locations", "topic_reasons"]}}
    if query.strip():
        must = [{"multi_match": {"query": query, "fields": ["title^3", "text"], "operator": "and"}}]
        body["query"] = {"bool": {"must": must, "filter": filters}}
        body["highlight"] = _HIGHLIGHT
    else:
        body["query"] = {"bool": {"filter": filters}}
        body["sort"] = [{"date": {"order": "desc", "missing": "_last"}}, {"id": "asc"}]
        body["_source"] = {"excludes": ["locations", "topic_reasons"]}
    return body


def hits_from_response(resp: dict[str, Any]) -> list[SearchHit]:
    """The :class:`SearchHit` list of a ``_search`` answer to :func:`search_body`."""
    hits = []
    for h in resp.get("hits", {}).get("hits", []):
        src = h.get("_source", {})
        fragments = (h.get("highlight") or {}).get("text") or []
        snippet = fragments[0] if fragments else (src.get("text") or "")[:200]
        hits.append(SearchHit(id=src.get("id", h["_id"]), url=src.get("url", ""), title=src.get("title", ""),
                              score=round(float(h.get("_score") or 0.0), 4), source=src.get("source", ""),
                              published=src.get("published"), snippet=" ".join(snippet.split()),
                              topics=list(src.get("topics") or [])))
    return hits


def ids_body(ids: list[str], *, source: bool = False) -> dict[str, Any]:
    """Look documents up by id across every monthly index."""
    return {"query": {"ids": {"values": ids}}, "_source": source, "size": len(ids)}


def export_body(after: list[Any] | None) -> dict[str, Any]:
    """One page of :meth:`SearchIndex.export`: by ``enriched_at`` then id (neither engine keeps
    insertion order), continued with ``search_after``."""
    body: dict[str, Any] = {"size": EXPORT_PAGE, "query": {"match_all": {}},
                            "sort": [{"enriched_at": {"order": "asc", "missing": "_first"}}, {"id": "asc"}]}
    if after is not None:
        body["search_after"] = after
    return body
