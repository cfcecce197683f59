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
  by topic id, entity id, source and a date range on ``published`` (or ``fetched_at`` when
  the article has no date). ``entity_terms`` are the catalogue entities the user's query
  names (found above the index by tagging the query, see :mod:`pipeline.search`): each
  term is met by a document tagged with one of its entity ids (or that fired one of its
  topics) *or* whose text contains one of its spellings; documents tagged with more of
  the terms rank first, then by BM25 over the free text and the spellings. ``offset`` pages through the results; the snippet marks each
  matched term with the ``highlight`` pair (default ``[`` and ``]``; the web page passes
  :data:`HIGHLIGHT_MARKS`, characters that never occur in feed text, so it can escape the
  snippet first and then turn the marks into ``<mark>``).
* :meth:`SearchIndex.counts` counts documents per entity, topic, source or day under the
  same filters (the web page's map, charts and filter lists).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "COUNT_BY", "CountBy", "EntityTerm", "HIGHLIGHT_MARKS", "IndexReport", "SearchHit", "SearchIndex", "hit_entities",
]

#: what :meth:`SearchIndex.counts` can count documents by
CountBy = Literal["entity", "topic", "source", "day"]
COUNT_BY: tuple[str, ...] = ("entity", "topic", "source", "day")
#: private-use code points: snippet marks that cannot be confused with text (U+E000, U+E001)
HIGHLIGHT_MARKS = ("\ue000", "\ue001")


@dataclass(frozen=True)
class EntityTerm:
    """One catalogue entity named in a search query.

    ``text`` is how the query wrote it; ``ids`` the entity ids it stands for; ``topics`` watch
    topics whose documents also meet it (the entity is one of their core entities);
    ``spellings`` the catalogue's spellings of it, matched as phrases in the text.
    """

    text: str
    ids: tuple[str, ...]
    topics: tuple[str, ...] = ()
    spellings: tuple[str, ...] = ()


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
    entities: list[dict[str, Any]] = field(default_factory=list)  # {id, name, kind, type} of each entity found

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def hit_entities(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The entities of an indexed document as a search hit carries them: id, name, kind, type."""
    return [{k: e.get(k) for k in ("id", "name", "kind", "type")}
            for e in doc.get("entities") or [] if isinstance(e, dict) and e.get("id")]


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
        source: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 20,
        offset: int = 0,
        highlight: tuple[str, str] = ("[", "]"),
        entity_terms: Sequence[EntityTerm] = (),
    ) -> list[SearchHit]:
        """Ranked full-text search. ``query`` (the free text left once ``entity_terms`` are taken
        out) may be empty: filters and terms only; with neither, newest first.

        ``source`` is the exact source name (site name or host); ``offset`` skips that many hits.
        """
        ...

    def counts(
        self,
        by: CountBy,
        *,
        topic: str | None = None,
        entity: str | None = None,
        source: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 1000,
    ) -> list[tuple[str, int]]:
        """How many documents (matching the filters) have each entity id, topic id, source or day.

        ``day`` is ``YYYY-MM-DD`` of the document's date; days come oldest first and ``limit``
        keeps the most recent ones. The others come most documents first (ties by key) and
        ``limit`` keeps the top ones. Documents without the value are not counted.
        """
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
