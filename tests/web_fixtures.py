"""A small corpus, alert store and web app for the web tests (hostile feed text included)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from pipeline.config import Config, FeedConfig, Settings, load_settings, load_watchlist, save_feeds_file
from pipeline.index import SearchIndex
from pipeline.models import AlertRecord, Outcome, TopicReason
from pipeline.state import StateStore
from pipeline.web.app import create_app
from pipeline.web.context import WebContext, open_context
from pipeline.web.security import WebSecurity

HOSTILE_TITLE = '<script>alert("t")</script><img src=x onerror=alert(1)> Siege news'
HOSTILE_URL = "javascript:alert(document.cookie)"
HOSTILE_FEED_NAME = '<script>alert("f")</script><img src=x onerror=alert(4)> Wire'
HOSTILE_FEED_URL = 'https://evil.example/rss?q="><script>alert(6)</script>'
HOSTILE_FEED_ERROR = 'HTTP 502 from proxy: <script>alert("e2")</script><img src=y onerror=alert(5)>'


def entity(eid: str, name: str, kind: str = "place", etype: str = "city") -> dict[str, Any]:
    return {"id": eid, "type": etype, "kind": kind, "name": name, "count": 1, "lat": None, "lon": None,
            "governorate": None}


def doc(i: int, title: str, text: str, *, published: str, source: str = "The Levant Observer",
        topics: list[str] | None = None, entities: list[dict[str, Any]] | None = None,
        url: str | None = None) -> dict[str, Any]:
    reasons = [{"id": t, "name": t, "reasons": [{"entity_id": "deir-ez-zor", "entity_name": "Deir ez-Zor",
                                                 "relation": "core", "variant": "deir ez zor", "text": "Deir ez-Zor",
                                                 "start": 0, "end": 11, "field": "text"}]} for t in topics or []]
    return {"id": f"doc{i:04d}", "url": url or f"https://levant.example/{i}", "title": title, "text": text,
            "source": source, "feed_url": "https://levant.example/feed", "authors": ["A. Writer"],
            "published": published, "fetched_at": "2026-11-20T10:00:00+00:00", "language": "en",
            "entities": entities or [], "topics": topics or [], "topic_reasons": reasons,
            "enriched_at": "2026-11-20T10:00:00+00:00"}


def corpus() -> list[dict[str, Any]]:
    dez = entity("deir-ez-zor", "Deir ez-Zor")
    tanf = entity("al-tanf", "al-Tanf", etype="base")
    damascus = entity("damascus", "Damascus")
    docs = [doc(i, f"Siege report {i}", f"Day {i} of the siege of Deir ez-Zor on the Euphrates. Bread is scarce.",
                published=f"2017-09-{i:02d}T08:00:00+00:00", topics=["deir-ez-zor"], entities=[dez, damascus])
            for i in range(1, 26)]
    docs.append(doc(100, "Garrison at al-Tanf reinforced", "Troops arrived at the al-Tanf garrison near the border.",
                    published="2017-06-09T08:00:00+00:00", source="Desert Wire", topics=["al-tanf"],
                    entities=[tanf]))
    docs.append(doc(101, HOSTILE_TITLE, 'The siege <b onmouseover="alert(2)">bold</b> & "quotes" <script>x</script> '
                    'near Deir ez-Zor <i>again</i>',
                    published="2017-10-01T08:00:00+00:00", source="<i>Evil</i> Times", url=HOSTILE_URL,
                    entities=[entity("evil", '<img src=x onerror=alert(3)>')]))
    return docs


def add_alerts(ctx: WebContext) -> list[str]:
    """Three alerts: one sent by file, one whose Slack delivery is being retried, one hostile and failed."""
    store = ctx.alerts.store
    reason = TopicReason("deir-ez-zor", "Deir ez-Zor", "core", "deir ez zor", "Deir ez-Zor", 0, 11)
    records = [
        AlertRecord("a1", "deir-ez-zor", "doc0001", "doc0001", "https://levant.example/1", "Siege report 1",
                    "The Levant Observer", "2017-09-01T08:00:00+00:00", "2026-11-20T10:00:00+00:00",
                    [reason, reason], "the siege", ["Gulf Ledger (https://gulf.example/1)"]),
        AlertRecord("a2", "al-tanf", "doc0100", "doc0100", "https://levant.example/100",
                    "Garrison at al-Tanf reinforced", "Desert Wire", "2017-06-09T08:00:00+00:00",
                    "2026-11-20T10:01:00+00:00",
                    [TopicReason("al-tanf", "al-Tanf", "core", "al tanf", "al-Tanf", 0, 7)]),
        AlertRecord("a3", "deir-ez-zor", "doc0101", "doc0101", HOSTILE_URL, HOSTILE_TITLE, "<i>Evil</i> Times",
                    None, "2026-11-20T10:02:00+00:00", [reason]),
    ]
    for n, rec in enumerate(records):
        store.insert_alert(rec, "immediate", 1000.0 + n)
    store.enqueue("a1", "file", "alert", ["alerts.jsonl"], 1000.0)
    store.mark_sent(store.claim_next(["file"], 1000.0, 60.0), {}, 1001.0)  # type: ignore[arg-type]
    store.enqueue("a2", "slack", "alert", ["#ops"], 1001.0)
    row = store.claim_next(["slack"], 1001.0, 60.0)
    assert row is not None
    store.mark_retry(row, "HTTP 429: rate limited (Retry-After 30)", 4_000_000_000.0, 1002.0)
    store.enqueue("a3", "email", "alert", ["analysts@example.org"], 1002.0)
    row = store.claim_next(["email"], 1002.0, 60.0)
    assert row is not None
    store.mark_failed(row, '550 <script>alert("e")</script> mailbox unavailable', 1003.0)
    return [r.id for r in records]


def add_hostile_feed(settings: Settings) -> Path:
    """A feeds file in the data dir with one feed whose name, URL and last error carry markup; it failed
    its one poll. Returns the file."""
    feeds_file = settings.data_dir / "feeds.yaml"
    save_feeds_file(feeds_file, [FeedConfig(url=HOSTILE_FEED_URL, name=HOSTILE_FEED_NAME)])
    with StateStore(settings.state_db) as store:
        store.record_poll_failure(HOSTILE_FEED_URL, HOSTILE_FEED_ERROR, base_interval_s=300.0)
        store.record_many([Outcome("feeds", HOSTILE_FEED_URL, "http_502", HOSTILE_FEED_ERROR, ok=False)])
    return feeds_file


def open_test_context(security: WebSecurity | None = None, index: SearchIndex | None = None) -> WebContext:
    """The web context over the environment's data dir (the ``env`` fixture's), with the corpus indexed,
    and the feeds file :func:`add_hostile_feed` writes."""
    settings = load_settings()
    settings = settings.model_copy(update={"feeds_file": add_hostile_feed(settings)})
    ctx = open_context(Config(settings=settings, feeds=[], watchlist=load_watchlist(settings)), security,
                       index=index)
    ctx.index.index_documents(corpus())
    add_alerts(ctx)
    return ctx


@contextmanager
def client_for(ctx: WebContext, **kw: Any) -> Iterator[TestClient]:
    with TestClient(create_app(ctx), **{"base_url": "http://127.0.0.1", **kw}) as client:
        yield client


@contextmanager
def served(security: WebSecurity | None = None, **kw: Any) -> Iterator[tuple[WebContext, TestClient]]:
    """The test context (corpus and alerts) and a client of its app; the context is closed after."""
    ctx = open_test_context(security)
    try:
        with client_for(ctx, **kw) as client:
            yield ctx, client
    finally:
        ctx.close()


@contextmanager
def serving(config: Config, **kw: Any) -> Iterator[TestClient]:
    """A client of the app over ``config`` as it is (no corpus, no alerts added); closed after."""
    ctx = open_context(config)
    try:
        with client_for(ctx, **kw) as client:
            yield client
    finally:
        ctx.close()


def csrf_of(client: TestClient) -> str:
    """This test browser's CSRF token (the cookie the first page hands out)."""
    assert client.get("/login").status_code == 200
    return str(client.cookies.get("newswatch_csrf"))
