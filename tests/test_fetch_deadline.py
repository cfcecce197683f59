"""The total fetch deadline holds in every phase of the exchange, against real dripping servers.

Each server drips slower than nothing at all: every byte comes well inside the read timeout, so
only the total deadline can end the exchange. The servers give up after ``DRIP_FOR`` seconds,
so a fetcher without the deadline fails these tests by taking that long (not by hanging).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_fetch_support import Handler, LocalServer

from pipeline.config import Config, FeedConfig, FetchSettings, Settings, Watchlist
from pipeline.errors import FetchTimeoutError
from pipeline.fetch import SafeFetcher
from pipeline.jobs import ingest

DEADLINE = 1.0
DRIP_FOR = 12.0  # seconds a server keeps dripping before it gives up
LIMIT = DEADLINE + 2.0  # what a bounded fetch may take, with room for a busy machine


def _settings(**kw: Any) -> FetchSettings:
    base: dict[str, Any] = {"allow_hosts": ["127.0.0.1"], "delay_seconds": 0, "connect_timeout": 2,
                            "read_timeout": 3, "deadline": DEADLINE, "retries": 0}
    base.update(kw)
    return FetchSettings(**base)


def _drip(h: Handler, pieces: list[bytes], every: float) -> None:
    """Write ``pieces`` one at a time, ``every`` seconds apart, for at most DRIP_FOR seconds."""
    stop_at = time.monotonic() + DRIP_FOR
    for piece in pieces:
        if time.monotonic() > stop_at or h.state.stop.wait(every):
            return
        h.wfile.write(piece)
        h.wfile.flush()


def header_lines(h: Handler) -> None:
    """A status line, then one header line every 0.4 s: a 10 s read timeout never trips."""
    h.wfile.write(b"HTTP/1.1 200 OK\r\n")
    h.wfile.flush()
    _drip(h, [f"X-Drip-{i}: {i}\r\n".encode() for i in range(1000)], 0.4)


def header_bytes(h: Handler) -> None:
    """The status line and a header, one byte every 0.2 s."""
    _drip(h, [bytes([b]) for b in b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Long: " + b"x" * 500], 0.2)


def status_line_bytes(h: Handler) -> None:
    _drip(h, [bytes([b]) for b in b"HTTP/1.1 200 OK" + b" " * 500], 0.2)


def body_bytes(h: Handler) -> None:
    h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5000\r\n\r\n")
    h.wfile.flush()
    _drip(h, [b"x"] * 5000, 0.2)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    yield srv
    srv.close()


@pytest.mark.parametrize("route", [header_lines, header_bytes, status_line_bytes, body_bytes],
                         ids=["header-line-every-0.4s", "header-byte-every-0.2s", "status-line-byte", "body-byte"])
def test_a_dripping_server_is_cut_at_the_deadline(server: LocalServer, route: Any) -> None:
    server.route("/drip", route)
    with SafeFetcher(_settings()) as fetcher:
        t0 = time.monotonic()
        with pytest.raises(FetchTimeoutError, match=f"deadline of {DEADLINE}s passed") as err:
            fetcher.fetch(server.url("/drip"))
        took = time.monotonic() - t0
    assert err.value.reason == "timeout"
    assert took < LIMIT, f"the exchange took {took:.1f}s, the deadline is {DEADLINE}s"


def test_a_cut_exchange_leaves_other_kept_alive_exchanges_alone(server: LocalServer) -> None:
    server.route("/ok", lambda h: h.reply(200, b"fine"))
    server.route("/drip", header_bytes)
    with SafeFetcher(_settings()) as fetcher:
        assert fetcher.fetch(server.url("/ok")).body == b"fine"
        t0 = time.monotonic()
        with pytest.raises(FetchTimeoutError):
            fetcher.fetch(server.url("/drip"))
        assert time.monotonic() - t0 < LIMIT
        time.sleep(DEADLINE)  # the watchdog's moment for the finished exchanges passes: nothing is cut
        assert fetcher.fetch(server.url("/ok")).body == b"fine"


def _outcomes(db: Path) -> list[tuple[str, str, str]]:
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=5) as conn:
        try:
            return [tuple(r) for r in conn.execute("SELECT stage, target, status FROM outcomes ORDER BY id")]
        except sqlite3.OperationalError:  # the run has created the file but not yet its tables
            return []


def test_a_byte_dripped_header_is_cut_and_every_outcome_recorded_as_it_happens(
        tmp_path: Path, server: LocalServer) -> None:
    """The dripped page fails with ``timeout`` at the deadline; the feed's and the 404's outcomes are in the
    state database while the run is still going (a run killed then would have left them). ``/held`` keeps the
    run going: it asks to be retried in 15 s (a wait that does not count against the deadline)."""
    calls: list[float] = []

    def held(h: Handler) -> None:
        calls.append(time.monotonic())
        h.reply(429, b"later", {"Retry-After": "15"}) if len(calls) == 1 else h.reply(404, b"gone")

    feed = ('<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
            f'<item><title>a</title><link>{server.url("/missing")}</link></item>'
            f'<item><title>b</title><link>{server.url("/drip")}</link></item>'
            f'<item><title>c</title><link>{server.url("/held")}</link></item>'
            '</channel></rss>').encode()
    server.route("/feed.xml", lambda h: h.reply(200, feed, {"Content-Type": "application/rss+xml"}))
    server.route("/drip", header_bytes)
    server.route("/held", held)
    settings = Settings.model_validate({
        "data_dir": str(tmp_path / "var"),
        "fetch": {"allow_hosts": ["127.0.0.1"], "delay_seconds": 0, "deadline": DEADLINE, "read_timeout": 3,
                  "respect_robots": False, "per_host_concurrency": 4, "retries": 1},
        "extract": {"workers": 1},
    })
    config = Config(settings=settings, feeds=[FeedConfig(url=server.url("/feed.xml"))], watchlist=Watchlist(topics=[]))
    done: list[Any] = []
    runner = threading.Thread(target=lambda: done.append(ingest(config)), daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 14
        while time.monotonic() < deadline:
            statuses = {(stage, status) for stage, _, status in _outcomes(settings.state_db)}
            if {("feeds", "polled"), ("fetch", "http_404"), ("fetch", "timeout")} <= statuses:
                break
            time.sleep(0.1)
        recorded = _outcomes(settings.state_db)
        assert runner.is_alive(), f"the run must still be going (held by /held); recorded so far: {recorded}"
        assert ("fetch", server.url("/drip"), "timeout") in recorded, recorded
        assert ("fetch", server.url("/missing"), "http_404") in recorded, recorded
        assert not any(target == server.url("/held") for _, target, _ in recorded)
    finally:
        runner.join(30)
    summary = done[0]
    assert summary.fetch_failed == 3 and summary.outcomes == {"polled": 1, "timeout": 1, "http_404": 2}
    assert len(_outcomes(settings.state_db)) == 4, "each outcome recorded once"
