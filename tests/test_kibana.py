"""Kibana 8 and OpenSearch Dashboards saved objects: mapping and reference checks, shipped files, import API.

Kibana cannot run here: the import is tested against a local HTTP stand-in that records the request
(method, path, query, headers, multipart body) and answers like Kibana's saved-objects import API.
"""

from __future__ import annotations

import base64
import copy
import email.parser
import email.policy
import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kibana_check import index_mappings, problems

from pipeline.cli import main
from pipeline.kibana import kibana8, opensearch_dashboards
from pipeline.kibana.cli import render
from pipeline.kibana.common import Names, Topic, from_ndjson

PROJECT = Path(__file__).resolve().parents[1]
SHIPPED = {"kibana": PROJECT / "docker" / "kibana" / "kibana-8.ndjson",
           "opensearch-dashboards": PROJECT / "docker" / "kibana" / "opensearch-dashboards.ndjson"}
TOPICS = [Topic("al-tanf", "al-Tanf"), Topic("deir-ez-zor", "Deir ez-Zor")]
BUILDERS = {"kibana": kibana8.build, "opensearch-dashboards": opensearch_dashboards.build}


def _objects(flavor: str) -> list[dict[str, Any]]:
    return BUILDERS[flavor](Names("newswatch"), TOPICS)


def _find(objects: list[dict[str, Any]], type_: str) -> dict[str, Any]:
    return next(o for o in objects if o["type"] == type_)


@pytest.mark.parametrize("flavor", sorted(SHIPPED))
def test_shipped_files_are_the_objects_of_the_shipped_config(env: dict[str, str], flavor: str) -> None:
    assert SHIPPED[flavor].read_text(encoding="utf-8") == render(flavor), (
        f"regenerate: python -m pipeline kibana objects --flavor {flavor} -o {SHIPPED[flavor].relative_to(PROJECT)}")


@pytest.mark.parametrize("flavor", sorted(SHIPPED))
def test_objects_match_the_index_mapping_and_references_resolve(flavor: str) -> None:
    objects = from_ndjson(SHIPPED[flavor].read_text(encoding="utf-8"))
    assert problems(objects, index_mappings()) == []
    by_type: dict[str, list[str]] = {}
    for o in objects:
        by_type.setdefault(o["type"], []).append(o["id"])
    assert sorted(by_type["index-pattern"]) == ["newswatch-alerts", "newswatch-articles"]
    assert {"newswatch-topic-al-tanf", "newswatch-topic-deir-ez-zor", "newswatch-latest-alerts"} <= set(
        by_type["search"])
    assert by_type["dashboard"] == ["newswatch-overview"]
    views = {o["id"]: o["attributes"]["timeFieldName"] for o in objects if o["type"] == "index-pattern"}
    assert views == {"newswatch-articles": "date", "newswatch-alerts": "created_at"}


def test_kibana_objects_use_lens_and_maps_with_version_stamps() -> None:
    objects = _objects("kibana")
    assert {o["type"] for o in objects} == {"index-pattern", "search", "lens", "map", "dashboard"}
    for o in objects:
        assert o["coreMigrationVersion"] == "8.8.0" and o["typeMigrationVersion"]
    layers = json.loads(_find(objects, "map")["attributes"]["layerListJSON"])
    assert {layer["sourceDescriptor"].get("geoField") for layer in layers} == {None, "locations"}
    panels = json.loads(_find(objects, "dashboard")["attributes"]["panelsJSON"])
    assert [p["type"] for p in panels] == ["lens", "map", "search"]


def test_opensearch_dashboards_objects_use_classic_visualizations() -> None:
    objects = _objects("opensearch-dashboards")
    assert {o["type"] for o in objects} == {"index-pattern", "search", "visualization", "dashboard"}
    vis = {json.loads(o["attributes"]["visState"])["type"] for o in objects if o["type"] == "visualization"}
    assert vis == {"line", "tile_map"}
    for o in objects:
        assert "typeMigrationVersion" not in o and list(o["migrationVersion"]) == [o["type"]]


