"""Watch topics: deciding which topics an article's entities fire, and saying why.

A topic (``pipeline.config.WatchTopic``) fires when

* any mention of a ``core`` entity is found (relation ``core``); or
* any mention of a place whose ``governorate`` is one of the ``scope`` regions, or of the
  scope region itself, is found (relation ``scope``); or
* at least ``related_threshold`` *distinct* ``related`` entities are mentioned (relation
  ``related``).

Each reason names the entity, the relation, the variant that matched, the matched text
and its span (offsets into the original title or text). When a topic fires, its related
mentions are listed too, as supporting reasons.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from ..config import Watchlist, WatchTopic, load_watchlist_file
from ..errors import CatalogueError
from ..models import EntityHit, TopicHit, TopicReason
from .catalogue import Catalogue

__all__ = ["evaluate_topics", "default_watchlist_path", "load_default_watchlist", "check_watchlist"]


def default_watchlist_path() -> Path:
    """``config/watchlist.yaml`` of the project (source checkout or editable install)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "config" / "watchlist.yaml"
        if candidate.is_file():
            return candidate
    return here.parents[2] / "config" / "watchlist.yaml"


def load_default_watchlist(path: Path | None = None) -> Watchlist:
    """Load and validate a watchlist file (default: the project's ``config/watchlist.yaml``)."""
    return load_watchlist_file(path or default_watchlist_path())


def check_watchlist(watchlist: Watchlist, catalogue: Catalogue) -> None:
    """Every entity a topic names must exist in the catalogue; the error names the watchlist file and key."""
    for i, topic in enumerate(watchlist.topics):
        for relation in ("core", "scope", "related"):
            for j, ref in enumerate(getattr(topic, relation)):
                if ref not in catalogue.entities:
                    close = difflib.get_close_matches(ref, list(catalogue.entities), n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    raise CatalogueError(
                        f"{watchlist.source}: topics.{i}.{relation}.{j}: unknown entity id {ref!r} in topic "
                        f"{topic.id!r} (not in the catalogue {catalogue.path}){hint}")


def _reasons(hit: EntityHit, relation: str) -> list[TopicReason]:
    return [
        TopicReason(entity_id=hit.id, entity_name=hit.name, relation=relation, variant=m.variant, text=m.text,
                    start=m.start, end=m.end, field=m.field)
        for m in hit.mentions
    ]


def _topic(topic: WatchTopic, hits: list[EntityHit]) -> TopicHit | None:
    core = set(topic.core)
    scope = set(topic.scope)
    related = set(topic.related)
    firing: list[TopicReason] = []
    supporting: list[TopicReason] = []
    related_seen: set[str] = set()
    for hit in hits:
        if hit.id in core:
            firing += _reasons(hit, "core")
        elif hit.id in scope or (hit.governorate is not None and hit.governorate in scope):
            firing += _reasons(hit, "scope")
        elif hit.id in related:
            related_seen.add(hit.id)
            supporting += _reasons(hit, "related")
    if not firing and len(related_seen) < topic.related_threshold:
        return None
    return TopicHit(id=topic.id, name=topic.name, reasons=firing + supporting)


def evaluate_topics(watchlist: Watchlist, hits: list[EntityHit]) -> list[TopicHit]:
    """The topics of ``watchlist`` that ``hits`` fire, in watchlist order."""
    out = []
    for topic in watchlist.topics:
        hit = _topic(topic, hits)
        if hit is not None:
            out.append(hit)
    return out

