"""Feeds stage: parse_feed on real third-party feeds, FeedPoller against a local server."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from test_fetch_support import Handler, LocalServer

from pipeline.config import FeedConfig, FetchSettings
from pipeline.feeds import FeedPoller, parse_feed, parse_odd_date
from pipeline.fetch import SafeFetcher
from pipeline.state import StateStore


# -- parse_feed on real data -------------------------------------------------------------
def _header_lines(raw: bytes) -> dict[str, str]:
    """The simulated HTTP headers of a feedparser test file (``Header: Name: value`` lines)."""
    head = raw[:2000].decode("latin-1")
    return dict(m.groups() for m in re.finditer(r"^Header:\s*([\w-]+):\s*(.*?)\s*$", head, re.M))


def test_every_illformed_file_parses_with_bozo_recorded(shared_dir: Path) -> None:
    base = shared_dir / "data" / "feedparser-tests"
    names = (base / "ILLFORMED_FILES.txt").read_text().split()
    assert len(names) == 27
    for name in names:
        raw = (base / name).read_bytes()
        headers = _header_lines(raw) or None
        parsed = parse_feed(raw, feed_url="http://example.com/feed", headers=headers)
        reference = feedparser.parse(io.BytesIO(raw), response_headers=headers)
        assert parsed.bozo == bool(reference.bozo), name
        assert len(parsed.entries) + parsed.skipped == len(reference.entries), name
        expect = re.search(rb"^Expect:\s*(.*)$", raw, re.M)
        if expect and expect.group(1).strip().startswith(b"bozo"):
            assert parsed.bozo, name
        if parsed.bozo:
            assert parsed.bozo_reason and "\n" not in parsed.bozo_reason, name


def test_real_cnn_capture(shared_dir: Path) -> None:
    raw = (shared_dir / "data" / "mediacloud-real-feeds" / "real-cnn.rss").read_bytes()
    items = re.findall(rb"<item>.*?</item>", raw, re.S)
    parsed = parse_feed(raw, feed_url="http://rss.cnn.com/rss/cnn_latest.rss", feed_name="CNN",
                        headers={"Content-Type": "application/rss+xml; charset=utf-8"})
    assert not parsed.bozo and parsed.title.startswith("CNN")
    assert len(parsed.entries) == len(items) == 69
    dated = [e for e in parsed.entries if e.published]
    assert len(dated) == sum(1 for i in items if b"<pubDate>" in i)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e.published or "") for e in dated)
    assert all(e.url.startswith("https://") and e.feed_name == "CNN" for e in parsed.entries)


def test_real_korea_times_capture_with_odd_dates(shared_dir: Path) -> None:
    raw = (shared_dir / "data" / "mediacloud-real-feeds" / "real-korean-times.rss").read_bytes()
    parsed = parse_feed(raw, feed_url="https://www.koreatimes.co.kr/www/rss/rss.xml")
    assert len(parsed.entries) == len(re.findall(rb"<item>", raw)) == 195
    # feedparser cannot read "Thu,28 Jul 2022 4:35:5 GMT+9"; our fallback does
    assert all(e.published for e in parsed.entries)
    assert parsed.entries[0].published == "2022-07-27T19:35:05Z"
    assert all(e.guid for e in parsed.entries)


def test_parse_odd_date() -> None:
    assert parse_odd_date("Thu,28 Jul 2022 4:35:5 GMT+9") == datetime(2022, 7, 27, 19, 35, 5, tzinfo=UTC)
    assert parse_odd_date("1 Feb 2017 23:05 GMT-0530") == datetime(2017, 2, 2, 4, 35, tzinfo=UTC)
    assert parse_odd_date("28 Foo 2022 4:35:5") is None
    assert parse_odd_date("yesterday") is None


RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Test feed</title><link>http://example.com/</link>
{items}
</channel></rss>"""


def item(link: str, guid: str = "", title: str = "t", date: str = "Mon, 06 Mar 2017 10:00:00 GMT") -> str:
    g = f"<guid isPermaLink=\"false\">{guid}</guid>" if guid else ""
    return f"<item><title>{title}</title><link>{link}</link>{g}<pubDate>{date}</pubDate></item>"


