"""SafeFetcher against real local HTTP servers on 127.0.0.1 (no other network)."""

from __future__ import annotations

import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_fetch_support import Handler, LocalServer, SilentServer, TLSServer, self_signed_cert

from pipeline.config import FetchSettings
from pipeline.errors import BlockedURLError, FetchError, FetchTimeoutError, HTTPStatusError, TooLargeError
from pipeline.fetch import SafeFetcher, parse_retry_after
from pipeline.fetch import http as fetch_http
from pipeline.fetch.body import BoundedDecoder


def make_settings(**kw: Any) -> FetchSettings:
    base: dict[str, Any] = {"allow_hosts": ["127.0.0.1"], "delay_seconds": 0, "connect_timeout": 2,
                            "read_timeout": 2, "deadline": 5, "retries": 2, "max_retry_after": 5}
    base.update(kw)
    return FetchSettings(**base)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    yield srv
    srv.close()


@pytest.fixture
def fetcher() -> Iterator[SafeFetcher]:
    with SafeFetcher(make_settings()) as f:
        yield f


def text(body: bytes, **headers: str) -> Any:
    return lambda h: h.reply(200, body, dict(headers))


def gzip_bytes(chunks: Iterator[bytes], wbits: int = 16 + zlib.MAX_WBITS) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, wbits)
    out = [comp.compress(c) for c in chunks]
    out.append(comp.flush())
    return b"".join(out)


# -- basics ------------------------------------------------------------------------------
def test_plain_get_returns_lowercase_headers_and_body(server: LocalServer, fetcher: SafeFetcher) -> None:
    server.route("/a", text(b"hello", ETag='"v1"', **{"Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT"}))
    resp = fetcher.fetch(server.url("/a"))
    assert (resp.status, resp.body, resp.not_modified) == (200, b"hello", False)
    assert resp.final_url == resp.url == server.url("/a")
    assert resp.headers["etag"] == '"v1"' and resp.etag == '"v1"'
    assert resp.last_modified == "Wed, 01 Jan 2025 00:00:00 GMT"
    assert resp.elapsed > 0
    sent = server.state.requests[0].headers
    assert sent["accept-encoding"] == "gzip, deflate"
    assert sent["host"] == f"127.0.0.1:{server.port}"
    assert sent["user-agent"].startswith("newswatch/")


@pytest.mark.parametrize("wbits,encoding", [(16 + zlib.MAX_WBITS, "gzip"), (zlib.MAX_WBITS, "deflate"),
                                            (-zlib.MAX_WBITS, "deflate")])
def test_compressed_bodies_are_decoded(server: LocalServer, fetcher: SafeFetcher, wbits: int, encoding: str) -> None:
    payload = b"<rss>" + b"news " * 2000 + b"</rss>"
    server.route("/z", text(gzip_bytes(iter([payload]), wbits), **{"Content-Encoding": encoding}))
    assert fetcher.fetch(server.url("/z")).body == payload


def test_unsupported_encoding_is_a_fetch_error(server: LocalServer, fetcher: SafeFetcher) -> None:
    server.route("/br", text(b"xx", **{"Content-Encoding": "br"}))
    with pytest.raises(FetchError) as err:
        fetcher.fetch(server.url("/br"))
    assert err.value.reason == "unsupported_encoding"


# -- address and scheme policy -----------------------------------------------------------
@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/", "data:,x",
                                 "http://user:pw@127.0.0.1/"])
def test_blocked_schemes_and_credentials(fetcher: SafeFetcher, url: str) -> None:
    with pytest.raises(BlockedURLError) as err:
        fetcher.fetch(url)
    assert err.value.reason == "blocked"


def test_loopback_refused_unless_allow_listed(server: LocalServer) -> None:
    server.route("/", text(b"ok"))
    with SafeFetcher(make_settings(allow_hosts=[])) as f:
        with pytest.raises(BlockedURLError, match="not public"):
            f.fetch(server.url("/"))
    assert server.state.requests == []  # refused before connecting
    for allow in (["127.0.0.1"], ["127.0.0.0/8"], ["localhost"]):
        with SafeFetcher(make_settings(allow_hosts=allow)) as f:
            host = "localhost" if allow == ["localhost"] else "127.0.0.1"
            assert f.fetch(server.url("/", host=host)).body == b"ok"


