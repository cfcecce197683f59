"""SafeFetcher keeps connections and vetted addresses: pooling per host, the address cache and DNS
rebinding, a kept-alive connection the server closed, robots.txt kept an hour. Real local servers on
127.0.0.1; host names are mapped to it by a fake resolver (no network)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from test_fetch import connected, make_settings, text  # noqa: F401 - connected: a fixture
from test_fetch_support import Handler, LocalServer

from pipeline.config import FeedConfig
from pipeline.errors import BlockedURLError, FetchError
from pipeline.feeds import order_for_reuse
from pipeline.fetch import SafeFetcher
from pipeline.fetch import http as fetch_http
from pipeline.fetch.http import FetchResponse
from pipeline.fetch.netpolicy import VettedAddresses
from pipeline.fetch.robots import RobotsCache


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    yield srv
    srv.close()


class Resolver:
    """A fake ``getaddrinfo``: names in ``answers`` resolve to the address given, every call is noted."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.calls: list[str] = []
        self.real = socket.getaddrinfo

    def __call__(self, host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in self.answers:
            return self.real(host, port, *args, **kwargs)
        self.calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (self.answers[host], port))]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    fake = Resolver({f"{name}.example": "127.0.0.1" for name in ("a", "b", "c", "d", "feeds", "other")})
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