def _mutate(flavor: str, type_: str, change: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    objects = copy.deepcopy(_objects(flavor))
    change(_find(objects, type_))
    return objects


def _edit_json(attr: str, edit: Callable[[Any], None]) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        value = json.loads(obj["attributes"][attr])
        edit(value)
        obj["attributes"][attr] = json.dumps(value)
    return change


def _lens_column(name: str, key: str, value: str) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        obj["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]["articles"]["columns"][name][key] = value
    return change


BROKEN: list[tuple[str, str, Callable[[dict[str, Any]], None], str]] = [
    ("kibana", "index-pattern", lambda o: o["attributes"].update(timeFieldName="title"), "field 'title' is text"),
    ("kibana", "index-pattern", lambda o: o["attributes"].update(title="newswatch-article"), "no index or alias"),
    ("kibana", "search", lambda o: o["attributes"]["columns"].append("headline"), "no field 'headline'"),
    ("kibana", "search", lambda o: o["attributes"].update(sort=[["text", "desc"]]), "cannot be sorted"),
    ("kibana", "search", lambda o: o["attributes"]["columns"].append("topic_reasons"), "not indexed"),
    ("kibana", "lens", _lens_column("topic", "sourceField", "title"), "cannot be aggregated"),
    ("kibana", "lens", _lens_column("topic", "dataType", "number"), "the column says number"),
    ("kibana", "lens", _lens_column("date", "sourceField", "topics"), "used as date"),
    ("kibana", "map", _edit_json("layerListJSON", lambda layers: layers[1]["sourceDescriptor"].update(
        geoField="source")), "field 'source' is keyword, used as geo_point"),
    ("kibana", "map", _edit_json("layerListJSON", lambda layers: layers[2]["sourceDescriptor"].update(
        indexPatternRefName="layer_9_source_index_pattern")), "'layer_9_source_index_pattern', which is not"),
    ("kibana", "dashboard", lambda o: o["references"][0].update(id="no-such-lens"), "does not resolve"),
    ("kibana", "dashboard", lambda o: o["references"][1].update(type="lens"), "points to a lens"),
    ("opensearch-dashboards", "visualization", _edit_json("visState", lambda v: v["aggs"][1]["params"].update(
        field="published_at")), "no field 'published_at'"),
    ("opensearch-dashboards", "dashboard", lambda o: o["references"][2].update(name="panel_7"),
     "'panel_2', which is not"),
]


@pytest.mark.parametrize(("flavor", "type_", "change", "expected"), BROKEN,
                         ids=[f"{f}-{t}-{e[:24]}" for f, t, _, e in BROKEN])
def test_the_check_catches_a_broken_object(flavor: str, type_: str, change: Callable[[dict[str, Any]], None],
                                            expected: str) -> None:
    found = problems(_mutate(flavor, type_, change), index_mappings())
    assert any(expected in p for p in found), found


@pytest.mark.parametrize("flavor", sorted(SHIPPED))
def test_the_check_catches_a_mapping_change(flavor: str) -> None:
    mappings = copy.deepcopy(index_mappings())
    mappings["newswatch-articles"]["locations"] = {"type": "keyword"}
    mappings["newswatch-alerts"].pop("created_at")
    found = problems(_objects(flavor), mappings)
    assert any("'locations' is keyword, used as geo_point" in p for p in found), found
    assert any("no field 'created_at'" in p for p in found), found


def test_objects_follow_the_watchlist_and_prefix(env: dict[str, str], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config"
    config.mkdir()
    for name in ("settings.yaml", "feeds.yaml"):
        (config / name).write_text((PROJECT / "config" / name).read_text())
    watchlist = (PROJECT / "config" / "watchlist.yaml").read_text().replace("id: deir-ez-zor", "id: deir-hafer")
    (config / "watchlist.yaml").write_text(watchlist)
    monkeypatch.setenv("PIPELINE_CONFIG_DIR", str(config))
    objects = from_ndjson(render("kibana", "ops"))
    ids = {o["id"] for o in objects}
    assert {"ops-articles", "ops-topic-al-tanf", "ops-topic-deir-hafer"} <= ids and "ops-topic-deir-ez-zor" not in ids
    assert problems(objects, index_mappings("ops")) == []


# -- import: a local stand-in for Kibana's saved-objects import API -------------------------------------------

class _StandIn:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.reply: tuple[int, dict[str, Any]] = (200, {"success": True, "successCount": 0, "successResults": []})
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stand_in.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                status, payload = stand_in.reply
                if status == 200 and payload.get("successCount") == "count":
                    payload = {**payload, "successCount": len(_file_part(stand_in.requests[-1])[1].splitlines())}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def kibana() -> Iterator[_StandIn]:
    stand_in = _StandIn()
    yield stand_in
    stand_in.close()


def _file_part(request: dict[str, Any]) -> tuple[Any, str]:
    raw = f"Content-Type: {request['headers']['Content-Type']}\r\n\r\n".encode() + request["body"]
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    parts = list(message.iter_parts())
    assert len(parts) == 1
    return parts[0], parts[0].get_payload(decode=True).decode("utf-8")


def test_import_sends_multipart_ndjson_with_xsrf_and_credentials(env: dict[str, str], kibana: _StandIn,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    kibana.reply = (200, {"success": True, "successCount": "count", "successResults": []})
    url = kibana.url.replace("http://", "http://elastic:s3cr%40t@")
    assert main(["kibana", "import", "--url", url, "--overwrite", "--space", "ops"]) == 0
    [req] = kibana.requests
    assert req["path"] == "/s/ops/api/saved_objects/_import?overwrite=true"
    headers = {k.lower(): v for k, v in req["headers"].items()}
    assert headers["kbn-xsrf"] == "true" and "osd-xsrf" not in headers
    assert headers["authorization"] == "Basic " + base64.b64encode(b"elastic:s3cr@t").decode()
    assert headers["content-type"].startswith("multipart/form-data; boundary=")
    part, payload = _file_part(req)
    assert part.get_param("name", header="content-disposition") == "file"
    assert part.get_filename() == "newswatch.ndjson"
    assert payload == render("kibana")
    out, err = capsys.readouterr()
    assert out == f"kibana import: 8 objects imported into {kibana.url} (space ops)\n"
    assert "s3cr" not in out + err


def test_import_to_opensearch_dashboards_and_api_key_from_env(env: dict[str, str], kibana: _StandIn,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KIBANA_API_KEY", "a2V5OnNlY3JldA==")
    assert main(["kibana", "import", "--url", kibana.url + "/", "--flavor", "opensearch-dashboards"]) == 0
    [req] = kibana.requests
    headers = {k.lower(): v for k, v in req["headers"].items()}
    assert req["path"] == "/api/saved_objects/_import"
    assert headers["osd-xsrf"] == "true" and "kbn-xsrf" not in headers
    assert headers["authorization"] == "ApiKey a2V5OnNlY3JldA=="
    assert _file_part(req)[1] == render("opensearch-dashboards")
    assert "a2V5" not in "".join(capsys.readouterr())


def test_import_reports_each_refused_object_on_one_line(env: dict[str, str], kibana: _StandIn,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    kibana.reply = (200, {"success": False, "successCount": 6, "errors": [
        {"id": "newswatch-overview", "type": "dashboard", "meta": {"title": "newswatch: overview"},
         "error": {"type": "conflict"}},
        {"id": "newswatch-places-map", "type": "map", "title": "newswatch: mentioned places",
         "error": {"type": "unsupported_type"}},
        {"id": "newswatch-topic-volume", "type": "lens", "error": {"type": "missing_references", "references": [
            {"type": "index-pattern", "id": "newswatch-articles"}]}},
    ]})
    assert main(["kibana", "import", "--url", kibana.url]) == 1
    out, err = capsys.readouterr()
    assert "6 objects imported" in out
    lines = err.splitlines()
    assert len(lines) == 3
    assert "dashboard newswatch-overview (newswatch: overview): already exists (use --overwrite" in lines[0]
    assert "does not know the type 'map'" in lines[1]
    assert "missing references: index-pattern newswatch-articles" in lines[2]


@pytest.mark.parametrize(("status", "body", "expected"), [
    (401, {"statusCode": 401, "error": "Unauthorized", "message": "[security_exception] unable to authenticate"},
     "HTTP 401: [security_exception] unable to authenticate"),
    (400, {"statusCode": 400, "error": "Bad Request", "message": "Request must contain a kbn-xsrf header."},
     "HTTP 400: Request must contain a kbn-xsrf header."),
    (404, {"statusCode": 404, "error": "Not Found"}, "no saved-objects import API here"),
])
def test_import_http_errors_are_one_line(env: dict[str, str], kibana: _StandIn, capsys: pytest.CaptureFixture[str],
                                         status: int, body: dict[str, Any], expected: str) -> None:
    kibana.reply = (status, body)
    url = kibana.url.replace("http://", "http://admin:hunter2@")
    assert main(["kibana", "import", "--url", url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and "hunter2" not in err and "Traceback" not in err


def test_import_unreachable_and_bad_usage(env: dict[str, str], capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    assert main(["kibana", "import", "--url", f"http://u:pw@127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot connect" in err and f"http://127.0.0.1:{port}" in err and "pw" not in err
    monkeypatch.delenv("KIBANA_URL", raising=False)
    assert main(["kibana", "import"]) == 2
    assert "--url: required" in capsys.readouterr().err
    assert main(["kibana", "import", "--url", "ftp://kibana"]) == 2
    assert "expected http(s)://" in capsys.readouterr().err
    assert main(["kibana", "import", "--url", "http://kibana:5601", "--file", str(tmp_path / "none.ndjson")]) == 2
    assert "cannot read" in capsys.readouterr().err