def test_relative_links_resolved_and_linkless_entries_skipped() -> None:
    body = RSS.format(items=item("/news/1", "g1") + item("javascript:alert(1)", "g2") + item("", "g3")
                      + item("https://other.example/x", "g4")).encode()
    parsed = parse_feed(body, feed_url="https://feeds.example/rss", base_url="https://www.example.com/feeds/main")
    assert [e.url for e in parsed.entries] == ["https://www.example.com/news/1", "https://other.example/x"]
    assert parsed.skipped == 2
    assert parsed.entries[0].feed_url == "https://feeds.example/rss"
    assert parsed.entries[0].published == "2017-03-06T10:00:00Z"


def test_not_a_feed_is_bozo_without_entries() -> None:
    parsed = parse_feed(b"<html><body><p>Just a page <b>unclosed", feed_url="https://example.com/")
    assert parsed.bozo and parsed.entries == [] and parsed.bozo_reason


# -- FeedPoller against a local server ---------------------------------------------------
class FeedSite:
    """A feed endpoint whose body and ETag the test changes; honours If-None-Match when asked."""

    def __init__(self, server: LocalServer) -> None:
        self.body = RSS.format(items="")
        self.etag = '"v1"'
        self.honour_validators = True
        self.status = 200
        server.route("/rss", self)

    def __call__(self, h: Handler) -> None:
        if self.status != 200:
            h.reply(self.status, b"error")
        elif self.honour_validators and h.headers.get("If-None-Match") == self.etag:
            h.reply(304, b"", {"ETag": self.etag, "Content-Length": "0"})
        else:
            h.reply(200, self.body.encode(), {"ETag": self.etag, "Content-Type": "application/rss+xml"})


@pytest.fixture
def site() -> Iterator[tuple[LocalServer, FeedSite]]:
    srv = LocalServer()
    yield srv, FeedSite(srv)
    srv.close()


@pytest.fixture
def poller(tmp_path: Path) -> Iterator[FeedPoller]:
    settings = FetchSettings(allow_hosts=["127.0.0.1"], delay_seconds=0, retries=0, deadline=5)
    with SafeFetcher(settings) as fetcher, StateStore(tmp_path / "state.sqlite3") as store:
        yield FeedPoller(fetcher, store, default_interval_s=300)


def test_new_entries_by_url_and_guid_across_polls(site: Any, poller: FeedPoller) -> None:
    server, feed_site = site
    feed = FeedConfig(url=server.url("/rss"), name="local")
    feed_site.body = RSS.format(items=item("http://news.example/a", "ga") + item("http://news.example/b", "gb"))
    first = poller.poll(feed)
    assert first.outcome.ok and first.outcome.status == "polled"
    assert [e.url for e in first.new_entries] == ["http://news.example/a", "http://news.example/b"]
    assert poller.store.mark_seen(first.new_entries) == 4
    feed_site.etag = '"v2"'
    feed_site.body = RSS.format(items=(
        item("http://news.example/c", "gc")  # genuinely new
        + item("http://news.example/a?utm_source=rss", "ga-new")  # same URL after canonicalisation
        + item("http://news.example/b-renamed", "gb")  # same GUID, new URL
        + item("http://news.example/c#comments", "gc-dup")  # duplicate of c within the same poll
    ))
    second = poller.poll(feed)
    assert len(second.entries) == 4
    assert [e.url for e in second.new_entries] == ["http://news.example/c"]
    forced = poller.poll(feed, force=True)
    assert len(forced.new_entries) == 4
    assert "if-none-match" not in server.state.requests[-1].headers


