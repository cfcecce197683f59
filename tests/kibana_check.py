"""Checks of saved objects against the index mappings: every field an object uses exists with a type that
fits its use, and every reference resolves. Used by ``test_kibana.py``; no Kibana needed.

The mappings come from the code that builds the index templates, through :func:`index_mappings` only:
repoint that one function when the mapping code moves (e.g. to a module shared by Elasticsearch and
OpenSearch).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

__all__ = ["index_mappings", "flatten", "problems"]

#: Elasticsearch field type -> the type Kibana gives the field in a data view
KIBANA_TYPE = {"keyword": "string", "text": "string", "date": "date", "geo_point": "geo_point", "integer": "number",
               "long": "number", "float": "number", "double": "number", "boolean": "boolean"}
AGGREGATABLE = {"keyword", "date", "integer", "long", "float", "double", "boolean", "geo_point"}
SORTABLE = {"keyword", "date", "integer", "long", "float", "double", "boolean"}


def index_mappings(prefix: str = "newswatch") -> dict[str, dict[str, Any]]:
    """Index or alias name -> its mapping ``properties``, as the pipeline creates them.

    The one place that knows where the mapping code lives.
    """
    from pipeline.index.es_mapping import alerts_template, articles_template

    out: dict[str, dict[str, Any]] = {}
    for template in (articles_template(prefix), alerts_template(prefix)):
        properties = template["template"]["mappings"]["properties"]
        names = [*template["template"].get("aliases", {}), *template["index_patterns"]]
        for name in names:
            if "*" not in name:
                out[name] = properties
    return out


def flatten(properties: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """``{"entities": {"properties": {"id": ...}}}`` -> ``{"entities.id": {...}}``; objects keep their spec."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in properties.items():
        path = prefix + name
        if "properties" in spec:
            out.update(flatten(spec["properties"], path + "."))
        else:
            out[path] = {"type": "object", **spec} if "type" not in spec else spec
    return out


def _requirement_problem(field: str, spec: dict[str, Any] | None, need: str) -> str | None:
    if spec is None:
        return f"no field {field!r} in the mapping"
    es_type = spec["type"]
    if es_type == "object" or spec.get("enabled") is False or spec.get("index") is False:
        return f"field {field!r} is not indexed ({es_type}, enabled={spec.get('enabled', True)})"
    if need == "exists":
        return None
    if need in ("date", "geo_point", "number") and KIBANA_TYPE.get(es_type) != need:
        return f"field {field!r} is {es_type}, used as {need}"
    if need == "aggregatable" and es_type not in AGGREGATABLE:
        return f"field {field!r} is {es_type}, which cannot be aggregated"
    if need == "sortable" and es_type not in SORTABLE:
        return f"field {field!r} is {es_type}, which cannot be sorted on"
    if need.startswith("lens:") and KIBANA_TYPE.get(es_type) != need[5:]:
        return f"field {field!r} is {es_type} ({KIBANA_TYPE.get(es_type)}), the column says {need[5:]}"
    return None


def _kql_fields(query: str) -> list[str]:
    return re.findall(r"([A-Za-z_][\w.]*)\s*:", query)


