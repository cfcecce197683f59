"""The sample newsroom and the benchmark page server: real HTTP on loopback."""

from __future__ import annotations

import gzip
import socket
import threading
import urllib.error
import urllib.request
import urllib.robotparser
from collections.abc import Iterator
from urllib.parse import urlsplit

import feedparser
import pytest
from ports import free_port_block

from pipeline.config import FeedConfig
from pipeline.errors import InputError
from pipeline.newsroom import Newsroom, PageServer, content, serve_forever

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with _OPENER.open(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, dict(err.headers), err.read()


@pytest.fixture(scope="module")
def room() -> Iterator[Newsroom]:
    with Newsroom() as r:
        yield r


def _entries(room: Newsroom) -> list[tuple[str, feedparser.FeedParserDict]]:
    out = []
    for url in room.feed_urls:
        status, _, body = get(url)
        assert status == 200
        parsed = feedparser.parse(body)
        assert not parsed.bozo, (url, parsed.get("bozo_exception"))
        out += [(url, e) for e in parsed.entries]
    return out


def test_one_origin_per_site(room: Newsroom) -> None:
    ports = {urlsplit(u).port for u in room.base_urls.values()}
    assert len(ports) == len(content.SITES) == 3
    assert [FeedConfig.model_validate({"url": u}).url for u in room.feed_urls] == [f.url for f in room.feeds_config()]
    assert room.base_url == room.base_urls["levant"]


def test_feeds_parse_with_ids_and_dates(room: Newsroom) -> None:
    entries = _entries(room)
    broken = sum(len(content.BROKEN_LINKS.get(s.key, ())) > 0 for s in content.SITES)
    assert len(entries) == len(content.STORIES) + 1 + broken  # stories + section index + 404 link
    for _, e in entries:
        assert e.get("id"), e  # RSS guid / Atom id
        assert e.get("published_parsed") or e.get("updated_parsed"), e
        assert e.link.startswith("http://127.0.0.1:")
    versions = set()
    for url in room.feed_urls:
        versions.add(feedparser.parse(get(url)[2]).version)
    assert versions == {"rss20", "atom10"}


def test_every_linked_page_is_served_except_the_broken_link(room: Newsroom) -> None:
    broken = {room.url_of(k, v[0]) for k, v in content.BROKEN_LINKS.items()}
    for _, e in _entries(room):
        status, headers, body = get(e.link)
        if e.link in broken:
            assert status == 404
        else:
            assert status == 200, e.link
            assert headers["Content-Type"].startswith("text/html")
            assert b"<title>" in body


def test_conditional_get_answers_304(room: Newsroom) -> None:
    url = room.feed_urls[0]
    status, headers, _ = get(url)
    assert status == 200 and headers.get("ETag") and headers.get("Last-Modified")
    status, _, body = get(url, {"If-None-Match": headers["ETag"]})
    assert (status, body) == (304, b"")
    status, _, _ = get(url, {"If-Modified-Since": headers["Last-Modified"]})
    assert status == 304
    status, _, _ = get(url, {"If-None-Match": '"something-else"'})
    assert status == 200
    status, _, _ = get(url, {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert status == 200
    # a feed without validators always answers 200
    status, headers, _ = get(room.feed_urls[1], {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"})
    assert status == 200 and "ETag" not in headers


def test_robots_txt_allows_the_articles(room: Newsroom) -> None:
    for key, base in room.base_urls.items():
        status, _, body = get(base + "/robots.txt")
        assert status == 200
        rp = urllib.robotparser.RobotFileParser()
        rp.parse(body.decode().splitlines())
        for story in content.stories_of(key):
            assert rp.can_fetch("newswatch", base + story.path)
        assert not rp.can_fetch("newswatch", base + "/private/x")


def test_content_covers_the_spellings_and_look_alikes() -> None:
    def texts(*needles: str) -> list[content.Story]:
        return [s for s in content.STORIES if all(n in s.body for n in needles)]

    for spelling in ("At Tanf", "al-Tanf", "Deir ez-Zor", "Deir al-Zour", "Dayr az Zawr", "Stanford", "Tanforan"):
        assert texts(spelling), spelling
    scope_only = [s for s in texts("al-Mayadin", "Abu Kamal") if "Deir" not in s.body and "Dayr" not in s.body]
    assert scope_only
    related_only = [s for s in texts("Rukban", "Maghawir al-Thawra") if "Tanf" not in s.body.replace("Stanford", "")]
    assert related_only
    for story in content.STORIES:
        assert len(" ".join(story.paragraphs()).split()) >= 300, story.path
    copies = [s for s in content.STORIES if s.canonical_of]
    assert len(copies) == 1 and copies[0].body in {s.body for s in content.STORIES if not s.canonical_of}


def test_stop_closes_sockets_and_joins_threads() -> None:
    room = Newsroom().start()
    urls = list(room.base_urls.values())
    assert get(urls[0] + "/robots.txt")[0] == 200
    names = {"newsroom-" + u.removeprefix("http://") for u in urls}
    threads = [t for t in threading.enumerate() if t.name in names]
    assert len(threads) == 3
    room.stop()
    room.stop()  # idempotent
    assert not [t for t in threads if t.is_alive()]
    for url in urls:
        with pytest.raises(OSError):
            socket.create_connection((urlsplit(url).hostname, urlsplit(url).port), timeout=1).close()


def _free_port_block(n: int) -> int:
    return free_port_block(n)


def test_fixed_port_uses_consecutive_ports_and_busy_port_is_an_error() -> None:
    port = _free_port_block(3)
    with Newsroom(port=port) as room:
        assert sorted(urlsplit(u).port for u in room.base_urls.values()) == [port, port + 1, port + 2]
        with pytest.raises(OSError):
            Newsroom(port=port + 1).start()
        with pytest.raises(InputError, match="cannot serve the newsroom"):
            serve_forever(port)


def test_page_server_spreads_pages_over_loopback_hosts() -> None:
    pages = {f"p{i}": f"<html><body><p>page {i}</p></body></html>".encode() for i in range(5)}
    with PageServer(pages, ["127.0.0.2", "127.0.0.3"]) as server:
        names = {"pageserver-" + u.removeprefix("http://").removesuffix("/feed.xml") for u in server.feed_urls}
        threads = [t for t in threading.enumerate() if t.name in names]
        assert len(threads) == 2
        hosts = {urlsplit(u).hostname for u in server.feed_urls}
        assert hosts == {"127.0.0.2", "127.0.0.3"}
        listed = []
        for url in server.feed_urls:
            parsed = feedparser.parse(get(url)[2])
            assert not parsed.bozo
            listed += [e.link for e in parsed.entries]
        assert sorted(listed) == sorted(server.page_urls.values())
        name, url = next(iter(server.page_urls.items()))
        status, headers, body = get(url, {"Accept-Encoding": "gzip"})
        assert status == 200 and headers.get("Content-Encoding") == "gzip"
        assert gzip.decompress(body) == pages[name]
        status, headers, body = get(url)
        assert "Content-Encoding" not in headers and body == pages[name]
        assert get(url.replace(".html", "-missing.html"))[0] == 404
        assert [f.url for f in server.feeds_config()] == server.feed_urls
    assert not [t for t in threads if t.is_alive()]


def test_page_server_feeds_grow_with_show() -> None:
    pages = {f"p{i}": f"<html><body><p>page {i}</p></body></html>".encode() for i in range(6)}

    def listed(server: PageServer) -> set[str]:
        return {e.title for url in server.feed_urls for e in feedparser.parse(get(url)[2]).entries}

    with PageServer(pages, ["127.0.0.2", "127.0.0.3"]) as server:
        server.show(["p0", "p3"])
        assert listed(server) == {"p0", "p3"}
        assert get(server.page_urls["p5"])[0] == 200, "a page not listed yet is still served"
        server.show(["p0", "p3", "p4", "p5"])
        assert listed(server) == {"p0", "p3", "p4", "p5"}
        server.show(None)
        assert listed(server) == set(pages)
    server = PageServer(pages, ["127.0.0.2"])
    server.show(["p1"])  # before start: the feeds are written with it
    with server:
        assert listed(server) == {"p1"}


def test_stop_ends_open_keep_alive_connections() -> None:
    room = Newsroom().start()
    host, port = urlsplit(room.base_url).hostname, urlsplit(room.base_url).port
    conn = socket.create_connection((host, port), timeout=5)
    conn.sendall(b"GET /robots.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    while not got.endswith(b"Allow: /\n"):  # the whole response: headers and robots.txt body
        chunk = conn.recv(4096)
        assert chunk, got
        got += chunk
    assert got.startswith(b"HTTP/1.1 200")
    handlers = [t for t in threading.enumerate() if "process_request_thread" in t.name and t.is_alive()]
    assert handlers
    room.stop()
    conn.settimeout(5)
    assert conn.recv(4096) == b""  # the server closed the kept-alive connection
    conn.close()
    for t in handlers:
        t.join(timeout=5)
    assert not [t for t in handlers if t.is_alive()]


def test_a_client_resetting_its_connection_prints_no_traceback(room: Newsroom,
                                                               capfd: pytest.CaptureFixture[str]) -> None:
    """A fetcher that drops a kept-alive connection with a reset is normal for a web server (seen in
    `make run`: socketserver printed ConnectionResetError's traceback on stderr)."""
    import struct
    import time

    host, port = urlsplit(room.base_url).hostname, urlsplit(room.base_url).port
    for _ in range(5):
        s = socket.create_connection((host, port), timeout=2)
        s.sendall(b"GET /robots.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /robots.txt HTTP/1.1\r\nHo")
        time.sleep(0.05)  # the first answer is queued unread, the handler waits in readline
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
        s.close()
    time.sleep(0.3)
    urllib.request.urlopen(room.base_url + "/robots.txt", timeout=5).read()  # still serving
    err = capfd.readouterr().err
    assert "Traceback" not in err and "ConnectionResetError" not in err, err
