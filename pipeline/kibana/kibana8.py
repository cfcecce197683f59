"""Saved objects for Kibana 8.8 and later (9.x included), as its export API writes them.

* ``index-pattern`` (data view) over the articles alias, time field ``date``, and one over the alerts index
  (time field ``created_at``); ``url`` formatted as a link in both.
* ``search``: one per watch topic (``topics:"<id>"``, newest first) and "latest alerts".
* ``lens``: topic volume over time (articles per date bucket, stacked by the top topics).
* ``map``: mentioned places, clusters of ``locations`` at every zoom and the articles themselves from zoom 8.
* ``dashboard``: the lens chart, the map and the latest alerts, by reference.

Version stamps: every object carries ``coreMigrationVersion`` 8.8.0 and the ``typeMigrationVersion`` of
the shape it is written in, so Kibana runs exactly the migrations after that shape on import (objects
without stamps would be put through every migration since 7.0). The shapes follow Kibana's own sample
data and exports: search 7.9.3 and dashboard 8.7.0 (as the flights sample dashboard), index-pattern 8.0.0,
lens 8.6.0 (the ``formBased`` datasource), map 7.4.0 (the layer format Kibana's sample maps are still
written in and migrated from). Importing needs Kibana 8.8 or later: older versions refuse the stamps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .common import (
    DASHBOARD,
    EMPTY_QUERY,
    MAP_TOOLTIP,
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

CORE_VERSION = "8.8.0"
TYPE_VERSIONS = {"index-pattern": "8.0.0", "search": "7.9.3", "lens": "8.6.0", "map": "7.4.0", "dashboard": "8.7.0"}
PANEL_VERSION = "8.8.0"


def _obj(type_: str, id_: str, attributes: dict[str, Any], references: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
    return {"type": type_, "id": id_, "attributes": attributes, "references": list(references),
            "coreMigrationVersion": CORE_VERSION, "typeMigrationVersion": TYPE_VERSIONS[type_], "managed": False}


def _ref(name: str, type_: str, id_: str) -> dict[str, str]:
    return {"name": name, "type": type_, "id": id_}


def _data_view(id_: str, name: str, time_field: str, time_label: str) -> dict[str, Any]:
    return _obj("index-pattern", id_, {
        "title": id_,
        "name": name,
        "timeFieldName": time_field,
        "fieldFormatMap": compact({"url": {"id": "url"}}),
        "fieldAttrs": compact({time_field: {"customLabel": time_label}}),
        "runtimeFieldMap": "{}",
        "sourceFilters": "[]",
        "allowNoIndex": True,
    })


def _search(id_: str, title: str, description: str, data_view: str, query: str, columns: Sequence[str],
            sort_field: str) -> dict[str, Any]:
    source = {"query": {"query": query, "language": "kuery"}, "filter": [], "highlightAll": True, "version": True,
              "indexRefName": SEARCH_INDEX_REF}
    return _obj("search", id_, {
        "title": title,
        "description": description,
        "hits": 0,
        "columns": list(columns),
        "sort": [[sort_field, "desc"]],
        "version": 1,
        "kibanaSavedObjectMeta": {"searchSourceJSON": compact(source)},
    }, [_ref(SEARCH_INDEX_REF, "index-pattern", data_view)])


def _volume_lens(names: Names) -> dict[str, Any]:
    layer = "articles"
    columns = {
        "date": {"label": "Date", "customLabel": True, "dataType": "date", "operationType": "date_histogram",
                 "sourceField": "date", "isBucketed": True, "scale": "interval",
                 "params": {"interval": "auto", "includeEmptyRows": True, "dropPartials": False}},
        "topic": {"label": "Watch topic", "customLabel": True, "dataType": "string", "operationType": "terms",
                  "sourceField": "topics", "isBucketed": True, "scale": "ordinal",
                  "params": {"size": 10, "orderBy": {"type": "column", "columnId": "articles"},
                             "orderDirection": "desc", "otherBucket": False, "missingBucket": False,
                             "parentFormat": {"id": "terms"}}},
        "articles": {"label": "Articles", "customLabel": True, "dataType": "number", "operationType": "count",
                     "isBucketed": False, "scale": "ratio", "sourceField": "___records___",
                     "params": {"emptyAsNull": True}},
    }
    visualization = {
        "legend": {"isVisible": True, "position": "right"},
        "valueLabels": "hide",
        "preferredSeriesType": "bar_stacked",
        "layers": [{"layerId": layer, "layerType": "data", "seriesType": "bar_stacked", "xAccessor": "date",
                    "splitAccessor": "topic", "accessors": ["articles"], "position": "top",
                    "showGridlines": False}],
    }
    state = {
        "datasourceStates": {"formBased": {"layers": {layer: {
            "columns": columns, "columnOrder": ["date", "topic", "articles"], "incompleteColumns": {}}}}},
        "visualization": visualization,
        "query": {"query": "", "language": "kuery"},
        "filters": [],
        "internalReferences": [],
        "adHocDataViews": {},
    }
    return _obj("lens", names.volume, {
        "title": VOLUME[0],
        "description": VOLUME[1],
        "visualizationType": "lnsXY",
        "state": state,
    }, [_ref(f"indexpattern-datasource-layer-{layer}", "index-pattern", names.articles)])


def _style(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """A map style property: ``static`` (one value) or ``dynamic`` (from a field)."""
    return {"type": "STATIC", "options": options} if kind == "static" else {"type": "DYNAMIC", "options": options}


def _places_map(names: Names) -> dict[str, Any]:
    count = {"name": "doc_count", "origin": "source"}
    layers = [
        {"id": "basemap", "type": "VECTOR_TILE", "alpha": 1, "visible": True, "minZoom": 0, "maxZoom": 24,
         "style": {}, "sourceDescriptor": {"type": "EMS_TMS", "isAutoSelect": True}},
        {"id": "mentions", "label": "Mentions (clusters)", "type": "VECTOR", "alpha": 0.8, "visible": True,
         "minZoom": 0, "maxZoom": 24,
         "sourceDescriptor": {"id": "mentions-grid", "type": "ES_GEO_GRID", "geoField": "locations",
                              "requestType": "point", "resolution": "FINE",
                              "metrics": [{"type": "count", "label": "mentions"}],
                              "indexPatternRefName": "layer_1_source_index_pattern"},
         "style": {"type": "VECTOR", "properties": {
             "fillColor": _style("dynamic", {"field": count, "color": "Blues"}),
             "lineColor": _style("static", {"color": "#FFFFFF"}),
             "lineWidth": _style("static", {"size": 1}),
             "iconSize": _style("dynamic", {"field": count, "minSize": 6, "maxSize": 28}),
             "labelText": _style("dynamic", {"field": count}),
         }}},
        {"id": "articles", "label": "Articles", "type": "VECTOR", "alpha": 1, "visible": True,
         "minZoom": 8, "maxZoom": 24,
         "sourceDescriptor": {"id": "articles-docs", "type": "ES_SEARCH", "geoField": "locations", "limit": 2048,
                              "filterByMapBounds": True, "tooltipProperties": list(MAP_TOOLTIP),
                              "indexPatternRefName": "layer_2_source_index_pattern"},
         "style": {"type": "VECTOR", "properties": {
             "fillColor": _style("static", {"color": "#1F5A94"}),
             "lineColor": _style("static", {"color": "#FFFFFF"}),
             "lineWidth": _style("static", {"size": 1}),
             "iconSize": _style("static", {"size": 6}),
         }}},
    ]
    lat, lon = SYRIA_CENTER
    map_state = {"zoom": 5.6, "center": {"lon": lon, "lat": lat}, "timeFilters": {"from": "now-30d", "to": "now"},
                 "refreshConfig": {"isPaused": True, "interval": 0}, "query": {"language": "kuery", "query": ""},
                 "filters": []}
    return _obj("map", names.places_map, {
        "title": PLACES[0],
        "description": PLACES[1] + " Articles from zoom 8.",
        "mapStateJSON": compact(map_state),
        "layerListJSON": compact(layers),
        "uiStateJSON": compact({"isLayerTOCOpen": True, "openTOCDetails": []}),
    }, [_ref("layer_1_source_index_pattern", "index-pattern", names.articles),
        _ref("layer_2_source_index_pattern", "index-pattern", names.articles)])


def _dashboard(names: Names) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    refs: list[dict[str, str]] = []
    layout = [  # panel index, type, id, title, x, y, w, h
        ("volume", "lens", names.volume, "Topic volume over time", 0, 0, 48, 14),
        ("map", "map", names.places_map, "Mentioned places", 0, 14, 24, 22),
        ("alerts", "search", names.latest_alerts, "Latest alerts", 24, 14, 24, 22),
    ]
    for index, type_, id_, title, x, y, w, h in layout:
        ref_name = f"panel_{index}"
        panels.append({"version": PANEL_VERSION, "type": type_, "panelIndex": index, "panelRefName": ref_name,
                       "gridData": {"x": x, "y": y, "w": w, "h": h, "i": index},
                       "embeddableConfig": {"enhancements": {}}, "title": title})
        refs.append(_ref(f"{index}:{ref_name}", type_, id_))
    return _obj("dashboard", names.dashboard, {
        "title": DASHBOARD[0],
        "description": DASHBOARD[1],
        "panelsJSON": compact(panels),
        "optionsJSON": compact({"useMargins": True, "syncColors": False, "syncCursor": True, "syncTooltips": False,
                                "hidePanelTitles": False}),
        "timeRestore": True,
        "timeFrom": "now-30d",
        "timeTo": "now",
        "refreshInterval": {"pause": True, "value": 60000},
        "version": 1,
        "kibanaSavedObjectMeta": {"searchSourceJSON": compact(EMPTY_QUERY)},
    }, refs)


def build(names: Names, topics: Sequence[Topic]) -> list[dict[str, Any]]:
    """Every object, data views first (Kibana resolves references within one import file in any order)."""
    objects = [
        _data_view(names.articles, "newswatch articles", "date", "Published (fetched, if undated)"),
        _data_view(names.alerts, "newswatch alerts", "created_at", "Alert raised"),
    ]
    objects += saved_searches(names, topics, _search)
    objects += [_volume_lens(names), _places_map(names), _dashboard(names)]
    return objects