def _uses(obj: dict[str, Any]) -> Iterator[tuple[str | None, str, str]]:
    """(reference name of the data view, field, requirement) for every field ``obj`` uses."""
    a = obj["attributes"]
    if obj["type"] == "index-pattern":
        yield "<self>", a["timeFieldName"], "date"
        for key in ("fieldFormatMap", "fieldAttrs"):
            for field in json.loads(a.get(key) or "{}"):
                yield "<self>", field, "exists"
        return
    source = json.loads(a.get("kibanaSavedObjectMeta", {}).get("searchSourceJSON") or "{}")
    ref = source.get("indexRefName")
    if ref:
        for field in _kql_fields(source.get("query", {}).get("query", "")):
            yield ref, field, "exists"
    if obj["type"] == "search":
        for column in a["columns"]:
            yield ref, column, "exists"
        for field, _ in a["sort"]:
            yield ref, field, "sortable"
    elif obj["type"] == "lens":
        for layer_id, layer in a["state"]["datasourceStates"]["formBased"]["layers"].items():
            for column in layer["columns"].values():
                if column.get("sourceField", "___records___") == "___records___":
                    continue
                op = column["operationType"]
                need = {"date_histogram": "date", "terms": "aggregatable"}.get(op, "exists")
                yield f"indexpattern-datasource-layer-{layer_id}", column["sourceField"], need
                yield f"indexpattern-datasource-layer-{layer_id}", column["sourceField"], "lens:" + column["dataType"]
    elif obj["type"] == "map":
        for layer in json.loads(a["layerListJSON"]):
            desc = layer.get("sourceDescriptor", {})
            if "indexPatternRefName" not in desc:
                continue
            ref = desc["indexPatternRefName"]
            yield ref, desc["geoField"], "geo_point"
            for field in desc.get("tooltipProperties", []):
                yield ref, field, "exists"
            for metric in desc.get("metrics", []):
                if "field" in metric:
                    yield ref, metric["field"], "number"
    elif obj["type"] == "visualization":
        for agg in json.loads(a["visState"]).get("aggs", []):
            field = agg.get("params", {}).get("field")
            if field:
                need = {"date_histogram": "date", "terms": "aggregatable", "geohash_grid": "geo_point"}.get(
                    agg["type"], "number")
                yield ref, field, need


def _names_in_attributes(obj: dict[str, Any]) -> list[str]:
    """Reference names that the attributes point through (each must be in ``references``)."""
    a = obj["attributes"]
    names = [str(ref) for ref, _field, _need in _uses(obj) if ref != "<self>"]
    if obj["type"] == "dashboard":
        stamped_8x = "typeMigrationVersion" in obj
        for panel in json.loads(a["panelsJSON"]):
            names.append(f"{panel['panelIndex']}:{panel['panelRefName']}" if stamped_8x else panel["panelRefName"])
    return names


def problems(objects: list[dict[str, Any]], mappings: dict[str, dict[str, Any]]) -> list[str]:
    """Everything wrong with ``objects`` against ``mappings`` (index/alias name -> properties); [] = fine."""
    out: list[str] = []
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for o in objects:
        key = (o["type"], o["id"])
        if key in by_key:
            out.append(f"{key[0]} {key[1]}: defined twice")
        by_key[key] = o
    fields_of: dict[str, dict[str, dict[str, Any]]] = {}
    for (type_, id_), o in by_key.items():
        if type_ == "index-pattern":
            title = o["attributes"]["title"]
            if title not in mappings:
                out.append(f"index-pattern {id_}: no index or alias {title!r} in the mapping code")
            fields_of[id_] = flatten(mappings.get(title, {}))
    for (type_, id_), o in by_key.items():
        label = f"{type_} {id_}"
        refs = {r["name"]: r for r in o["references"]}
        for r in o["references"]:
            if (r["type"], r["id"]) not in by_key:
                out.append(f"{label}: reference {r['name']} -> {r['type']} {r['id']} does not resolve")
        for name in _names_in_attributes(o):
            if name not in refs:
                out.append(f"{label}: uses reference {name!r}, which is not in its references")
        if type_ == "dashboard" and "typeMigrationVersion" in o:
            for panel in json.loads(o["attributes"]["panelsJSON"]):
                ref = refs.get(f"{panel['panelIndex']}:{panel['panelRefName']}")
                if ref and ref["type"] != panel["type"]:
                    out.append(f"{label}: panel {panel['panelIndex']} is a {panel['type']} but points to a "
                               f"{ref['type']}")
        for ref_name, field, need in _uses(o):
            view = id_ if ref_name == "<self>" else refs.get(ref_name, {}).get("id")
            if view not in fields_of:
                continue  # reported above as an unresolved reference
            problem = _requirement_problem(field, fields_of[view].get(field), need)
            if problem:
                out.append(f"{label}: {problem} (data view {view})")
    return out
