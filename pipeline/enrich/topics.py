"""Watch topics: deciding which topics an article's entities fire, and saying why.

A topic (``pipeline.config.WatchTopic``) fires when

* any mention of a ``core`` entity is found (relation ``core``); or
* any mention of a place whose ``governorate`` is one of the ``scope`` regions, or of the
  scope region itself, is found (relation ``scope``); or
* at least ``related_threshold`` *distinct* ``related`` entities are mentioned (relation
  ``related``); or
* the topic has a geofence (``within: {entity: al-tanf, km: 55}``) and a tagged place lies
  inside it (relation ``within``; the reason's ``entity_name`` says the place and its distance,
  ``distance_km`` holds it). Only point-like places count (towns, villages, camps, bases,
  crossings, fields, facilities): the coordinates of a country, governorate, region, river or
  road are a representative point, not where the news happened.

Each reason names the entity, the relation, the variant that matched, the matched text
and its span (offsets into the original title or text). When a topic fires, its related
mentions are listed too, as supporting reasons.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path

from ..config import Watchlist, WatchTopic, load_watchlist_file
from ..errors import CatalogueError
from ..models import EntityHit, TopicHit, TopicReason
from .catalogue import Catalogue

__all__ = ["evaluate_topics", "default_watchlist_path", "load_default_watchlist", "check_watchlist", "distance_km",
           "POINT_PLACE_TYPES"]

#: place types whose coordinates say where something happened (geofences consider only these)
POINT_PLACE_TYPES = frozenset({"city", "town", "village", "base", "border_crossing", "camp", "oil_field", "gas_field",
                               "facility"})
_EARTH_KM = 6371.0088


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_KM * math.asin(min(1.0, math.sqrt(a)))


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
        if topic.within is not None:
            centre = catalogue.entities.get(topic.within.entity)
            if centre is None or centre.lat is None or centre.lon is None:
                raise CatalogueError(f"{watchlist.source}: topics.{i}.within.entity: {topic.within.entity!r} in topic "
                                     f"{topic.id!r} is not a catalogue place with coordinates")


def _reasons(hit: EntityHit, relation: str, name: str | None = None, km: float | None = None) -> list[TopicReason]:
    return [
        TopicReason(entity_id=hit.id, entity_name=name or hit.name, relation=relation, variant=m.variant, text=m.text,
                    start=m.start, end=m.end, field=m.field, distance_km=km)
        for m in hit.mentions
    ]


def _inside(topic: WatchTopic, hit: EntityHit, catalogue: Catalogue | None) -> float | None:
    """Distance of ``hit`` from the topic's geofence centre when it lies inside, else None."""
    fence = topic.within
    if fence is None or catalogue is None or hit.type not in POINT_PLACE_TYPES or hit.lat is None or hit.lon is None:
        return None
    centre = catalogue.entities[fence.entity]
    assert centre.lat is not None and centre.lon is not None
    km = distance_km(centre.lat, centre.lon, hit.lat, hit.lon)
    return km if km <= fence.km else None


def _topic(topic: WatchTopic, hits: list[EntityHit], catalogue: Catalogue | None) -> TopicHit | None:
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
        elif (km := _inside(topic, hit, catalogue)) is not None:
            assert topic.within is not None and catalogue is not None
            centre = catalogue.entities[topic.within.entity].name
            firing += _reasons(hit, "within", f"{hit.name} ({km:.0f} km from {centre}, inside {topic.within.km:g} km)",
                               round(km, 1))
        elif hit.id in related:
            related_seen.add(hit.id)
            supporting += _reasons(hit, "related")
    if not firing and len(related_seen) < topic.related_threshold:
        return None
    return TopicHit(id=topic.id, name=topic.name, reasons=firing + supporting)


def evaluate_topics(watchlist: Watchlist, hits: list[EntityHit], catalogue: Catalogue | None = None) -> list[TopicHit]:
    """The topics of ``watchlist`` that ``hits`` fire, in watchlist order (geofences need ``catalogue``)."""
    out = []
    for topic in watchlist.topics:
        hit = _topic(topic, hits, catalogue)
        if hit is not None:
            out.append(hit)
    return out