@pytest.fixture
def connected(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The addresses the fetcher opens connection pools to (it connects to nothing else)."""
    seen: list[str] = []
    real_pool = fetch_http.SafeFetcher._pool

    def spy(self: SafeFetcher, t: Any, ip: str) -> Any:
        seen.append(ip)
        return real_pool(self, t, ip)

    monkeypatch.setattr(fetch_http.SafeFetcher, "_pool", spy)
    return seen


@pytest.mark.parametrize("target", ["http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/",
                                    "http://[::ffff:10.0.0.1]/", "http://100.64.0.1/", "file:///etc/passwd"])
def test_redirect_to_private_address_is_refused_before_connecting(
    server: LocalServer, fetcher: SafeFetcher, connected: list[str], target: str
) -> None:
    server.route("/go", lambda h: h.reply(302, b"", {"Location": target}))
    with pytest.raises(BlockedURLError):
        fetcher.fetch(server.url("/go"))
    assert connected == ["127.0.0.1"]


def test_hostname_resolving_to_any_private_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_getaddrinfo(host: str, port: int, *a: Any, **k: Any) -> list[Any]:
        assert host == "rebind.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with SafeFetcher(make_settings(allow_hosts=[])) as f, pytest.raises(BlockedURLError, match="127.0.0.1"):
        f.fetch("http://rebind.example/")


def test_connects_to_the_vetted_ip_with_the_host_header(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.route("/pinned", text(b"pinned"))
    calls: list[str] = []

    def fake_getaddrinfo(host: str, port: int, *a: Any, **k: Any) -> list[Any]:
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with SafeFetcher(make_settings(allow_hosts=["feeds.example"])) as f:
        resp = f.fetch(f"http://feeds.example:{server.port}/pinned")
    assert resp.body == b"pinned"
    # the name is resolved once, by the policy check; urllib3 only ever sees the vetted IP
    assert calls.count("feeds.example") == 1 and set(calls) <= {"feeds.example", "127.0.0.1"}
    assert server.state.requests[0].headers["host"] == f"feeds.example:{server.port}"


def test_dns_failure_is_dns_error(monkeypatch: pytest.MonkeyPatch, fetcher: SafeFetcher) -> None:
    def fail(*a: Any, **k: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(FetchError) as err:
        fetcher.fetch("http://no-such-host.example/")
    assert err.value.reason == "dns_error"


def test_connection_refused_is_connection_error(fetcher: SafeFetcher) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(FetchError) as err:
        fetcher.fetch(f"http://127.0.0.1:{port}/")
    assert err.value.reason == "connection_error"


# -- redirects ---------------------------------------------------------------------------
def test_redirects_followed_and_limited(server: LocalServer) -> None:
    for i in range(6):
        server.route(f"/r{i}", lambda h, i=i: h.reply(301, b"", {"Location": f"/r{i + 1}"}))
    server.route("/r6", text(b"end"))
    with SafeFetcher(make_settings(max_redirects=6)) as f:
        resp = f.fetch(server.url("/r0"))
    assert (resp.body, resp.final_url, resp.redirects) == (b"end", server.url("/r6"), 6)
    with SafeFetcher(make_settings(max_redirects=3)) as f, pytest.raises(FetchError) as err:
        f.fetch(server.url("/r0"))
    assert err.value.reason == "too_many_redirects"


# -- size caps ---------------------------------------------------------------------------
def test_content_length_over_cap_refused_before_reading(server: LocalServer) -> None:
    server.route("/big", text(b"x" * 5000))
    with SafeFetcher(make_settings(max_bytes=1000)) as f, pytest.raises(TooLargeError, match="Content-Length"):
        f.fetch(server.url("/big"))


def test_chunked_body_over_cap(server: LocalServer) -> None:
    def chunked(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for _ in range(10):
            h.wfile.write(b"%x\r\n%s\r\n" % (500, b"y" * 500))
        h.wfile.write(b"0\r\n\r\n")

    server.route("/chunked", chunked)
    with SafeFetcher(make_settings(max_bytes=5000)) as f:
        assert len(f.fetch(server.url("/chunked")).body) == 5000
    with SafeFetcher(make_settings(max_bytes=4999)) as f, pytest.raises(TooLargeError):
        f.fetch(server.url("/chunked"))


def test_gzip_bomb_never_inflates_beyond_cap(server: LocalServer) -> None:
    mb = bytes(1024 * 1024)
    bomb = gzip_bytes(iter([mb] * 50))  # 50 MB of zeros -> about 50 KB
    assert len(bomb) < 200_000
    server.route("/bomb", text(bomb, **{"Content-Encoding": "gzip"}))
    del mb
    with SafeFetcher(make_settings(max_bytes=1024 * 1024)) as f:
        tracemalloc.start()
        try:
            with pytest.raises(TooLargeError, match="decompressed"):
                f.fetch(server.url("/bomb"))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 3 * 1024 * 1024, f"peak {peak} bytes while refusing a 50 MB bomb"


def test_bounded_decoder_stops_at_cap_exactly() -> None:
    raw = gzip_bytes(iter([b"a" * 10_000]))
    dec = BoundedDecoder("gzip", 10_000)
    dec.feed(raw)
    assert dec.finish() == b"a" * 10_000
    dec = BoundedDecoder("gzip", 9_999)
    with pytest.raises(TooLargeError):
        dec.feed(raw)
        dec.finish()


# -- time limits -------------------------------------------------------------------------
def test_server_that_never_answers_hits_read_timeout() -> None:
    silent = SilentServer()
    try:
        with SafeFetcher(make_settings(read_timeout=0.5, deadline=10)) as f:
            t0 = time.monotonic()
            with pytest.raises(FetchTimeoutError):
                f.fetch(f"http://127.0.0.1:{silent.port}/")
            assert time.monotonic() - t0 < 3
    finally:
        silent.close()


def test_trickling_server_is_cut_off_by_the_deadline(server: LocalServer) -> None:
    def trickle(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "100")
        h.end_headers()
        for _ in range(100):
            if server.state.stop.wait(0.25):
                return
            h.wfile.write(b"x")
            h.wfile.flush()

    server.route("/trickle", trickle)
    with SafeFetcher(make_settings(read_timeout=2, deadline=1.0)) as f:
        t0 = time.monotonic()
        with pytest.raises(FetchTimeoutError, match="deadline"):
            f.fetch(server.url("/trickle"))
        assert time.monotonic() - t0 < 3


# -- status handling and retries ---------------------------------------------------------
def test_429_with_retry_after_then_200(server: LocalServer, fetcher: SafeFetcher) -> None:
    calls = {"n": 0}

    def limited(h: Handler) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            h.reply(429, b"slow down", {"Retry-After": "1"})
        else:
            h.reply(200, b"finally")

    server.route("/limited", limited)
    assert fetcher.fetch(server.url("/limited")).body == b"finally"
    first, second = server.state.requests
    assert second.at - first.at >= 0.9


def test_503_storm_gives_http_status_error_after_retries(server: LocalServer) -> None:
    server.route("/down", lambda h: h.reply(503, b"", {"Retry-After": "0"}))
    with SafeFetcher(make_settings(retries=2)) as f, pytest.raises(HTTPStatusError) as err:
        f.fetch(server.url("/down"))
    assert (err.value.status, err.value.reason, err.value.transient) == (503, "http_503", True)
    assert len(server.state.requests) == 3


def test_backoff_without_retry_after_is_capped(server: LocalServer) -> None:
    server.route("/busy", lambda h: h.reply(503, b""))
    with SafeFetcher(make_settings(retries=1, max_retry_after=0.2)) as f, pytest.raises(HTTPStatusError):
        f.fetch(server.url("/busy"))
    first, second = server.state.requests
    assert 0.15 <= second.at - first.at < 1.0  # 2**0 = 1 s, capped to 0.2 s


def test_retry_after_beyond_cap_fails_at_once(server: LocalServer) -> None:
    server.route("/later", lambda h: h.reply(429, b"", {"Retry-After": "3600"}))
    with SafeFetcher(make_settings(max_retry_after=10)) as f, pytest.raises(HTTPStatusError) as err:
        f.fetch(server.url("/later"))
    assert err.value.retry_after == 3600 and len(server.state.requests) == 1


def test_404_not_retried(server: LocalServer, fetcher: SafeFetcher) -> None:
    with pytest.raises(HTTPStatusError) as err:
        fetcher.fetch(server.url("/missing"))
    assert (err.value.status, err.value.reason) == (404, "http_404")
    assert len(server.state.requests) == 1


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412480.0 - 30) == pytest.approx(30)
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_conditional_get_304(server: LocalServer, fetcher: SafeFetcher) -> None:
    def cond(h: Handler) -> None:
        if h.headers.get("If-None-Match") == '"e1"':
            h.reply(304, b"", {"ETag": '"e1"', "Content-Length": "0"})
        else:
            h.reply(200, b"full", {"ETag": '"e1"'})

    server.route("/c", cond)
    first = fetcher.fetch(server.url("/c"))
    second = fetcher.fetch(server.url("/c"), etag=first.etag, last_modified="Wed, 01 Jan 2025 00:00:00 GMT")
    assert (second.status, second.not_modified, second.body) == (304, True, b"")
    assert server.state.requests[1].headers["if-modified-since"] == "Wed, 01 Jan 2025 00:00:00 GMT"


# -- robots.txt --------------------------------------------------------------------------
def test_robots_disallow_is_honoured_and_cached(server: LocalServer, fetcher: SafeFetcher) -> None:
    server.route("/robots.txt", text(b"User-agent: *\nDisallow: /private\n"))
    server.route("/private/a", text(b"secret"))
    server.route("/public", text(b"public"))
    with pytest.raises(BlockedURLError) as err:
        fetcher.fetch(server.url("/private/a"), robots=True)
    assert err.value.reason == "robots_disallowed"
    assert fetcher.fetch(server.url("/public"), robots=True).body == b"public"
    assert fetcher.fetch(server.url("/private/a"), robots=False).body == b"secret"
    assert server.state.paths().count("/robots.txt") == 1


@pytest.mark.parametrize("status", [404, 500])
def test_robots_unavailable_allows(server: LocalServer, status: int) -> None:
    server.route("/robots.txt", lambda h: h.reply(status, b"no"))
    server.route("/page", text(b"page"))
    with SafeFetcher(make_settings(retries=0)) as f:
        assert f.fetch(server.url("/page"), robots=True).body == b"page"


def test_robots_fetched_once_under_threads(server: LocalServer) -> None:
    server.route("/robots.txt", text(b"User-agent: *\nDisallow:\n"))
    server.route("/p", text(b"p"))
    with SafeFetcher(make_settings(per_host_concurrency=4)) as f:
        threads = [threading.Thread(target=f.fetch, args=(server.url("/p"),), kwargs={"robots": True})
                   for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert server.state.paths().count("/robots.txt") == 1
    assert server.state.paths().count("/p") == 8


# -- politeness --------------------------------------------------------------------------
def test_delay_between_requests_to_one_host(server: LocalServer) -> None:
    server.route("/p", text(b"p"))
    with SafeFetcher(make_settings(delay_seconds=0.3)) as f:
        f.fetch(server.url("/p"))
        f.fetch(server.url("/p"))
    a, b = server.state.requests
    assert b.at - a.at >= 0.25


@pytest.mark.parametrize("limit", [1, 2])
def test_per_host_concurrency_cap(server: LocalServer, limit: int) -> None:
    def slow(h: Handler) -> None:
        time.sleep(0.15)
        h.reply(200, b"s")

    server.route("/slow", slow)
    with SafeFetcher(make_settings(per_host_concurrency=limit)) as f:
        threads = [threading.Thread(target=f.fetch, args=(server.url("/slow"),)) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(server.state.requests) == 5
    assert 1 <= server.state.max_in_flight <= limit


# -- TLS: connect to the vetted IP, verify the certificate against the NAME ----------------
def test_https_pins_ip_and_checks_certificate_for_the_hostname(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = self_signed_cert(tmp_path, "feeds.example")
    tls = TLSServer(cert, key)
    try:
        tls.route("/secure", text(b"secret"))
        real = socket.getaddrinfo

        def fake_getaddrinfo(host: str, port: int, *a: Any, **k: Any) -> Any:
            if host in ("feeds.example", "other.example"):
                host = "127.0.0.1"
            return real(host, port, *a, **k)

        monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
        settings = make_settings(allow_hosts=["feeds.example", "other.example"])
        with SafeFetcher(settings) as f, pytest.raises(FetchError) as err:  # not trusted yet
            f.fetch(tls.url("/secure", host="feeds.example"))
        assert err.value.reason == "tls_error"
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust our throwaway CA
        with SafeFetcher(settings) as f:
            assert f.fetch(tls.url("/secure", host="feeds.example")).body == b"secret"
            assert "feeds.example" in tls.sni  # SNI is the name although we connected to 127.0.0.1
            with pytest.raises(FetchError) as err:  # valid cert, wrong name: refused
                f.fetch(tls.url("/secure", host="other.example"))
            assert err.value.reason == "tls_error"
    finally:
        tls.close()
