"""Local HTTP servers for demos, tests and benchmarks (``http.server``, threaded, loopback only).

``Newsroom``   the sample newsroom: three fictional outlets, one server (one origin) each,
               with RSS/Atom feeds, article pages, a section index, a 404 link, robots.txt
               and one feed that answers 304 to a conditional GET.
``PageServer`` given pages spread over several loopback addresses (127.0.0.2, ...), with a
               generated RSS feed per host: what the ingest benchmark fetches.

Both are context managers; ``stop()`` shuts every server down, joins its thread and closes
its socket. Responses are precomputed at ``start()``, so serving is a dict look-up.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from ..config import FeedConfig
from ..errors import InputError
from . import content, render

__all__ = ["Newsroom", "PageServer", "serve_forever"]

logger = logging.getLogger(__name__)


@dataclass
class _Resource:
    body: bytes
    content_type: str
    etag: str | None = None
    last_modified: float | None = None  # POSIX seconds
    gzipped: bytes | None = None  # the body gzip-compressed, served to clients that accept it
    headers: dict[str, str] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.routes: dict[str, _Resource] = {}
        self.thread: threading.Thread | None = None
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that resets or drops its connection (a fetcher closing a kept-alive connection, a
        deadline cutting an exchange) is a normal event for a web server: one debug line, not
        socketserver's traceback on stderr. Anything else is logged with its traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            logger.debug("newsroom %s: %s from %s", self.base_url, type(exc).__name__, client_address)
            return
        logger.exception("newsroom %s: error answering %s", self.base_url, client_address)

    def serve_in_thread(self, name: str) -> None:
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, name=name,
                                       daemon=True)
        self.thread.start()

    def shut(self) -> None:
        """Stop accepting, end open keep-alive connections (their handler threads then exit), close."""
        if self.thread is not None:
            self.shutdown()
            self.thread.join(timeout=10)
            self.thread = None
        with self.conn_lock:
            conns = list(self.connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                logger.debug("newsroom %s: connection already closed", self.base_url)
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "newswatch-newsroom/0.1"
    # headers and body go out in two writes: with Nagle's algorithm on, the body then waits for the
    # client's delayed ACK of the headers (~40 ms per response on a kept-alive connection)
    disable_nagle_algorithm = True
    timeout = 30  # an idle keep-alive connection is dropped after this many seconds

    def setup(self) -> None:
        super().setup()
        with self.server.conn_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.conn_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        logger.debug("newsroom %s: " + format, self.server.base_url, *args)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server naming
        self._answer(send_body=False)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._answer(send_body=True)

    def _answer(self, send_body: bool) -> None:
        path = urlsplit(self.path).path or "/"
        res = self.server.routes.get(path)
        if res is None:
            self._send(404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html; charset=utf-8",
                       {}, send_body)
            return
        validators: dict[str, str] = {}
        if res.etag:
            validators["ETag"] = res.etag
        if res.last_modified is not None:
            validators["Last-Modified"] = format_datetime(_utc(res.last_modified), usegmt=True)
        if self._not_modified(res):
            self._send(304, b"", None, validators, send_body)
            return
        headers = {**validators, **res.headers}
        body = res.body
        if res.gzipped is not None and "gzip" in self.headers.get("Accept-Encoding", "").lower():
            body = res.gzipped
            headers["Content-Encoding"] = "gzip"
        headers["Vary"] = "Accept-Encoding"
        self._send(200, body, res.content_type, headers, send_body)

    def _not_modified(self, res: _Resource) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            return res.etag is not None and (inm.strip() == "*" or res.etag in [t.strip() for t in inm.split(",")])
        ims = self.headers.get("If-Modified-Since")
        if ims and res.last_modified is not None:
            try:
                since = parsedate_to_datetime(ims).timestamp()
            except (TypeError, ValueError):
                return False
            return int(res.last_modified) <= int(since)
        return False

    def _send(self, status: int, body: bytes, ctype: str | None, headers: dict[str, str], send_body: bool) -> None:
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class _ServerGroup:
    """Servers started and stopped together."""

    def __init__(self) -> None:
        self._servers: list[_Server] = []
        self._lock = threading.Lock()

    def _bind(self, addresses: Sequence[tuple[str, int]]) -> list[_Server]:
        servers: list[_Server] = []
        try:
            for addr in addresses:
                servers.append(_Server(addr))
        except OSError:
            for s in servers:
                s.server_close()
            raise
        return servers

    def _run(self, servers: list[_Server], prefix: str) -> None:
        with self._lock:
            self._servers = servers
            for s in servers:
                s.serve_in_thread(f"{prefix}-{s.base_url.removeprefix('http://')}")
                logger.debug("%s serving on %s", prefix, s.base_url)

    @property
    def running(self) -> bool:
        return bool(self._servers)

    def stop(self) -> None:
        """Shut every server down, join its thread and close its socket; idempotent."""
        with self._lock:
            servers, self._servers = self._servers, []
        for s in servers:
            s.shut()

    def start(self) -> Self:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class Newsroom(_ServerGroup):
    """The sample newsroom: one HTTP server per outlet, all on ``host``.

    ``port=0`` takes free ports; ``port=N`` serves the outlets on N, N+1, N+2 (in the
    order of ``content.SITES``) and ``start()`` raises ``OSError`` if one is taken.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self._base: dict[str, str] = {}

    def start(self) -> Self:
        if self.running:
            return self
        addrs = [(self.host, self.port + i if self.port else 0) for i in range(len(content.SITES))]
        servers = self._bind(addrs)
        self._base = {site.key: s.base_url for site, s in zip(content.SITES, servers, strict=True)}
        for site, s in zip(content.SITES, servers, strict=True):
            s.routes = self._routes(site)
        self._run(servers, "newsroom")
        return self

    @property
    def base_url(self) -> str:
        """Base URL of the first outlet (The Levant Observer)."""
        return self.base_urls[content.SITES[0].key]

    @property
    def base_urls(self) -> dict[str, str]:
        """Site key -> base URL (``http://127.0.0.1:PORT``)."""
        if not self._base:
            raise RuntimeError("the newsroom is not started")
        return dict(self._base)

    @property
    def feed_urls(self) -> list[str]:
        return [self.base_urls[s.key] + s.feed_path for s in content.SITES]

    def feeds_config(self) -> list[FeedConfig]:
        return [FeedConfig.model_validate({"url": self.base_urls[s.key] + s.feed_path, "name": s.name}) for s in content.SITES]

    def url_of(self, site_key: str, path: str) -> str:
        return self.base_urls[site_key] + path

    def article_urls(self) -> list[str]:
        """Every article page linked from a feed (the section index and the 404 excluded)."""
        return [self.url_of(s.site, s.path) for s in content.STORIES]

    def _routes(self, site: content.Site) -> dict[str, _Resource]:
        base = self._base[site.key]
        html_type = f"text/html; charset={site.encoding}"
        routes: dict[str, _Resource] = {"/robots.txt": _Resource(render.robots_txt(), "text/plain; charset=utf-8")}
        stories = content.stories_of(site.key)
        items: list[render.FeedItem] = []
        for story in stories:
            url = base + story.path
            canonical = url
            if story.canonical_of:
                orig_site, orig_path = story.canonical_of.split(":", 1)
                canonical = self._base[orig_site] + orig_path
            related = [(o.path, o.title) for o in stories if o is not story][:3]
            routes[story.path] = _Resource(render.article_page(site, story, url, canonical, related), html_type)
            items.append((url, f"tag:{site.key}.example,2017:{story.path}", story.title, story.summary,
                          story.published))
        sec_site, sec_path, sec_title = content.SECTION_INDEX
        if sec_site == site.key:
            entries = [(s.path, s.title, s.summary) for s in stories]
            routes[sec_path] = _Resource(render.section_page(site, sec_title, base + sec_path, entries), html_type)
            items.append((base + sec_path, f"tag:{site.key}.example,2017:{sec_path}", sec_title,
                          "The latest stories from the region.", "2017-12-01T08:00:00+00:00"))
        if site.key in content.BROKEN_LINKS:
            path, title, published = content.BROKEN_LINKS[site.key]
            items.append((base + path, f"tag:{site.key}.example,2017:{path}", title, title, published))
        items.sort(key=lambda i: i[4], reverse=True)
        feed_url = base + site.feed_path
        if site.feed_format == "atom":
            body = render.atom_feed(site, base + "/", feed_url, items)
            routes[site.feed_path] = _Resource(body, "application/atom+xml; charset=utf-8")
        else:
            body = render.rss_feed(site, base + "/", feed_url, items)
            routes[site.feed_path] = _Resource(body, "application/rss+xml; charset=utf-8")
        if site is content.SITES[0]:  # the feed that supports conditional GET
            res = routes[site.feed_path]
            res.etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            res.last_modified = float(int(max(_iso_ts(i[4]) for i in items)))
        routes["/"] = _Resource(render.section_page(site, site.name, base + "/",
                                                    [(s.path, s.title, s.summary) for s in stories]), html_type)
        return routes


