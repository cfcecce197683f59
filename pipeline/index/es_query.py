"""Query bodies for the Elasticsearch-family adapters: filters and counts (aggregations).

Pure functions from the ``SearchIndex`` contract's arguments to request bodies and from
responses back to the contract's values, so every adapter speaking the Elasticsearch
query DSL (Elasticsearch, OpenSearch) builds the same requests. Field names are those of
:mod:`pipeline.index.es_mapping`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import COUNT_BY, EntityTerm

__all__ = ["build_search_body", "counts_body", "counts_from", "filters"]

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


def build_search_body(query: str, *, entity_terms: Sequence[EntityTerm] = (), topic: str | None = None,
                      entity: str | None = None, source: str | None = None, since: str | None = None,
                      until: str | None = None, limit: int = 20, offset: int = 0,
                      highlight: tuple[str, str] = ("[", "]")) -> dict[str, Any]:
    """The ``_search`` body of ``SearchIndex.search`` (the contract in ``index/base.py``): the free
    text must match (all words); each entity term is met by a document tagged with one of its ids
    or topics (scored 10, so tagged documents rank first) or by one of its spellings as a phrase in
    the title or text (BM25); filters do not score. Without text or terms: newest first."""
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
        body["highlight"] = {"fields": {"text": {"fragment_size": 160, "number_of_fragments": 1}},
                             "pre_tags": [highlight[0]], "post_tags": [highlight[1]]}
    else:
        body["query"] = {"bool": {"filter": clauses}}
        body["sort"] = [{"date": {"order": "desc", "missing": "_last"}}, {"id": "asc"}]
        body["_source"] = {"excludes": ["locations", "topic_reasons"]}
    return body


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
