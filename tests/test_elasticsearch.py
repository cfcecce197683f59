"""ElasticsearchIndex against a local HTTP server that answers like Elasticsearch 8 / 9."""

from __future__ import annotations

import json
import socket

import pytest
from es_server import FakeElasticsearch, fake_elasticsearch
from pydantic import SecretStr

from pipeline.config import ElasticsearchSettings
from pipeline.errors import ConfigError, PermanentIndexError, TransientIndexError
from pipeline.index.elasticsearch import ElasticsearchIndex, public_url


def _doc(doc_id: str, published: str | None = "2017-05-12T08:00:00+00:00", **extra: object) -> dict[str, object]:
    return {
        "id": doc_id, "url": f"https://example.org/{doc_id}", "title": f"Title {doc_id}", "text": "Garrison at al-Tanf",
        "source": "example.org", "published": published, "fetched_at": "2026-11-20T10:00:00+00:00",
        "entities": [{"id": "al-tanf", "type": "base", "kind": "place", "name": "al-Tanf", "count": 2,
                      "lat": 33.49, "lon": 38.63, "governorate": "homs"},
                     {"id": "maghawir", "type": "armed_group", "kind": "actor", "name": "Maghawir al-Thawra",
                      "count": 1, "lat": None, "lon": None, "governorate": None}],
        "topics": ["al-tanf"], "topic_reasons": [], "enriched_at": "2026-11-20T10:00:01+00:00", **extra,
    }


def _index(server: FakeElasticsearch, **kw: object) -> ElasticsearchIndex:
    settings = ElasticsearchSettings(url=SecretStr(server.url), request_timeout=2.0)
    return ElasticsearchIndex(settings, retry_backoff=0.01, **kw)  # type: ignore[arg-type]


def _bulk_lines(server: FakeElasticsearch) -> list[dict[str, object]]:
    bulk = [r for r in server.requests if r.path == "/_bulk"]
    return [json.loads(line) for r in bulk for line in r.body.decode().splitlines() if line.strip()]


@pytest.mark.parametrize("version", ["8.15.3", "9.1.0"])
def test_headers_follow_the_server_major_version(version: str) -> None:
    with fake_elasticsearch(version) as server:
        idx = _index(server)
        report = idx.index_documents([_doc("a")])
        assert report.created == 1
        major = version.split(".")[0]
        bulk = next(r for r in server.requests if r.path == "/_bulk")
        assert bulk.headers["accept"] == f"application/vnd.elasticsearch+json; compatible-with={major}"
        assert bulk.headers["content-type"] == f"application/vnd.elasticsearch+x-ndjson; compatible-with={major}"
        # ES 8 refused nothing we sent after version detection
        assert idx.server_major == int(major)
        idx.close()


def test_bulk_request_shape_and_template_mapping() -> None:
    with fake_elasticsearch() as server:
        idx = _index(server)
        idx.index_documents([_doc("a"), _doc("b", published=None)])
        lines = _bulk_lines(server)
        assert lines[0] == {"create": {"_index": "newswatch-articles-2017.05", "_id": "a"}}
        assert lines[2] == {"create": {"_index": "newswatch-articles-2026.11", "_id": "b"}}  # fetched_at month
        assert lines[1]["locations"] == [{"lat": 33.49, "lon": 38.63}]
        assert lines[1]["date"] == "2017-05-12T08:00:00+00:00"
        tpl = server.templates["newswatch-articles"]
        assert tpl["index_patterns"] == ["newswatch-articles-*"]
        assert "newswatch-articles" in tpl["template"]["aliases"]
        props = tpl["template"]["mappings"]["properties"]
        assert tpl["template"]["mappings"]["dynamic"] is False
        assert props["title"]["analyzer"] == "english" and props["title"]["fields"]["keyword"]["type"] == "keyword"
        assert props["locations"]["type"] == "geo_point"
        assert props["entities"]["properties"]["id"]["type"] == "keyword"
        assert props["published"]["type"] == "date" and props["topics"]["type"] == "keyword"
        assert "newswatch-alerts" in server.templates
        assert idx.get("a") == _doc("a")  # stored as given, our extra fields stripped
        assert idx.count() == 2


def test_existing_ids_count_as_existing_even_in_another_month() -> None:
    with fake_elasticsearch() as server:
        idx = _index(server)
        assert idx.index_documents([_doc("a")]).created == 1
        again = idx.index_documents([_doc("a"), _doc("a", published="2017-06-01")])
        assert (again.created, again.existing, again.failed) == (0, 2, [])
        assert sum(len(d) for d in server.docs.values()) == 1