def _iso_ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


class PageServer(_ServerGroup):
    """Serve ``pages`` (name -> HTML bytes) spread round-robin over ``hosts`` (loopback addresses).

    Page ``name`` is at ``/articles/<name>.html`` on its host; each host serves ``/feed.xml``
    (RSS 2.0 listing its pages) and a permissive ``/robots.txt``. Bodies go out gzip-encoded
    to clients that accept it. ``port=0`` gives every host a free port. :meth:`show` makes the
    feeds list only some pages (every page stays fetchable): feeds that grow as news comes in.
    """

    def __init__(self, pages: Mapping[str, bytes], hosts: Sequence[str] = ("127.0.0.2", "127.0.0.3"),
                 port: int = 0) -> None:
        super().__init__()
        if not hosts:
            raise ValueError("PageServer needs at least one host")
        self.pages = dict(pages)
        self.hosts = list(hosts)
        self.port = port
        self._page_urls: dict[str, str] = {}
        self._feed_urls: list[str] = []
        self._items: list[list[tuple[str, render.FeedItem]]] = []  # per host: (page name, feed item)
        self._listed: frozenset[str] | None = None  # None: every page

    def start(self) -> Self:
        if self.running:
            return self
        servers = self._bind([(h, self.port) for h in self.hosts])
        self._items = [[] for _ in servers]
        routes: list[dict[str, _Resource]] = [
            {"/robots.txt": _Resource(render.robots_txt(), "text/plain; charset=utf-8")} for _ in servers
        ]
        stamp = "2020-01-01T00:00:00+00:00"
        for i, (name, html) in enumerate(sorted(self.pages.items())):
            k = i % len(servers)
            path = f"/articles/{name}.html"
            url = servers[k].base_url + path
            self._page_urls[name] = url
            routes[k][path] = _Resource(html, "text/html", gzipped=gzip.compress(html, compresslevel=5))
            self._items[k].append((name, (url, f"bench:{name}", name, "", stamp)))
        self._feed_urls = [s.base_url + "/feed.xml" for s in servers]
        for k, s in enumerate(servers):
            s.routes = routes[k]
        self._write_feeds(servers)
        self._run(servers, "pageserver")
        return self

    def show(self, names: Iterable[str] | None) -> None:
        """List only the pages called ``names`` in the feeds from now on (None: every page)."""
        self._listed = None if names is None else frozenset(names)
        with self._lock:
            servers = list(self._servers)
        if servers:  # else start() writes them
            self._write_feeds(servers)

    def _write_feeds(self, servers: Sequence[_Server]) -> None:
        site = content.Site("bench", "Benchmark pages", "Pages for the ingest benchmark", "/feed.xml", "rss")
        for s, feed_url, items in zip(servers, self._feed_urls, self._items, strict=True):
            listed = [item for name, item in items if self._listed is None or name in self._listed]
            s.routes["/feed.xml"] = _Resource(render.rss_feed(site, s.base_url + "/", feed_url, listed),
                                              "application/rss+xml; charset=utf-8")

    @property
    def feed_urls(self) -> list[str]:
        return list(self._feed_urls)

    @property
    def page_urls(self) -> dict[str, str]:
        return dict(self._page_urls)

    def feeds_config(self) -> list[FeedConfig]:
        return [FeedConfig.model_validate({"url": u, "name": f"bench {i}"}) for i, u in enumerate(self._feed_urls)]


def serve_forever(port: int | None = None) -> int:
    """Serve the sample newsroom until Ctrl-C, printing its feed URLs; returns the exit status.

    ``port`` is the first outlet's port; the others take the next ones (``port+1``, ``port+2``).
    ``None`` or 0 takes free ports. A port in use raises :class:`InputError`.
    """
    room = Newsroom(port=port or 0)
    try:
        room.start()
    except OSError as exc:
        raise InputError(f"cannot serve the newsroom on 127.0.0.1 port {port} (and the next "
                         f"{len(content.SITES) - 1}): {exc.strerror or exc}") from None
    try:
        print("sample newsroom serving; feeds:", flush=True)
        for site, url in zip(content.SITES, room.feed_urls, strict=True):
            print(f"  {url}  ({site.name}, {site.feed_format})", flush=True)
        print("press Ctrl-C to stop", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopping", flush=True)
    finally:
        room.stop()
    return 0
