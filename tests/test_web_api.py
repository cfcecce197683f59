"""The web app through FastAPI's TestClient: JSON API, pages, escaping, errors."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from web_fixtures import HOSTILE_FEED_ERROR, HOSTILE_TITLE, HOSTILE_URL, client_for, open_test_context

from pipeline.engines import OpenSearchEngine
from pipeline.errors import TransientIndexError
from pipeline.web import queries
from pipeline.web.context import WebContext


@pytest.fixture
def ctx(env: dict[str, str]) -> Iterator[WebContext]:
    context = open_test_context()
    yield context
    context.close()


@pytest.fixture
def client(ctx: WebContext) -> Iterator[TestClient]:
    with client_for(ctx, raise_server_exceptions=False) as c:
        yield c


def test_search_api_filters_pages_and_match_ranges(client: TestClient) -> None:
    first = client.get("/api/search", params={"q": "siege", "topic": "deir-ez-zor"}).json()
    assert first["page"] == 1 and first["per_page"] == 20 and first["has_next"] is True
    assert len(first["hits"]) == 20 and all(h["topics"] == ["deir-ez-zor"] for h in first["hits"])
    hit = first["hits"][0]
    assert hit["matches"] and all(hit["snippet"][a:b].lower() == "siege" for a, b in hit["matches"])
    assert "\ue000" not in hit["snippet"] and "[" not in hit["snippet"]
    assert {e["id"] for e in hit["entities"]} == {"deir-ez-zor", "damascus"}
    second = client.get("/api/search", params={"q": "siege", "topic": "deir-ez-zor", "page": 2}).json()
    assert len(second["hits"]) == 5 and second["has_next"] is False
    assert not {h["id"] for h in first["hits"]} & {h["id"] for h in second["hits"]}
    newest = client.get("/api/search", params={"limit": 3}).json()["hits"]
    assert [h["id"] for h in newest] == ["doc0101", "doc0025", "doc0024"]  # no query: newest first
    by_source = client.get("/api/search", params={"source": "Desert Wire"}).json()["hits"]
    assert [h["id"] for h in by_source] == ["doc0100"]
    dated = client.get("/api/search", params={"q": "siege", "since": "2017-09-10", "until": "2017-09-12"}).json()
    assert sorted(h["id"] for h in dated["hits"]) == ["doc0010", "doc0011"]
    by_entity = client.get("/api/search", params={"entity": "al-tanf", "since": ""}).json()["hits"]
    assert [h["id"] for h in by_entity] == ["doc0100"]  # an empty field (as forms send) is no filter


@pytest.mark.parametrize("query", ["Deir Ezzor", "Dayr az-Zawr", "دير الزور", "deir ez-zor"])
def test_search_knows_every_spelling_like_the_cli(client: TestClient, query: str) -> None:
    """The page's box reads places as the CLI's search does: tagged articles first, then any spelling in the text."""
    data = client.get("/api/search", params={"q": query, "limit": 100}).json()
    ids = [h["id"] for h in data["hits"]]
    assert sorted(ids[:25]) == [f"doc{i:04d}" for i in range(1, 26)]  # tagged with Deir ez-Zor: first
    assert ids[25:] == ["doc0101"]  # not tagged, but spells it in the text
    assert [(t["text"], t["entity"]["id"]) for t in data["understood"]] == [(query, "deir-ez-zor")]
    assert data["understood"][0]["spellings"] > 5
    hostile = data["hits"][25]
    assert [hostile["snippet"][a:b] for a, b in hostile["matches"]] == ["Deir ez-Zor"]
    page = client.get("/search", params={"q": query, "page": 2})
    assert page.status_code == 200 and page.text.count('class="hit"') == 6
    assert "Read as" in page.text and 'href="/search?entity=deir-ez-zor" title="city">Deir ez-Zor</a>' in page.text
    # escaped first, then marked: the spelling is highlighted, the feed's markup stays text
    assert "&lt;script&gt;x&lt;/script&gt; near <mark>Deir ez-Zor</mark>" in page.text and "<i>" not in page.text


def test_search_words_and_place_together(client: TestClient) -> None:
    ids = [h["id"] for h in client.get("/api/search", params={"q": "Dayr az-Zawr bread", "limit": 100}).json()["hits"]]
    assert sorted(ids) == [f"doc{i:04d}" for i in range(1, 26)]  # the rest of the query must match too
    assert client.get("/api/search", params={"q": "Garrison"}).json()["understood"] == []


def test_unknown_filter_ids_say_so_and_suggest(client: TestClient) -> None:
    r = client.get("/api/search", params={"topic": "deir-ezzor"})
    assert r.status_code == 400
    assert r.json()["error"] == "search: unknown topic 'deir-ezzor'; did you mean deir-ez-zor?"
    r = client.get("/api/search", params={"q": "x", "entity": "mayadin"})
    assert r.status_code == 400 and "unknown entity 'mayadin'; did you mean al-mayadin" in r.json()["error"]
    page = client.get("/search", params={"q": "siege", "topic": "al-tanff"})
    assert page.status_code == 400 and "did you mean al-tanf?" in page.text
    assert 'class="notice bad"' in page.text and 'value="siege"' in page.text  # the form is kept to fix the id
    assert 'Search with <a href="/search?q=siege&amp;topic=al-tanf">al-tanf</a> instead.' in page.text
    page = client.get("/search", params={"entity": "mayadin"})
    assert '<a href="/search?entity=al-mayadin">al-mayadin</a>' in page.text
    assert client.get("/api/map", params={"topic": "tanf"}).json()["error"].endswith("did you mean al-tanf?")
    assert "did you mean deir-ez-zor" in client.get("/api/topics/deir-ezor").json()["error"]


def test_bad_parameters_are_400_with_one_line(client: TestClient) -> None:
    for params, needle in (({"since": "yesterday"}, "since: not a date"), ({"page": 0}, "page"),
                           ({"limit": 1000}, "limit")):
        r = client.get("/api/search", params=params)
        assert r.status_code == 400 and needle in r.json()["error"], r.text
    page = client.get("/search", params={"until": "31/12/2017"})
    assert page.status_code == 400 and "until: not a date" in page.text and "<html" in page.text


def test_hostile_feed_text_renders_as_text(client: TestClient) -> None:
    pages = [client.get("/search", params={"q": "siege news"}), client.get("/alerts"),
             client.get("/topics/deir-ez-zor"), client.get("/articles/doc0101"), client.get("/search?q=bold"),
             client.get("/feeds")]
    for r in pages:
        assert r.status_code == 200, r.text
        body = r.text
        assert "<script" not in body.lower(), r.url  # no script at all, ours or theirs
        assert not re.search(r"<[a-z][^>]*\son\w+\s*=", body, re.I), r.url  # no event-handler attribute
        assert not re.search(r"<img|<i>|<b ", body), r.url
        assert HOSTILE_URL not in body and 'href="javascript' not in body.lower(), r.url
    assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in pages[0].text
    assert "&lt;i&gt;Evil&lt;/i&gt; Times" in pages[1].text
    assert "550 &lt;script&gt;alert(&#34;e&#34;)&lt;/script&gt; mailbox unavailable" in pages[1].text
    assert re.search(r"<mark>bold</mark>", pages[4].text), "escaped first, then highlighted"
    assert "&lt;b onmouseover=&#34;alert(2)&#34;&gt;<mark>bold</mark>&lt;/b&gt;" in pages[4].text
    feeds = pages[5].text  # a feed's name, URL and last error come from config and from other servers
    assert "&lt;script&gt;alert(&#34;f&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(4)&gt; Wire" in feeds
    assert "HTTP 502 from proxy: &lt;script&gt;alert(&#34;e2&#34;)&lt;/script&gt;&lt;img src=y onerror=alert(5)&gt;" in feeds
    assert 'href="https://evil.example/rss?q=&#34;&gt;&lt;script&gt;alert(6)&lt;/script&gt;"' in feeds
    api = client.get("/api/articles/doc0101").json()
    assert api["title"] == HOSTILE_TITLE  # the API returns the data as is: JSON is not HTML
    assert client.get("/api/feeds").json()["feeds"][0]["last_error"] == HOSTILE_FEED_ERROR


def test_search_page_shows_results_filters_and_pager(client: TestClient) -> None:
    r = client.get("/search", params={"q": "siege", "topic": "deir-ez-zor"})
    assert r.status_code == 200
    assert r.text.count('class="hit"') == 20 and "<mark>siege</mark>" in r.text
    assert 'href="/search?q=siege&amp;topic=deir-ez-zor&amp;page=2"' in r.text
    assert '<option value="deir-ez-zor" selected>' in r.text
    assert '<option value="Desert Wire">Desert Wire (1)</option>' in r.text
    assert 'href="/search?entity=damascus"' in r.text and 'href="/articles/doc0025"' in r.text  # equal BM25: newest first
    assert 'href="https://levant.example/25"' in r.text  # the original article
    home = client.get("/")
    assert home.status_code == 200 and 'class="hit"' not in home.text and 'href="/topics/al-tanf"' in home.text


def test_topic_page_and_api(client: TestClient) -> None:
    data = client.get("/api/topics/deir-ez-zor").json()
    assert data["topic"]["articles"] == 25 and data["topic"]["alerts"] == 2
    assert data["per_day"][0] == {"day": "2017-09-01", "count": 1} and len(data["per_day"]) == 25
    assert data["chart_unit"] == "day" and sum(b["count"] for b in data["chart"]) == 25
    assert [h["id"] for h in data["latest"]][:2] == ["doc0025", "doc0024"]
    assert [a["id"] for a in data["alerts"]] == ["a3", "a1"]
    assert data["alerts"][1]["why"] == ["Deir ez-Zor (core) via 'deir ez zor'"]  # repeated reasons folded
    page = client.get("/topics/deir-ez-zor")
    assert page.status_code == 200 and "Articles per day" in page.text and page.text.count("<rect") >= 25
    assert 'href="/search?topic=deir-ez-zor&amp;since=2017-09-01&amp;until=2017-09-02"' in page.text
    assert client.get("/topics/nope").status_code == 404
    assert client.get("/api/topics/nope").json() == {"error": "no watch topic 'nope'", "status": 404}
    assert [t["id"] for t in client.get("/api/topics").json()] == ["al-tanf", "deir-ez-zor"]


def test_alerts_page_and_api_show_delivery_per_channel(client: TestClient) -> None:
    alerts = client.get("/api/alerts").json()
    assert [a["id"] for a in alerts] == ["a3", "a2", "a1"]
    slack = alerts[1]["channels"]["slack"]
    assert slack["status"] == "pending" and slack["attempts"] == 1 and "429" in slack["last_error"]
    assert slack["next_attempt_at"]
    assert alerts[0]["channels"]["email"]["status"] == "failed"
    assert [a["id"] for a in client.get("/api/alerts", params={"status": "failed"}).json()] == ["a3"]
    assert [a["id"] for a in client.get("/api/alerts", params={"topic": "al-tanf"}).json()] == ["a2"]
    page = client.get("/alerts")
    assert page.status_code == 200
    assert 'class="badge pending">slack: pending' in page.text and "1 attempt" in page.text
    assert "HTTP 429: rate limited" in page.text and 'class="badge failed">email: failed' in page.text
    assert "also reported by Gulf Ledger" in page.text


def test_map_api_and_page(client: TestClient) -> None:
    places = {p["id"]: p for p in client.get("/api/map").json()["places"]}
    assert places["deir-ez-zor"]["articles"] == 25 and places["deir-ez-zor"]["on_map"] is True
    assert places["al-tanf"]["lat"] == pytest.approx(33.5, abs=0.1)
    assert "evil" not in places  # not a catalogue place
    assert list(client.get("/api/map", params={"topic": "al-tanf"}).json()["places"][0].values())[0] == "al-tanf"
    page = client.get("/map")
    assert page.status_code == 200
    assert page.text.count('class="marker"') == 3  # Deir ez-Zor, Damascus, al-Tanf
    assert 'href="/search?entity=deir-ez-zor"' in page.text and "<path" in page.text


def test_article_page_and_unknown_ids(client: TestClient) -> None:
    r = client.get("/articles/doc0001")
    assert r.status_code == 200 and "Day 1 of the siege" in r.text and "A. Writer" in r.text
    assert "Deir ez-Zor (core) via &#39;Deir ez-Zor&#39; in the text" in r.text
    for path in ("/articles/nope", "/articles/..%2F..%2Fetc", "/no/such/page"):
        page = client.get(path)
        assert page.status_code == 404 and "404" in page.text and "Traceback" not in page.text
    assert client.get("/api/articles/nope").status_code == 404


def test_unexpected_errors_and_index_failures_show_no_trace(client: TestClient, ctx: WebContext,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("secret internals at /srv/x.py line 3")

    monkeypatch.setattr(queries, "topics", boom)
    for path in ("/topics", "/api/topics"):
        r = client.get(path)
        assert r.status_code == 500
        assert "secret internals" not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text
        assert "reference" in r.text

    def down(*_a: object, **_k: object) -> None:
        raise TransientIndexError("index write failed: database is locked")

    monkeypatch.setattr(ctx.index, "search", down)
    r = client.get("/search", params={"q": "x"})
    assert r.status_code == 503 and "database is locked" in r.text and "Traceback" not in r.text
    assert client.get("/api/search").json()["status"] == 503
    assert client.post("/search").status_code == 405


def test_headers_host_check_and_no_script(client: TestClient) -> None:
    r = client.get("/")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp  # nothing may run
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "same-origin"
    assert "newswatch_csrf" in r.headers.get("set-cookie", "") and "SameSite=strict" in r.headers["set-cookie"]
    assert client.get("/", headers={"host": "evil.example"}).status_code == 421  # DNS rebinding
    assert client.get("/", headers={"host": "localhost:8000"}).status_code == 200
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/static/vendor/world-atlas/LICENSE").status_code == 200


def test_openapi_documents_every_route_and_docs_need_no_cdn(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    assert {"/api/search", "/api/filters", "/api/topics", "/api/topics/{topic_id}", "/api/map", "/api/alerts",
            "/api/articles/{doc_id}", "/api/health", "/api/feeds"} <= set(spec["paths"])
    assert not any(p for p in spec["paths"] if not p.startswith("/api/"))  # pages are not API
    params = {p["name"] for p in spec["paths"]["/api/search"]["get"]["parameters"]}
    assert params == {"q", "topic", "entity", "source", "since", "until", "page", "limit"}
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and "/api/search" in docs.text and "cdn" not in docs.text.lower()
    assert client.get("/docs").status_code == 404
    health = client.get("/api/health").json()
    assert health == {"index": "sqlite", "documents": 27, "alerts": 3}


def test_pages_work_on_the_elasticsearch_adapter(env: dict[str, str]) -> None:
    """The same pages over ElasticsearchIndex (a local server answering like ES; filters and aggregations)."""
    from es_server import fake_elasticsearch
    from pydantic import SecretStr

    from pipeline.config import ElasticsearchSettings
    from pipeline.index.elasticsearch import ElasticsearchIndex

    with fake_elasticsearch() as server:
        ctx = open_test_context(index=ElasticsearchIndex(ElasticsearchSettings(url=SecretStr(server.url))))
        try:
            with client_for(ctx) as client:
                topic = client.get("/api/topics/deir-ez-zor").json()
                assert topic["topic"]["articles"] == 25 and len(topic["per_day"]) == 25
                assert {p["id"]: p["articles"] for p in client.get("/api/map").json()["places"]}["deir-ez-zor"] == 25
                page2 = client.get("/api/search", params={"topic": "deir-ez-zor", "page": 2}).json()
                assert len(page2["hits"]) == 5 and page2["has_next"] is False
                for path in ("/", "/search?topic=deir-ez-zor", "/topics/deir-ez-zor", "/map", "/alerts"):
                    assert client.get(path).status_code == 200, path
            searches = [r for r in server.requests if r.path.endswith("/_search")]
            assert any(b'"aggs"' in r.body for r in searches) and any(b'"from": 20' in r.body
                                                                       or b'"from":20' in r.body for r in searches)
        finally:
            ctx.close()


@pytest.mark.opensearch
def test_pages_work_on_a_real_opensearch_node(env: dict[str, str], real_opensearch: OpenSearchEngine) -> None:
    """The same pages over OpenSearchIndex on the session's OpenSearch 2.19 node: a spelling of a place the
    corpus does not use, the map's counts (aggregations), a topic's days, and the HTML pages."""
    from pydantic import SecretStr

    from pipeline.config import OpenSearchSettings
    from pipeline.index.opensearch import OpenSearchIndex

    index = OpenSearchIndex(OpenSearchSettings(url=SecretStr(real_opensearch.url),
                                               index_prefix=f"nw-web-{uuid.uuid4().hex[:8]}", request_timeout=10))
    ctx = open_test_context(index=index)
    try:
        with client_for(ctx) as client:
            found = client.get("/api/search", params={"q": "Dayr az-Zawr", "limit": 100}).json()
            ids = [h["id"] for h in found["hits"]]
            assert sorted(ids[:25]) == [f"doc{i:04d}" for i in range(1, 26)]  # tagged with Deir ez-Zor: first
            assert ids[25:] == ["doc0101"]  # spells it in the text only
            assert found["understood"][0]["entity"]["id"] == "deir-ez-zor"
            marked = found["hits"][25]  # OpenSearch marks each word of the spelling: Deir, ez, Zor
            first, last = marked["matches"][0][0], marked["matches"][-1][1]
            assert marked["snippet"][first:last] == "Deir ez-Zor"
            places = {p["id"]: p["articles"] for p in client.get("/api/map").json()["places"]}
            assert places == {"deir-ez-zor": 25, "damascus": 25, "al-tanf": 1}
            assert [p["id"] for p in client.get("/api/map", params={"topic": "al-tanf"}).json()["places"]] == [
                "al-tanf"]
            topic = client.get("/api/topics/deir-ez-zor").json()
            assert topic["topic"]["articles"] == 25 and topic["topic"]["alerts"] == 2
            assert topic["per_day"][0] == {"day": "2017-09-01", "count": 1} and len(topic["per_day"]) == 25
            assert [h["id"] for h in topic["latest"]][:2] == ["doc0025", "doc0024"]
            page2 = client.get("/api/search", params={"topic": "deir-ez-zor", "page": 2}).json()
            assert len(page2["hits"]) == 5 and page2["has_next"] is False
            page = client.get("/search", params={"q": "Dayr az-Zawr", "page": 2})  # escaped, then marked
            assert page.status_code == 200 and page.text.count('class="hit"') == 6
            assert "&lt;/script&gt; near <mark>Deir</mark> <mark>ez</mark>-<mark>Zor</mark>" in page.text
            for path in ("/topics/deir-ez-zor", "/map", "/alerts", "/feeds", "/articles/doc0101"):
                assert client.get(path).status_code == 200, path
    finally:
        index.drop_everything()
        ctx.close()
