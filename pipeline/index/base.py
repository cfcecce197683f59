"""The search-index contract. Implementations: ``SQLiteIndex`` (FTS5), ``ElasticsearchIndex`` and
``OpenSearchIndex`` (both thin clients over ``RestSearchIndex``).

Documents are the flat dicts of :meth:`pipeline.models.EnrichedArticle.to_document`;
``doc["id"]`` is the deterministic id derived from the canonical URL.

* :meth:`SearchIndex.index_documents` is *create-if-absent*: a document whose id is
  already indexed is left untouched and counted as ``existing``. Rerunning or
  replaying therefore changes nothing. Per-document failures that can never succeed
  (e.g. a mapping error) are returned in ``failed`` for the caller to dead-letter;
  failures of the whole backend raise :class:`~pipeline.errors.TransientIndexError`.
* :meth:`SearchIndex.search` ranks by relevance (BM25 on both backends) and filters
  by topic id, entity id and a date range on ``published`` (or ``fetched_at`` when the
  article has no date).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["IndexReport", "SearchHit", "SearchIndex"]


@dataclass
class IndexReport:
    created: int = 0
    existing: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (doc id, reason)

    def merge(self, other: IndexReport) -> IndexReport:
        return IndexReport(self.created + other.created, self.existing + other.existing, self.failed + other.failed)


@dataclass
class SearchHit:
    id: str
    url: str
    title: str
    score: float
    source: str = ""
    published: str | None = None
    snippet: str = ""
    topics: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


@runtime_checkable
class SearchIndex(Protocol):
    def index_documents(self, docs: Sequence[dict[str, Any]]) -> IndexReport:
        """Create each document unless its id exists. Raises TransientIndexError."""
        ...

    def index_alerts(self, alerts: Sequence[dict[str, Any]]) -> IndexReport:
        """Create-if-absent alert records (``AlertRecord.to_dict()``) so dashboards can show them."""
        ...

    def search(
        self,
        query: str,
        *,
        topic: str | None = None,
        entity: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 20,
    ) -> list[SearchHit]:
        """Ranked full-text search. ``query`` may be empty (filters only, newest first)."""
        ...

    def get(self, doc_id: str) -> dict[str, Any] | None:
        ...

    def export(self) -> Iterator[dict[str, Any]]:
        """Every indexed document, oldest indexed first."""
        ...

    def count(self) -> int:
        ...

    def delete_older_than(self, cutoff: str) -> int:
        """Drop documents whose date is before ``cutoff`` (ISO date); returns how many."""
        ...

    def close(self) -> None:
        ...