def test_409_from_a_concurrent_writer_is_counted_existing() -> None:
    with fake_elasticsearch() as server:
        idx = _index(server)
        server.docs["newswatch-articles-2017.05"] = {"a": {"id": "a"}}
        idx._existing_ids = lambda ids: set()  # type: ignore[method-assign]  # the race: not visible yet
        report = idx.index_documents([_doc("a"), _doc("b")])
        assert (report.created, report.existing) == (1, 1)


def test_per_item_429_is_retried_then_succeeds() -> None:
    with fake_elasticsearch() as server:
        server.throttle["b"] = 2
        idx = _index(server)
        report = idx.index_documents([_doc("a"), _doc("b")])
        assert (report.created, report.existing, report.failed) == (2, 0, [])
        assert [r.path for r in server.requests].count("/_bulk") == 3
        assert [line for line in _bulk_lines(server) if "create" in line][-1] == {
            "create": {"_index": "newswatch-articles-2017.05", "_id": "b"}}


def test_429_that_persists_raises_transient_never_drops() -> None:
    with fake_elasticsearch() as server:
        server.throttle["b"] = 99
        idx = _index(server, bulk_retries=2)
        with pytest.raises(TransientIndexError, match="still refused"):
            idx.index_documents([_doc("a"), _doc("b")])


def test_mapping_error_is_returned_in_failed() -> None:
    with fake_elasticsearch() as server:
        server.reject.add("bad")
        idx = _index(server)
        report = idx.index_documents([_doc("ok"), _doc("bad"), {"id": "", "url": ""}])
        assert report.created == 1
        assert sorted(report.failed) == [
            ("", "document has no id or url"),
            ("bad", "HTTP 400: document_parsing_exception: [1:50] failed to parse field [published] of type [date] "
                    "(illegal_argument_exception: failed to parse date field [yesterday])"),
        ]


def test_connection_refused_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = ElasticsearchSettings(url=SecretStr(f"http://user:hunter2@127.0.0.1:{port}"), request_timeout=2.0)
    idx = ElasticsearchIndex(settings)
    with pytest.raises(TransientIndexError) as info:
        idx.index_documents([_doc("a")])
    assert "hunter2" not in str(info.value) and f"127.0.0.1:{port}" in str(info.value)


def test_timeout_is_transient() -> None:
    with fake_elasticsearch() as server:
        idx = ElasticsearchIndex(ElasticsearchSettings(url=SecretStr(server.url), request_timeout=0.3))
        server.slow = 1.0
        with pytest.raises(TransientIndexError, match="Timeout"):
            idx.count()
        server.slow = 0.0


def test_search_filters_and_export_pages() -> None:
    with fake_elasticsearch() as server:
        idx = _index(server)
        idx.index_documents([_doc(f"d{i:03d}") for i in range(3)])
        hits = idx.search("garrison", topic="al-tanf", entity="al-tanf", since="2017-01-01", until="2018-01-01")
        assert [h.id for h in hits] == ["d000", "d001", "d002"]
        body = json.loads([r for r in server.requests if r.path.endswith("/_search")][-1].body)
        assert body["query"]["bool"]["must"][0]["multi_match"]["fields"] == ["title^3", "text"]
        assert {"range": {"date": {"gte": "2017-01-01", "lt": "2018-01-01"}}} in body["query"]["bool"]["filter"]
        assert idx.search("x", topic="deir-ez-zor") == []
        assert [d["id"] for d in idx.export()] == ["d000", "d001", "d002"]


def test_missing_url_and_old_server_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="ELASTICSEARCH_URL"):
        ElasticsearchIndex(ElasticsearchSettings())
    with fake_elasticsearch("7.17.0") as server:
        with pytest.raises(PermanentIndexError, match="cannot agree on an API version"):
            _index(server).count()


def test_retention_drops_old_months_and_alerts_index() -> None:
    with fake_elasticsearch() as server:
        idx = _index(server)
        idx.index_documents([_doc("old", published="2016-12-01"), _doc("mid", published="2017-05-01"),
                             _doc("new", published="2017-05-20")])
        assert idx.delete_older_than("2017-05-10") == 2
        assert [d["id"] for d in idx.export()] == ["new"]
        rep = idx.index_alerts([{"id": "al1", "topic": "al-tanf", "created_at": "2026-11-20T10:00:00+00:00"}])
        assert rep.created == 1 and idx.index_alerts([{"id": "al1"}]).existing == 1


def test_public_url_hides_credentials() -> None:
    assert public_url("https://elastic:secret@es.example:9243/") == "https://es.example:9243"


