"""Elasticsearch index templates and document shaping for :mod:`pipeline.index.elasticsearch`.

Layout (``P`` = ``settings.index_prefix``, default ``newswatch``):

* ``P-articles-YYYY.MM``: one index per month of the document's own date (``published``,
  else ``fetched_at``); created on first write from the template ``P-articles``, which also
  puts every such index behind the read alias ``P-articles``. Retention = delete whole
  months (``delete_older_than``), plus a delete-by-query inside the cutoff month.
* ``P-alerts``: one index of alert records (template ``P-alerts``).

Mappings are ``dynamic: false``: a field not listed here is kept in ``_source`` but not
indexed, so an unexpected field never changes the mapping or fails a write.
``entities`` is a plain object array (not ``nested``): we only ever filter on
``entities.id`` and aggregate on ids/names/types, which object arrays serve and which
Kibana (no nested support in Lens) can chart. Coordinates go to ``locations``
(``geo_point`` array, one point per place mentioned) so Kibana Maps can plot mentions.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

__all__ = ["articles_template", "alerts_template", "month_of", "shape_document"]

_MONTH = re.compile(r"^(\d{4})-(\d{2})")
_KEYWORD = {"type": "keyword", "ignore_above": 1024}


def articles_template(prefix: str) -> dict[str, Any]:
    return {
        "index_patterns": [f"{prefix}-articles-*"],
        "priority": 200,
        "_meta": {"managed_by": "newswatch", "schema_version": 1},
        "template": {
            "settings": {"number_of_shards": 1},
            "aliases": {f"{prefix}-articles": {}},
            "mappings": {
                "dynamic": False,
                "properties": {
                    "id": {"type": "keyword"},
                    "url": _KEYWORD,
                    "title": {"type": "text", "analyzer": "english",
                              "fields": {"keyword": {"type": "keyword", "ignore_above": 512}}},
                    "text": {"type": "text", "analyzer": "english"},
                    "source": _KEYWORD,
                    "feed_url": _KEYWORD,
                    "authors": _KEYWORD,
                    "language": {"type": "keyword"},
                    "published": {"type": "date"},
                    "fetched_at": {"type": "date"},
                    "enriched_at": {"type": "date"},
                    "date": {"type": "date"},
                    "topics": {"type": "keyword"},
                    "topic_reasons": {"type": "object", "enabled": False},
                    "entities": {
                        "properties": {
                            "id": {"type": "keyword"},
                            "name": {"type": "keyword"},
                            "type": {"type": "keyword"},
                            "kind": {"type": "keyword"},
                            "governorate": {"type": "keyword"},
                            "count": {"type": "integer"},
                        }
                    },
                    "locations": {"type": "geo_point"},
                },
            },
        },
    }


def alerts_template(prefix: str) -> dict[str, Any]:
    return {
        "index_patterns": [f"{prefix}-alerts"],
        "priority": 200,
        "_meta": {"managed_by": "newswatch", "schema_version": 1},
        "template": {
            "settings": {"number_of_shards": 1},
            "mappings": {
                "dynamic": False,
                "properties": {
                    "id": {"type": "keyword"},
                    "topic": {"type": "keyword"},
                    "story_id": {"type": "keyword"},
                    "doc_id": {"type": "keyword"},
                    "url": _KEYWORD,
                    "title": {"type": "text", "analyzer": "english"},
                    "source": _KEYWORD,
                    "published": {"type": "date"},
                    "created_at": {"type": "date"},
                    "snippet": {"type": "text", "analyzer": "english"},
                    "other_sources": _KEYWORD,
                    "reasons": {"type": "object", "enabled": False},
                },
            },
        },
    }


def doc_date(doc: dict[str, Any]) -> str | None:
    """The date a document is filtered and routed by: ``published``, else ``fetched_at``."""
    for key in ("published", "fetched_at"):
        value = doc.get(key)
        if isinstance(value, str) and _MONTH.match(value):
            return value
    return None


def month_of(doc: dict[str, Any]) -> str:
    """``YYYY.MM`` of the document's own date (stable for a given document), else this month."""
    date = doc_date(doc)
    if date:
        m = _MONTH.match(date)
        assert m is not None
        return f"{m.group(1)}.{m.group(2)}"
    return datetime.now(UTC).strftime("%Y.%m")


def shape_document(doc: dict[str, Any]) -> dict[str, Any]:
    """The ``_source`` we store: the document plus ``date`` and ``locations`` (geo points)."""
    out = dict(doc)
    out["date"] = doc_date(doc)
    out["locations"] = [
        {"lat": e["lat"], "lon": e["lon"]}
        for e in doc.get("entities") or []
        if isinstance(e, dict) and isinstance(e.get("lat"), int | float) and isinstance(e.get("lon"), int | float)
    ]
    return out


def unshape_document(source: dict[str, Any]) -> dict[str, Any]:
    """The document as given to ``index_documents`` (drops the fields we added)."""
    return {k: v for k, v in source.items() if k not in ("date", "locations")}
