"""Search request bodies and their answers, shared by the Elasticsearch and OpenSearch adapters.

Both engines take the same query DSL for what newswatch asks, so the bodies are built here
once (:func:`search_body` is the one place that decides how a search query matches) and each
adapter only sends them: pure functions from the ``SearchIndex`` contract's arguments to
request bodies, and from responses back to the contract's values. Index names and mappings
are in :mod:`pipeline.index.es_mapping`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import COUNT_BY, EntityTerm, SearchHit, hit_entities

__all__ = [
    "EXPORT_PAGE", "counts_body", "counts_from", "export_body", "filters", "hits_from_response", "ids_body",
    "search_body",
]

EXPORT_PAGE = 500
# count key -> the keyword field aggregated
_TERMS_FIELD = {"entity": "entities.id", "topic": "topics", "source": "source"}


def filters(*, topic: str | None = None, entity: str | None = None, source: str | None = None,
            since: str | None = None, until: str | None = None) -> list[dict[str, Any]]:
    """``bool.filter`` clauses for the contract's filters (dates on ``date``: published, else fetched_at)."""
    out: list[dict[str, Any]] = []
    if topic:
        out.append({"term": {"topics": topic}})
    if entity:
        out.append({"term": {"entities.id": entity}})
    if source:
        out.append({"term": {"source": source}})
    if since or until:
        rng: dict[str, str] = {}
        if since:
            rng["gte"] = since
        if until:
            rng["lt"] = until
        out.append({"range": {"date": rng}})
    return out


def search_body(query: str, *, entity_terms: Sequence[EntityTerm] = (), topic: str | None = None,
                entity: str | None = None, source: str | None = None, since: str | None = None,
                until: str | None = None, limit: int = 20, offset: int = 0,
                highlight: tuple[str, str] = ("[", "]")) -> dict[str, Any]:
    """The ``_search`` body of ``SearchIndex.search`` (the contract in ``index/base.py``).

    BM25 over title (x3) and text with every word of the free text required; each entity term
    is met by a document tagged with one of its ids or topics (scored 10, so tagged documents
    rank first) or by one of its spellings as a phrase in the title or text; filters do not
    score. The snippet is highlighted with the ``highlight`` pair (a title-only match still
    gets the start of the text: ``no_match_size``). Without text or terms: newest first.
    """
    clauses = filters(topic=topic, entity=entity, source=source, since=since, until=until)
    must: list[dict[str, Any]] = []
    if query.strip():
        must.append({"multi_match": {"query": query, "fields": ["title^3", "text"], "operator": "and"}})
    for term in entity_terms:
        tagged: list[dict[str, Any]] = [{"terms": {"entities.id": list(term.ids)}}]
        if term.topics:
            tagged.append({"terms": {"topics": list(term.topics)}})
        should: list[dict[str, Any]] = [{"constant_score": {"filter": {"bool": {"should": tagged}}, "boost": 10.0}}]
        should += [{"multi_match": {"query": s, "type": "phrase", "fields": ["title^3", "text"]}}
                   for s in dict.fromkeys((term.text, *term.spellings)) if s.strip()]
        must.append({"bool": {"should": should, "minimum_should_match": 1}})
    body: dict[str, Any] = {"size": limit, "from": max(0, offset),
                            "_source": {"excludes": ["text", "locations", "topic_reasons"]}}
    if must:
        body["query"] = {"bool": {"must": must, "filter": clauses}}
        body["highlight"] = {"fields": {"text": {"fragment_size": 160, "number_of_fragments": 1,
                                                 "no_match_size": 160}},
                             "pre_tags": [highlight[0]], "post_tags": [highlight[1]]}
    else:
        body["query"] = {"bool": {"filter": clauses}}
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
                              topics=list(src.get("topics") or []), entities=hit_entities(src)))
    return hits


def counts_body(by: str, clauses: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """A ``size: 0`` search whose aggregation ``by`` counts documents per value (or per UTC day)."""
    if by == "day":
        agg: dict[str, Any] = {"date_histogram": {"field": "date", "calendar_interval": "day",
                                                  "format": "yyyy-MM-dd", "min_doc_count": 1}}
    elif by in _TERMS_FIELD:
        agg = {"terms": {"field": _TERMS_FIELD[by], "size": limit, "order": [{"_count": "desc"}, {"_key": "asc"}]}}
    else:
        raise ValueError(f"counts: cannot count by {by!r} (one of {', '.join(COUNT_BY)})")
    return {"size": 0, "track_total_hits": False, "query": {"bool": {"filter": clauses}}, "aggs": {"by": agg}}


def counts_from(by: str, response: dict[str, Any], limit: int) -> list[tuple[str, int]]:
    """(key, documents) pairs from a :func:`counts_body` response, in the contract's order."""
    buckets = ((response.get("aggregations") or {}).get("by") or {}).get("buckets") or []
    if by == "day":
        days = [(str(b.get("key_as_string") or b["key"])[:10], int(b["doc_count"])) for b in buckets
                if int(b.get("doc_count") or 0) > 0]
        return days[-limit:] if limit > 0 else []
    return [(str(b["key"]), int(b["doc_count"])) for b in buckets][:limit]


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
