"""The records that flow between stages.

They are plain dataclasses that round-trip through JSON (``to_dict``/``from_dict``),
because they travel over the message bus. Every bus payload carries
``schema_version``; a consumer rejects (dead-letters) a version it does not know.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "SCHEMA_VERSION",
    "FeedEntry",
    "Outcome",
    "ExtractResult",
    "Article",
    "Mention",
    "EntityHit",
    "TopicReason",
    "TopicHit",
    "TagResult",
    "EnrichedArticle",
    "AlertRecord",
]

SCHEMA_VERSION = 1

T = TypeVar("T")


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    return names


def _from_dict(cls: type[T], data: dict[str, Any]) -> T:
    names = _field_names(cls)
    return cls(**{k: v for k, v in data.items() if k in names})


def _as_dict(obj: Any) -> dict[str, Any]:
    """``dataclasses.asdict`` for these records, without its generic deep copy (4x faster).

    Fields hold strings, numbers, booleans, None, lists of those, or lists of records: lists are
    copied and records in them converted, so the result shares no mutable state with ``obj``.
    """
    out: dict[str, Any] = {}
    for name in _field_names(type(obj)):
        value = getattr(obj, name)
        if isinstance(value, list):
            value = [v.to_dict() if hasattr(v, "to_dict") else v for v in value]
        out[name] = value
    return out


@dataclass
class FeedEntry:
    """One item of a feed, as found by the feeds stage."""

    feed_url: str
    url: str
    guid: str = ""
    title: str = ""
    published: str | None = None  # ISO 8601 UTC
    summary: str = ""
    feed_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeedEntry:
        return _from_dict(cls, data)


@dataclass
class Outcome:
    """A recorded outcome of one unit of work (a feed poll, a page fetch, an extraction).

    ``status`` is a short name such as ``extracted``, ``not_modified``, ``not_article``,
    ``too_short``, ``duplicate``, ``blocked``, ``robots_disallowed``, ``timeout``,
    ``too_large``, ``http_404``, ``malformed_feed``; ``reason`` is one human line.
    """

    stage: str
    target: str
    status: str
    reason: str = ""
    ok: bool = True

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass
class ExtractResult:
    """What the extract stage made of one HTML page.

    ``ok`` is False when there was nothing extractable; then ``status`` and
    ``reason`` say why (``not_article``, ``too_short``, ``empty``, ``parse_error``).
    """

    ok: bool
    status: str = "extracted"
    reason: str = ""
    title: str = ""
    text: str = ""
    authors: list[str] = field(default_factory=list)
    published: str | None = None
    language: str | None = None
    site_name: str | None = None
    canonical_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass
class Article:
    """A fetched and extracted article: the payload of ``news.articles.raw``."""

    id: str
    url: str  # canonical URL (the id is derived from it)
    title: str
    text: str
    fetched_at: str
    feed_url: str = ""
    feed_name: str = ""
    source: str = ""  # site name or host
    guid: str = ""
    final_url: str = ""  # URL after redirects, as fetched
    authors: list[str] = field(default_factory=list)
    published: str | None = None
    language: str | None = None
    replay: bool = False  # True for backfills: alerts silenced unless asked otherwise
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Article:
        return _from_dict(cls, data)


@dataclass
class Mention:
    """One occurrence of an entity in the text.

    ``start``/``end`` are character offsets into the *original* string of ``field``
    (``"title"`` or ``"text"``); ``text`` is exactly ``original[start:end]``;
    ``variant`` is the catalogue alias that matched (after normalisation).
    """

    entity_id: str
    start: int
    end: int
    text: str
    variant: str
    field: str = "text"
    fuzzy: bool = False

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass
class EntityHit:
    """An entity found in an article, with all its mentions."""

    id: str
    type: str  # e.g. city, base, armed_group
    kind: str  # "place" or "actor"
    name: str  # canonical name
    mentions: list[Mention] = field(default_factory=list)
    lat: float | None = None
    lon: float | None = None
    governorate: str | None = None  # entity id of the governorate a place lies in

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EntityHit:
        hit = _from_dict(cls, data)
        hit.mentions = [m if isinstance(m, Mention) else _from_dict(Mention, m) for m in hit.mentions]
        return hit


@dataclass
class TopicReason:
    """Why a topic fired: which entity, by which relation, through which variant and span."""

    entity_id: str
    entity_name: str
    relation: str  # "core", "scope", "related" or "within" (geofence; entity_name then says how far)
    variant: str
    text: str
    start: int
    end: int
    field: str = "text"
    distance_km: float | None = None  # "within": the place's distance from the geofence's centre

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass
class TopicHit:
    id: str
    name: str = ""
    reasons: list[TopicReason] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TopicHit:
        hit = _from_dict(cls, data)
        hit.reasons = [r if isinstance(r, TopicReason) else _from_dict(TopicReason, r) for r in hit.reasons]
        return hit


@dataclass
class TagResult:
    entities: list[EntityHit] = field(default_factory=list)
    topics: list[TopicHit] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"entities": [e.to_dict() for e in self.entities], "topics": [t.to_dict() for t in self.topics]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TagResult:
        return cls(
            entities=[EntityHit.from_dict(e) for e in data.get("entities", [])],
            topics=[TopicHit.from_dict(t) for t in data.get("topics", [])],
        )

    @property
    def topic_ids(self) -> list[str]:
        return [t.id for t in self.topics]


@dataclass
class EnrichedArticle:
    """An article with its tags: the payload of ``news.articles.enriched`` and the indexed document."""

    article: Article
    tags: TagResult
    enriched_at: str
    schema_version: int = SCHEMA_VERSION

    @property
    def id(self) -> str:
        return self.article.id

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "article": self.article.to_dict(),
            "tags": self.tags.to_dict(),
            "enriched_at": self.enriched_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnrichedArticle:
        return cls(
            article=Article.from_dict(data["article"]),
            tags=TagResult.from_dict(data.get("tags", {})),
            enriched_at=data.get("enriched_at", ""),
            schema_version=int(data.get("schema_version", SCHEMA_VERSION)),
        )

    def to_document(self) -> dict[str, Any]:
        """The flat document indexed for search (SQLite FTS5 and Elasticsearch alike)."""
        a = self.article
        return {
            "id": a.id,
            "url": a.url,
            "title": a.title,
            "text": a.text,
            "source": a.source,
            "feed_url": a.feed_url,
            "authors": a.authors,
            "published": a.published,
            "fetched_at": a.fetched_at,
            "language": a.language,
            "entities": [
                {"id": e.id, "type": e.type, "kind": e.kind, "name": e.name, "count": len(e.mentions),
                 "lat": e.lat, "lon": e.lon, "governorate": e.governorate}
                for e in self.tags.entities
            ],
            "topics": [t.id for t in self.tags.topics],
            "topic_reasons": [t.to_dict() for t in self.tags.topics],
            "enriched_at": self.enriched_at,
        }


@dataclass
class AlertRecord:
    """One alert: a watched topic fired on a story. Its id is ``ids.alert_id(topic, story_id)``."""

    id: str
    topic: str
    story_id: str
    doc_id: str
    url: str
    title: str
    source: str
    published: str | None
    created_at: str
    reasons: list[TopicReason] = field(default_factory=list)
    snippet: str = ""
    other_sources: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlertRecord:
        rec = _from_dict(cls, data)
        rec.reasons = [r if isinstance(r, TopicReason) else _from_dict(TopicReason, r) for r in rec.reasons]
        return rec
