"""pipeline.jobs.ingest end to end against two local sites: sharing, per-host limits, what is retried."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_fetch_support import Handler, LocalServer

from pipeline.bus import TOPIC_RAW, open_bus
from pipeline.config import Config, FeedConfig, Settings, Watchlist
from pipeline.jobs import _Flow, _Publisher, ingest
from pipeline.models import Article, FeedEntry
from pipeline.newsroom import content, render

STAMP = "2017-06-01T08:00:00+00:00"


def _article_html(title: str) -> bytes:
    para = (f"{title}: reporters on the ground described the convoy and the checkpoints along the road, "
            "and officials answered questions about the garrison, the supply route and the weeks ahead. ")
    return (f"<html lang='en'><head><title>{title}</title><meta property='og:type' content='article'></head>"
            f"<body><article><h1>{title}</h1><p>{para * 2}</p><p>{para}</p><p>{para}</p></article></body>"
            "</html>").encode()


def _page(body: bytes, status: int = 200, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    def route(h: Handler) -> None:
        h.reply(status, body, {"Content-Type": "text/html; charset=utf-8", **(headers or {})})
    return route


def _feed(server: LocalServer, urls: list[str]):  # type: ignore[no-untyped-def]
    site = content.Site("t", "Test site", "tests", "/feed.xml", "rss")
    items = [(u, u, u.rsplit("/", 1)[-1], "", STAMP) for u in urls]
    body = render.rss_feed(site, server.url("/"), server.url("/feed.xml"), items)

    def route(h: Handler) -> None:
        h.reply(200, body, {"Content-Type": "application/rss+xml; charset=utf-8"})
    return route


@pytest.fixture
def sites() -> Iterator[tuple[LocalServer, LocalServer]]:
    """Site A lists a1, a2, a 404 and B's shared story; site B lists shared, b1 and a page that answers 503."""
    a, b = LocalServer(), LocalServer()
    try:
        for name in ("a1", "a2"):
            a.route(f"/{name}", _page(_article_html(f"Story {name}")))
        a.route("/missing", _page(b"gone", status=404))
        for name in ("shared", "b1"):
            b.route(f"/{name}", _page(_article_html(f"Story {name}")))
        b.route("/flaky", _page(b"busy", status=503, headers={"Retry-After": "0"}))
        a.route("/feed.xml", _feed(a, [a.url("/a1"), a.url("/a2"), a.url("/missing"), b.url("/shared")]))
        b.route("/feed.xml", _feed(b, [b.url("/shared"), b.url("/b1"), b.url("/flaky")]))
        yield a, b
    finally:
        a.close()
        b.close()


def _config(tmp_path: Path, a: LocalServer, b: LocalServer) -> Config:
    settings = Settings.model_validate({
        "data_dir": str(tmp_path / "var"),
        "bus": "sqlite",
        "index": "sqlite",
        "fetch": {"delay_seconds": 0, "allow_hosts": ["127.0.0.1"], "per_host_concurrency": 1, "retries": 0},
        "extract": {"workers": 1},
    })
    feeds = [FeedConfig.model_validate({"url": s.url("/feed.xml"), "name": n}) for s, n in ((a, "A"), (b, "B"))]
    return Config(settings=settings, feeds=feeds, watchlist=Watchlist(topics=[]))


def _hits(server: LocalServer, path: str) -> int:
    return server.state.paths().count(path)


def test_ingest_shares_fetches_limits_hosts_and_retries_only_transient_failures(
        tmp_path: Path, sites: tuple[LocalServer, LocalServer]) -> None:
    a, b = sites
    config = _config(tmp_path, a, b)
    first = ingest(config)
    assert (first.feeds_polled, first.new_entries) == (2, 7)
    assert (first.fetched, first.fetch_failed, first.extracted, first.published) == (4, 2, 4, 4)
    assert _hits(b, "/shared") == 1  # listed by both feeds, fetched once
    assert a.state.max_in_flight == 1 and b.state.max_in_flight == 1  # per_host_concurrency
    bus = open_bus(config.settings)
    try:
        consumer = bus.consumer(TOPIC_RAW, "test")
        urls = sorted(Article.from_dict(m.value).url for m in consumer.poll(max_records=100, timeout=0.5))
        consumer.close()
    finally:
        bus.close()
    assert urls == sorted([a.url("/a1"), a.url("/a2"), b.url("/shared"), b.url("/b1")])

    second = ingest(config)
    assert (second.new_entries, second.published) == (1, 0)  # only the 503 page comes back
    assert _hits(b, "/flaky") == 2
    assert _hits(a, "/missing") == 1  # a 404 is final
    assert _hits(b, "/shared") == 1 and _hits(a, "/a1") == 1


class _Store:
    def __init__(self) -> None:
        self.marked: list[FeedEntry] = []

    def mark_seen(self, entries: list[FeedEntry]) -> int:
        self.marked.extend(entries)
        return len(entries)


def test_an_entry_read_after_its_url_was_settled_is_marked_seen(tmp_path: Path) -> None:
    settings = Settings.model_validate({"data_dir": str(tmp_path / "var")})
    store = _Store()
    publisher = _Publisher(bus=None, store=store, batch_size=10)  # type: ignore[arg-type]
    flow = _Flow(Config(settings=settings, feeds=[], watchlist=Watchlist(topics=[])), None, publisher,  # type: ignore[arg-type]
                 None, [], False, None, None, None)  # type: ignore[arg-type]
    url = "https://news.example/story"
    flow.groups[url] = [FeedEntry(feed_url="https://a.example/feed", url=url)]
    flow.settled[url] = True  # published (or failed for good) already
    late = FeedEntry(feed_url="https://b.example/feed", url=url + "?utm_source=rss")
    flow.add(late)
    assert store.marked == [late]
    flow.settled[url] = False  # failed transiently: nothing is marked, the next poll retries it
    flow.add(FeedEntry(feed_url="https://c.example/feed", url=url))
    assert store.marked == [late]


def test_an_ingest_over_before_the_extraction_pool_warmed_up_raises_nothing() -> None:
    """A pass with nothing new ended before the warm-up thread submitted its first task: the thread died with
    'cannot schedule new futures after shutdown' and a traceback in the log (found by the failure benchmark)."""
    import concurrent.futures as cf
    import threading

    from pipeline.jobs import _warm

    errors: list[BaseException] = []
    old_hook = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)  # type: ignore[assignment,return-value]
    try:
        pool = cf.ProcessPoolExecutor(max_workers=1)
        pool.shutdown()
        _warm(pool, 2).join(10)
    finally:
        threading.excepthook = old_hook
    assert errors == []
