"""What the Kibana and OpenSearch Dashboards objects share: ids, titles, fields, ndjson.

The objects are built from code, not hand-edited: the data view titles follow the index prefix
(``elasticsearch.index_prefix``, default ``newswatch``) and there is one saved search per watch
topic of ``watchlist.yaml``. ``python -m pipeline kibana objects`` prints them; the files shipped in
``docker/kibana/`` are that output for the shipped configuration (a test keeps them in step).

Fields used (all from the index templates in ``pipeline.index.es_mapping``): articles are shown by
``date`` (the published date, or the fetch time for an undated article, so that undated articles do
not vanish from every time-filtered view), filtered by ``topics`` (keyword), mapped by ``locations``
(geo_point); alerts by ``created_at``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Topic", "Names", "ARTICLE_COLUMNS", "ALERT_COLUMNS", "MAP_TOOLTIP", "SYRIA_CENTER", "topic_query",
           "to_ndjson", "from_ndjson", "compact", "topics_of", "saved_searches", "DASHBOARD", "VOLUME", "PLACES",
           "EMPTY_QUERY", "SEARCH_INDEX_REF"]

#: columns of the saved searches (Discover and the dashboard's alerts panel)
ARTICLE_COLUMNS = ("title", "source", "topics", "entities.name", "url")
ALERT_COLUMNS = ("topic", "title", "source", "published", "url")
MAP_TOOLTIP = ("title", "source", "published", "topics", "url")
#: lat, lon: the maps open over eastern Syria (al-Tanf to Abu Kamal)
SYRIA_CENTER = (34.6, 39.2)


#: (title, description) of the objects both flavors have
DASHBOARD = ("newswatch: overview", "Watch-topic volume, where the news is, and the latest alerts.")
VOLUME = ("newswatch: topic volume over time", "Articles per day (or hour) for each watch topic.")
PLACES = ("newswatch: mentioned places", "Places named in articles (gazetteer coordinates), clustered.")
#: the reference name through which a saved search (or visualization) names its data view
SEARCH_INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"
EMPTY_QUERY = {"query": {"query": "", "language": "kuery"}, "filter": []}


@dataclass(frozen=True)
class Topic:
    id: str
    name: str


@dataclass(frozen=True)
class Names:
    """Ids and titles of the objects for one index prefix."""

    prefix: str

    @property
    def articles(self) -> str:
        """The read alias over the monthly article indices (also the data view's id and title)."""
        return f"{self.prefix}-articles"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}-alerts"

    def topic_search(self, topic_id: str) -> str:
        return f"{self.prefix}-topic-{topic_id}"

    @property
    def latest_alerts(self) -> str:
        return f"{self.prefix}-latest-alerts"

    @property
    def volume(self) -> str:
        return f"{self.prefix}-topic-volume"

    @property
    def places_map(self) -> str:
        return f"{self.prefix}-places-map"

    @property
    def dashboard(self) -> str:
        return f"{self.prefix}-overview"


def topic_query(topic_id: str) -> str:
    """The KQL (DQL in OpenSearch Dashboards) query of a topic's saved search."""
    return f'topics:"{topic_id}"'


def compact(value: Any) -> str:
    """JSON as Kibana stores it inside attributes (``searchSourceJSON``, ``panelsJSON``, ...)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def to_ndjson(objects: Iterable[dict[str, Any]]) -> str:
    """One object per line, keys sorted (stable files, readable diffs)."""
    return "".join(json.dumps(o, sort_keys=True, ensure_ascii=False) + "\n" for o in objects)


def from_ndjson(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def saved_searches(names: Names, topics: Sequence[Topic], make: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
    """One saved search per watch topic and "latest alerts", each built by a flavor's
    ``make(id, title, description, data_view, query, columns, sort_field)``."""
    out = [make(names.topic_search(t.id), f"newswatch: {t.name}",
                f"Articles on the watch topic {t.name} ({t.id}), newest first.", names.articles,
                topic_query(t.id), ARTICLE_COLUMNS, "date") for t in topics]
    out.append(make(names.latest_alerts, "newswatch: latest alerts", "Alerts raised, newest first.", names.alerts, "",
                    ALERT_COLUMNS, "created_at"))
    return out


def topics_of(watchlist: Any) -> Sequence[Topic]:
    return [Topic(t.id, t.name or t.id) for t in watchlist.topics]