def test_conditional_get_and_body_hash(site: Any, poller: FeedPoller) -> None:
    server, feed_site = site
    feed = FeedConfig(url=server.url("/rss"))
    feed_site.body = RSS.format(items=item("http://news.example/a", "ga"))
    first = poller.poll(feed)
    poller.store.mark_seen(first.new_entries)
    second = poller.poll(feed)
    assert second.not_modified and second.outcome.status == "not_modified" and "304" in second.outcome.reason
    assert server.state.requests[-1].headers["if-none-match"] == '"v1"'
    feed_site.etag = '"v1-but-changed"'  # same body, new ETag: not modified by hash
    third = poller.poll(feed)
    assert third.not_modified and "sha256" in third.outcome.reason
    assert server.state.requests[-1].headers["if-none-match"] == '"v1"'


def test_unpublished_entries_are_found_again(site: Any, poller: FeedPoller) -> None:
    """A crash between poll and publish (no mark_seen) must not lose entries to 304/hash."""
    server, feed_site = site
    feed = FeedConfig(url=server.url("/rss"))
    feed_site.body = RSS.format(items=item("http://news.example/a", "ga"))
    assert len(poller.poll(feed).new_entries) == 1
    again = poller.poll(feed)  # validators were kept pending: full fetch, entry still new
    assert not again.not_modified and len(again.new_entries) == 1
    assert "if-none-match" not in server.state.requests[-1].headers


def test_failure_becomes_outcome_and_backs_off(site: Any, poller: FeedPoller) -> None:
    server, feed_site = site
    feed = FeedConfig(url=server.url("/rss"))
    feed_site.status = 500
    intervals = []
    for _ in range(3):
        result = poller.poll(feed)
        assert not result.outcome.ok and result.outcome.status == "http_500"
        st = poller.store.get_feed(feed.url)
        assert st is not None
        intervals.append(st.interval_s)
    assert intervals == [600, 1200, 2400]
    now = datetime.now(UTC)
    assert poller.store.due_feeds([feed], now, 300) == []
    assert poller.store.due_feeds([feed], now + timedelta(seconds=2401), 300) == [feed]
    feed_site.status = 200
    feed_site.body = RSS.format(items=item("http://news.example/a", "ga"))
    ok = poller.poll(feed)
    assert ok.outcome.ok and len(ok.new_entries) == 1
    st = poller.store.get_feed(feed.url)
    assert st is not None and st.consecutive_failures == 0


def test_blocked_feed_is_an_outcome_not_an_exception(tmp_path: Path) -> None:
    with SafeFetcher(FetchSettings(allow_hosts=[])) as fetcher, StateStore(tmp_path / "s.sqlite3") as store:
        result = FeedPoller(fetcher, store).poll(FeedConfig(url="http://127.0.0.1:9/rss"))
    assert (result.outcome.ok, result.outcome.status) == (False, "blocked")


def test_malformed_feed_outcomes(site: Any, poller: FeedPoller) -> None:
    server, feed_site = site
    feed = FeedConfig(url=server.url("/rss"))
    feed_site.body = RSS.format(items=item("http://news.example/a", "ga")).replace("</channel></rss>", "<broken")
    result = poller.poll(feed)
    assert result.outcome.status == "malformed_feed" and result.outcome.ok and len(result.new_entries) == 1
    feed_site.body = "<html><body>Service moved</body></html"
    feed_site.etag = '"html"'
    result = poller.poll(feed)
    assert result.outcome.status == "malformed_feed" and not result.outcome.ok
    st = poller.store.get_feed(feed.url)
    assert st is not None and st.consecutive_failures == 1


def test_partially_published_poll_keeps_the_feed_unconditional(site: Any, poller: FeedPoller) -> None:
    """An entry left unmarked (transient fetch failure) is found again on the next poll."""
    server, feed_site = site
    feed = FeedConfig(url=server.url("/rss"))
    feed_site.body = RSS.format(items=item("http://news.example/a", "ga") + item("http://news.example/b", "gb"))
    first = poller.poll(feed)
    poller.store.mark_seen(first.new_entries[:1])
    second = poller.poll(feed)
    assert [e.url for e in second.new_entries] == ["http://news.example/b"]
    poller.store.mark_seen(second.new_entries)
    assert poller.poll(feed).not_modified
