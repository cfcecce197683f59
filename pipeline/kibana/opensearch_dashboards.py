"""The same objects for OpenSearch Dashboards 2.x, which forked from Kibana 7.10.2.

What differs from :mod:`.kibana8`, and why:

* No Lens and no Elastic Maps there: the topic volume is a classic ``visualization`` (``line``: a
  ``date_histogram`` on ``date`` split by a ``terms`` on ``topics``), the places map a Coordinate Map
  (``tile_map``: a ``geohash_grid`` on ``locations``).
* Version stamps are 7.10's ``migrationVersion`` map (no ``coreMigrationVersion``/``typeMigrationVersion``):
  index-pattern 7.6.0, search 7.9.3, visualization 7.10.0, dashboard 7.9.3, the newest migration of each
  type in OpenSearch Dashboards, so it runs none of them and refuses nothing as "from a newer version".
* Dashboard panels reference their objects as ``panel_<n>`` (7.x), not ``<panelIndex>:panel_<n>`` (8.x).
* The import API wants the header ``osd-xsrf`` instead of ``kbn-xsrf``.

Saved searches and data views keep Kibana's shape (DQL is KQL under another name: ``language: kuery``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .common import (
    DASHBOARD,
    EMPTY_QUERY,
    PLACES,
    SEARCH_INDEX_REF,
    SYRIA_CENTER,
    VOLUME,
    Names,
    Topic,
    compact,
    saved_searches,
)

__all__ = ["build"]

MIGRATION_VERSIONS = {"index-pattern": "7.6.0", "search": "7.9.3", "visualization": "7.10.0", "dashboard": "7.9.3"}
PANEL_VERSION = "7.10.2"


def _obj(type_: str, id_: str, attributes: dict[str, Any], references: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
    return {"type": type_, "id": id_, "attributes": attributes, "references": list(references),
            "migrationVersion": {type_: MIGRATION_VERSIONS[type_]}}


def _index_ref(data_view: str) -> list[dict[str, str]]:
    return [{"name": SEARCH_INDEX_REF, "type": "index-pattern", "id": data_view}]


def _search_source(query: str) -> dict[str, Any]:
    source = {"query": {"query": query, "language": "kuery"}, "filter": [], "indexRefName": SEARCH_INDEX_REF}
    return {"searchSourceJSON": compact(source)}


def _data_view(id_: str, time_field: str) -> dict[str, Any]:
    return _obj("index-pattern", id_, {"title": id_, "timeFieldName": time_field,
                                       "fieldFormatMap": compact({"url": {"id": "url"}})})


def _search(id_: str, title: str, description: str, data_view: str, query: str, columns: Sequence[str],
            sort_field: str) -> dict[str, Any]:
    return _obj("search", id_, {
        "title": title, "description": description, "hits": 0, "columns": list(columns),
        "sort": [[sort_field, "desc"]], "version": 1, "kibanaSavedObjectMeta": _search_source(query),
    }, _index_ref(data_view))


def _visualization(id_: str, title: str, description: str, vis_type: str, params: dict[str, Any],
                   aggs: list[dict[str, Any]], data_view: str) -> dict[str, Any]:
    vis_state = {"title": title, "type": vis_type, "params": params, "aggs": aggs}
    return _obj("visualization", id_, {
        "title": title, "description": description, "visState": compact(vis_state), "uiStateJSON": "{}",
        "version": 1, "kibanaSavedObjectMeta": _search_source(""),
    }, _index_ref(data_view))


def _volume(names: Names) -> dict[str, Any]:
    params = {
        "type": "line",
        "grid": {"categoryLines": False},
        "categoryAxes": [{"id": "CategoryAxis-1", "type": "category", "position": "bottom", "show": True,
                          "style": {}, "scale": {"type": "linear"}, "labels": {"show": True, "filter": True,
                                                                                "truncate": 100}, "title": {}}],
        "valueAxes": [{"id": "ValueAxis-1", "name": "LeftAxis-1", "type": "value", "position": "left", "show": True,
                       "style": {}, "scale": {"type": "linear", "mode": "normal"},
                       "labels": {"show": True, "rotate": 0, "filter": False, "truncate": 100},
                       "title": {"text": "Articles"}}],
        "seriesParams": [{"show": True, "type": "line", "mode": "normal", "data": {"label": "Articles", "id": "1"},
                          "valueAxis": "ValueAxis-1", "drawLinesBetweenPoints": True, "lineWidth": 2,
                          "interpolate": "linear", "showCircles": True}],
        "addTooltip": True, "addLegend": True, "legendPosition": "right", "times": [], "addTimeMarker": False,
        "labels": {}, "thresholdLine": {"show": False, "value": 10, "width": 1, "style": "full", "color": "#E7664C"},
    }
    aggs = [
        {"id": "1", "enabled": True, "type": "count", "schema": "metric", "params": {"customLabel": "Articles"}},
        {"id": "2", "enabled": True, "type": "date_histogram", "schema": "segment",
         "params": {"field": "date", "useNormalizedOpenSearchInterval": True, "interval": "auto", "drop_partials": False,
                    "min_doc_count": 1, "extended_bounds": {}, "customLabel": "Date"}},
        {"id": "3", "enabled": True, "type": "terms", "schema": "group",
         "params": {"field": "topics", "orderBy": "1", "order": "desc", "size": 10, "otherBucket": False,
                    "otherBucketLabel": "Other", "missingBucket": False, "missingBucketLabel": "Missing",
                    "customLabel": "Watch topic"}},
    ]
    return _visualization(names.volume, *VOLUME, "line", params, aggs, names.articles)


def _places_map(names: Names) -> dict[str, Any]:
    lat, lon = SYRIA_CENTER
    params = {"colorSchema": "Yellow to Red", "mapType": "Scaled Circle Markers", "isDesaturated": True,
              "addTooltip": True, "heatClusterSize": 1.5, "legendPosition": "bottomright", "mapZoom": 6,
              "mapCenter": [lat, lon], "wms": {"enabled": False, "options": {"format": "image/png",
                                                                              "transparent": True}}}
    aggs = [
        {"id": "1", "enabled": True, "type": "count", "schema": "metric", "params": {"customLabel": "Mentions"}},
        {"id": "2", "enabled": True, "type": "geohash_grid", "schema": "segment",
         "params": {"field": "locations", "autoPrecision": True, "precision": 5, "useGeocentroid": True,
                    "isFilteredByCollar": True}},
    ]
    return _visualization(names.places_map, *PLACES, "tile_map", params, aggs, names.articles)


def _dashboard(names: Names) -> dict[str, Any]:
    layout = [  # panel index, type, id, x, y, w, h
        ("1", "visualization", names.volume, 0, 0, 48, 14),
        ("2", "visualization", names.places_map, 0, 14, 24, 22),
        ("3", "search", names.latest_alerts, 24, 14, 24, 22),
    ]
    panels, refs = [], []
    for n, (index, type_, id_, x, y, w, h) in enumerate(layout):
        panels.append({"version": PANEL_VERSION, "panelIndex": index, "panelRefName": f"panel_{n}",
                       "gridData": {"x": x, "y": y, "w": w, "h": h, "i": index}, "embeddableConfig": {}})
        refs.append({"name": f"panel_{n}", "type": type_, "id": id_})
    return _obj("dashboard", names.dashboard, {
        "title": DASHBOARD[0],
        "description": DASHBOARD[1],
        "hits": 0,
        "panelsJSON": compact(panels),
        "optionsJSON": compact({"hidePanelTitles": False, "useMargins": True}),
        "timeRestore": True, "timeFrom": "now-30d", "timeTo": "now",
        "refreshInterval": {"pause": True, "value": 60000},
        "version": 1,
        "kibanaSavedObjectMeta": {"searchSourceJSON": compact(EMPTY_QUERY)},
    }, refs)


def build(names: Names, topics: Sequence[Topic]) -> list[dict[str, Any]]:
    objects = [_data_view(names.articles, "date"), _data_view(names.alerts, "created_at")]
    objects += saved_searches(names, topics, _search)
    objects += [_volume(names), _places_map(names), _dashboard(names)]
    return objects
