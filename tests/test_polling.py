"""Polling many feeds: concurrent polls are bounded by the network, not by the state store; the passes of
a run share one session (connections, robots.txt, extraction processes, stages). Local servers only;
host names are mapped to 127.0.0.1 by a fake resolver."""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from test_fetch_support import Handler, LocalServer
from test_ingest import _article_html, _feed, _page

from pipeline.config import Config, FeedConfig, Settings, Watchlist
from pipeline.jobs import ingest
from pipeline.models import FeedEntry
from pipeline.session import RunSession
from pipeline.state import StateStore

FEEDS, HOSTS, ITEMS = 48, 16, 3
NETWORK_S = 0.25  # each feed answers after this long
POLL_THREADS = 8


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> None:
    """h0.example .. h15.example resolve to 127.0.0.1 (distinct hosts for politeness, one server)."""
    real = socket.getaddrinfo

    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host.endswith(".example") and host.startswith("h"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def _items(n: int) -> list[str]:
    return [f"https://news{n}.invalid/story/{k}" for k in range(ITEMS)]


def _slow_feed(h: Handler) -> None:
    """After NETWORK_S, a feed whose body changes every time (so it is parsed and its entries looked up in
    the seen keys) but whose entries are all old."""
    time.sleep(NETWORK_S)
    n = int(h.path.split("=", 1)[1])
    items = "".join(f"<item><title>{u}</title><link>{u}</link><guid>{u}</guid></item>" for u in _items(n))
    body = (f"<?xml version='1.0'?><rss version='2.0'><channel><title>feed {n}</title>"
            f"<lastBuildDate>{formatdate(time.time())}</lastBuildDate><description>{time.monotonic()}</description>"
            f"{items}</channel></rss>").encode()
    h.reply(200, body, {"Content-Type": "application/rss+xml"})


@pytest.fixture
def slow_site(names: None) -> Iterator[LocalServer]:
    srv = LocalServer()
    srv.route("/feed", _slow_feed)
    yield srv
    srv.close()


def test_concurrent_polls_take_the_network_time_not_the_state_stores(
    tmp_path: Path, slow_site: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.model_validate({
        "data_dir": str(tmp_path / "var"),
        "fetch": {"delay_seconds": 0, "allow_hosts": ["127.0.0.1"], "retries": 0},
    })
    feeds = [FeedConfig(url=slow_site.url(f"/feed?n={n}", host=f"h{n % HOSTS}.example")) for n in range(FEEDS)]
    config = Config(settings=settings, feeds=feeds, watchlist=Watchlist(topics=[]))
    with StateStore(settings.state_db) as store:  # every entry already seen: each poll reads, none publishes
        store.mark_seen([FeedEntry(feed_url=f.url, url=u, guid=u) for n, f in enumerate(feeds) for u in _items(n)])
    writes: list[int] = []
    real_record = StateStore.record_polls

    def counted(self: StateStore, records: Any, outcomes: Any = ()) -> None:
        writes.append(len(records))
        real_record(self, records, outcomes)

    monkeypatch.setattr(StateStore, "record_polls", counted)
    t0 = time.monotonic()
    summary = ingest(config)
    wall = time.monotonic() - t0
    network = math.ceil(FEEDS / POLL_THREADS) * NETWORK_S  # 8 polls at a time, each NETWORK_S long
    assert (summary.feeds_polled, summary.feeds_failed, summary.new_entries) == (FEEDS, 0, 0)
    assert len(slow_site.state.requests) == FEEDS
    assert slow_site.state.max_in_flight >= POLL_THREADS // 2  # the polls overlapped on the wire
    assert wall < 2.5 * network, f"{FEEDS} polls took {wall:.2f} s; the network alone {network:.2f} s"
    assert sum(writes) == FEEDS and len(writes) <= FEEDS // 3  # written in batches, not one transaction a poll
    with StateStore(settings.state_db) as store:
        assert store.outcome_counts(stage="feeds") == {"polled": FEEDS}
        assert all(s.last_polled is not None for s in store.feed_states())


def test_the_passes_of_a_run_share_connections_robots_and_stages(tmp_path: Path) -> None:
    site = LocalServer()
    try:
        site.route("/robots.txt", _page(b"User-agent: *\nDisallow: /private\n"))
        site.route("/a1", _page(_article_html("Story a1")))
        site.route("/a2", _page(_article_html("Story a2")))
        site.route("/feed.xml", _feed(site, [site.url("/a1")]))
        settings = Settings.model_validate({
            "data_dir": str(tmp_path / "var"),
            "fetch": {"delay_seconds": 0, "allow_hosts": ["127.0.0.1"], "retries": 0},
            "extract": {"workers": 1},
        })
        config = Config(settings=settings, feeds=[FeedConfig(url=site.url("/feed.xml"))],
                        watchlist=Watchlist(topics=[]))
        with RunSession(config) as session:
            first = session.ingest(config)
            first_drain = session.drain(config)
            site.route("/feed.xml", _feed(site, [site.url("/a1"), site.url("/a2")]))
            second = session.ingest(config)
            second_drain = session.drain(config)
            third = session.ingest(config)
            assert session.drain(config).indexed == 0
        assert (first.published, second.published, third.published) == (1, 1, 0)
        assert (first_drain.indexed, second_drain.indexed) == (1, 1)  # each pass reports on itself
        paths = site.state.paths()
        assert paths.count("/robots.txt") == 1  # asked once for the run, not once a pass
        assert site.state.connections < len(paths)  # kept alive from pass to pass
    finally:
        site.close()