def test_refused_credentials_are_a_config_error_and_503_is_transient() -> None:
    with fake_elasticsearch() as server:
        server.fail_with = 401
        with pytest.raises(ConfigError, match="HTTP 401: security_exception"):
            _index(server).count()
        server.fail_with = 503
        with pytest.raises(TransientIndexError, match="HTTP 503"):
            _index(server).index_documents([_doc("a")])


def test_search_body_with_entity_terms() -> None:
    """The query built for entity terms (``es_query.search_body``): tagged docs score 10, spellings as phrases."""
    from pipeline.index.base import EntityTerm
    from pipeline.index.es_query import search_body as build_search_body

    term = EntityTerm(text="Deir Ezzor", ids=("deir-ez-zor",), topics=("deir-ez-zor",), spellings=("dayr az zawr",))
    body = build_search_body("oil", entity_terms=[term], topic="deir-ez-zor", limit=5)
    must = body["query"]["bool"]["must"]
    assert must[0]["multi_match"]["query"] == "oil" and must[0]["multi_match"]["operator"] == "and"
    should = must[1]["bool"]["should"]
    assert must[1]["bool"]["minimum_should_match"] == 1
    assert should[0]["constant_score"] == {"filter": {"bool": {"should": [
        {"terms": {"entities.id": ["deir-ez-zor"]}}, {"terms": {"topics": ["deir-ez-zor"]}}]}}, "boost": 10.0}
    assert [s["multi_match"]["query"] for s in should[1:]] == ["Deir Ezzor", "dayr az zawr"]
    assert all(s["multi_match"]["type"] == "phrase" for s in should[1:])
    assert body["query"]["bool"]["filter"] == [{"term": {"topics": "deir-ez-zor"}}]
    assert "sort" not in body and body["size"] == 5
    empty = build_search_body("", entity_terms=[])
    assert empty["sort"][0] == {"date": {"order": "desc", "missing": "_last"}}
    with fake_elasticsearch() as server:
        idx = _index(server)
        idx.index_documents([_doc("d001")])
        idx.search("", entity_terms=[term])
        sent = json.loads([r for r in server.requests if r.path.endswith("/_search")][-1].body)
        assert sent["query"]["bool"]["must"] == build_search_body("", entity_terms=[term])["query"]["bool"]["must"]
def test_source_filter_offset_highlight_marks_and_entities() -> None:
    with fake_elasticsearch() as server:
        idx = _index(server)
        idx.index_documents([_doc("d1"), _doc("d2", source="other.example"), _doc("d3")])
        hits = idx.search("garrison", source="example.org", limit=1, offset=1, highlight=("\ue000", "\ue001"))
        assert [h.id for h in hits] == ["d3"]
        assert hits[0].entities == [{"id": "al-tanf", "name": "al-Tanf", "kind": "place", "type": "base"},
                                    {"id": "maghawir", "name": "Maghawir al-Thawra", "kind": "actor",
                                     "type": "armed_group"}]
        body = json.loads([r for r in server.requests if r.path.endswith("/_search")][-1].body)
        assert body["from"] == 1 and body["size"] == 1
        assert {"term": {"source": "example.org"}} in body["query"]["bool"]["filter"]
        assert (body["highlight"]["pre_tags"], body["highlight"]["post_tags"]) == (["\ue000"], ["\ue001"])


def test_counts_are_aggregations() -> None:
    with fake_elasticsearch() as server:
        idx = _index(server)
        idx.index_documents([_doc("d1"), _doc("d2", published="2017-05-13T01:00:00+00:00", topics=[]),
                             _doc("d3", source="other.example", entities=[])])
        assert idx.counts("entity") == [("al-tanf", 2), ("maghawir", 2)]
        assert idx.counts("entity", limit=1) == [("al-tanf", 2)]
        body = json.loads([r for r in server.requests if r.path.endswith("/_search")][-1].body)
        assert body["size"] == 0 and body["aggs"]["by"]["terms"]["field"] == "entities.id"
        assert body["aggs"]["by"]["terms"]["size"] == 1
        assert idx.counts("topic") == [("al-tanf", 2)]
        assert idx.counts("source") == [("example.org", 2), ("other.example", 1)]
        assert idx.counts("day", source="example.org") == [("2017-05-12", 1), ("2017-05-13", 1)]
        assert idx.counts("day", limit=1) == [("2017-05-13", 1)]
        body = json.loads([r for r in server.requests if r.path.endswith("/_search")][-1].body)
        assert body["aggs"]["by"]["date_histogram"]["calendar_interval"] == "day"
        with pytest.raises(ValueError, match="cannot count by"):
            idx.counts("colour")  # type: ignore[arg-type]