# -- pooling -----------------------------------------------------------------------------------
def test_connections_are_reused_per_host_across_interleaved_urls(server: LocalServer, resolver: Resolver) -> None:
    server.route("/f", text(b"feed"))
    urls = [server.url(f"/f?n={i}", host=f"{'abc'[i % 3]}.example") for i in range(60)]  # a, b, c, a, b, c, ...
    with SafeFetcher(make_settings(allow_hosts=["127.0.0.1"], per_host_concurrency=2)) as f:
        threads = [threading.Thread(target=lambda part=urls[k::6]: [f.fetch(u) for u in part]) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert f.addresses.lookups == 3  # one resolution per host, not one per request
    assert len(server.state.requests) == 60
    assert server.state.connections <= 3 * 2  # at most per_host_concurrency connections per host


def test_polling_order_keeps_connections_whatever_the_listing(server: LocalServer, resolver: Resolver,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """More hosts than the fetcher keeps pools for: listed interleaved, every request would evict the pool
    the next one needs; in the order polls are made (windows of hosts), each host's connection is reused."""
    server.route("/f", text(b"feed"))
    monkeypatch.setattr(fetch_http, "MAX_POOLS", 2)
    feeds = [FeedConfig(url=server.url(f"/f?n={i}", host=f"{'abcd'[i % 4]}.example")) for i in range(24)]

    def connections(order: list[FeedConfig]) -> int:
        before = server.state.connections
        with SafeFetcher(make_settings(allow_hosts=["127.0.0.1"])) as f:
            for feed in order:
                f.fetch(feed.url)
        return server.state.connections - before

    assert connections(feeds) == 24  # as listed: a new connection every time
    assert connections(order_for_reuse(feeds, hosts_at_once=2)) == 4


def test_order_for_reuse_interleaves_windows_of_hosts() -> None:
    feeds = [FeedConfig(url=f"https://{h}.example/{i}") for i, h in enumerate("aabbbcd")]
    hosts = [f.url.split("/")[2][0] + f.url.rsplit("/", 1)[1] for f in order_for_reuse(feeds, hosts_at_once=2)]
    assert hosts == ["a0", "b2", "a1", "b3", "b4", "c5", "d6"]
    assert sorted(order_for_reuse(feeds), key=feeds.index) == feeds  # every feed once


# -- the address cache and DNS rebinding -------------------------------------------------------------
def test_cached_addresses_are_only_vetted_ones_and_are_vetted_again_when_they_expire(
    server: LocalServer, resolver: Resolver, connected: list[str]  # noqa: F811 - the fixture
) -> None:
    server.route("/f", text(b"ok"))
    url = server.url("/f", host="feeds.example")
    now = [0.0]
    with SafeFetcher(make_settings(allow_hosts=["127.0.0.1"])) as f:
        f.addresses = VettedAddresses(f.addresses.allow, 30.0, clock=lambda: now[0])
        assert f.fetch(url).body == b"ok"
        resolver.answers["feeds.example"] = "10.0.0.1"  # the name now points inside the network
        now[0] = 29.0
        assert f.fetch(url).body == b"ok"  # within its TTL: the address vetted before, no new lookup
        assert resolver.calls.count("feeds.example") == 1
        now[0] = 30.5  # expired: resolved and vetted afresh, and refused
        with pytest.raises(BlockedURLError, match="address 10.0.0.1 of feeds.example is not public"):
            f.fetch(url)
        with pytest.raises(BlockedURLError):  # a refusal is not kept: asked again, refused again
            f.fetch(url)
        assert resolver.calls.count("feeds.example") == 3
    assert connected == ["127.0.0.1", "127.0.0.1"]  # never a connection to 10.0.0.1
    assert len(server.state.requests) == 2


def test_every_redirect_hop_is_vetted_with_the_cache(server: LocalServer, resolver: Resolver,
                                                     connected: list[str]) -> None:  # noqa: F811 - the fixture
    resolver.answers["other.example"] = "169.254.169.254"
    server.route("/go", lambda h: h.reply(302, b"", {"Location": server.url("/meta", host="other.example")}))
    server.route("/f", text(b"ok"))
    with SafeFetcher(make_settings(allow_hosts=["127.0.0.1"])) as f:
        assert f.fetch(server.url("/f", host="feeds.example")).body == b"ok"  # feeds.example is now cached
        with pytest.raises(BlockedURLError, match="169.254.169.254"):
            f.fetch(server.url("/go", host="feeds.example"))
    assert connected == ["127.0.0.1", "127.0.0.1"]
    assert server.state.paths() == ["/f", "/go"]


def test_no_cache_resolves_every_request(server: LocalServer, resolver: Resolver) -> None:
    server.route("/f", text(b"ok"))
    with SafeFetcher(make_settings(allow_hosts=["127.0.0.1"], dns_cache_seconds=0)) as f:
        for _ in range(3):
            f.fetch(server.url("/f", host="feeds.example"))
    assert resolver.calls.count("feeds.example") == 3


def test_a_host_none_of_whose_addresses_answer_is_resolved_again(resolver: Resolver) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    with SafeFetcher(make_settings(allow_hosts=["127.0.0.1"], retries=0)) as f:
        for _ in range(2):
            with pytest.raises(FetchError) as err:
                f.fetch(f"http://feeds.example:{port}/")
            assert err.value.reason == "connection_error"
    assert resolver.calls.count("feeds.example") == 2  # the cache entry was dropped after the failure


# -- a kept-alive connection the server closed --------------------------------------------------------
def _one_answer_per_connection(h: Handler) -> None:
    """Answer the first request of a connection; hang up on the next one without a word."""
    if getattr(h, "answered", False):
        h.close_connection = True
        return
    h.answered = True  # type: ignore[attr-defined]
    h.reply(200, b"fresh")


def test_request_on_a_connection_the_server_closed_is_sent_again_on_a_new_one(server: LocalServer) -> None:
    server.route("/f", _one_answer_per_connection)
    with SafeFetcher(make_settings()) as f:
        assert f.fetch(server.url("/f")).body == b"fresh"
        assert f.fetch(server.url("/f")).body == b"fresh"  # the kept-alive connection is gone: once more
    assert server.state.paths() == ["/f", "/f", "/f"]
    assert server.state.connections == 2


def test_a_new_connection_closed_without_an_answer_is_not_sent_again(server: LocalServer) -> None:
    def hang_up(h: Handler) -> None:
        h.close_connection = True

    server.route("/f", hang_up)
    with SafeFetcher(make_settings(retries=0)) as f, pytest.raises(FetchError) as err:
        f.fetch(server.url("/f"))
    assert err.value.reason == "connection_error"
    assert server.state.paths() == ["/f"]


# -- robots.txt kept an hour ------------------------------------------------------------------------
def test_robots_rules_are_kept_for_their_ttl() -> None:
    fetched: list[str] = []
    now = [0.0]

    def fetch(url: str) -> FetchResponse:
        fetched.append(url)
        body = b"User-agent: *\nDisallow: /private\n"
        return FetchResponse(url=url, final_url=url, status=200, headers={}, body=body, not_modified=False,
                             elapsed=0.0)

    robots = RobotsCache(fetch, "newswatch", ttl=3600, clock=lambda: now[0])
    assert robots.allowed("https://news.example/a") and not robots.allowed("https://news.example/private/b")
    now[0] = 3599.0
    assert robots.allowed("https://news.example/c")
    assert fetched == ["https://news.example/robots.txt"]
    now[0] = 3601.0
    assert robots.allowed("https://news.example/d")
    assert len(fetched) == 2
