"""The one safe HTTP GET used for feeds, robots.txt and articles.

``SafeFetcher.fetch(url)`` guarantees, for every hop of a redirect chain:

- scheme http/https only; the host is resolved once and every address vetted by
  :mod:`pipeline.fetch.netpolicy`; the connection goes to the vetted IP (urllib3
  pool on the IP, ``Host`` header and TLS SNI/hostname check on the name);
- connect and read timeouts, and a total ``deadline`` of network time per attempt
  (all hops) that holds in every phase: connect, TLS handshake, status line and headers
  (a header dripped a byte at a time is cut off too) and body (:mod:`pipeline.fetch.deadline`).
  Politeness queueing and Retry-After waits do not count against the deadline;
- the decompressed body never exceeds ``max_bytes`` in memory (raw bytes are
  inflated by :class:`~pipeline.fetch.body.BoundedDecoder`); Content-Length is
  checked before reading;
- per-host politeness (:mod:`pipeline.fetch.politeness`) and, when ``robots=True``,
  robots.txt (:mod:`pipeline.fetch.robots`);
- connections are kept alive and reused: one urllib3 pool per (scheme, vetted IP, port, host),
  up to ``MAX_POOLS`` of them, least recently used closed first; a host's vetted addresses are
  kept ``dns_cache_seconds`` (:class:`~pipeline.fetch.netpolicy.VettedAddresses`). A request
  that finds its kept-alive connection closed by the server (nothing answered) is sent again
  on another connection;
- 429/503 are retried up to ``retries`` times, honouring Retry-After up to
  ``max_retry_after`` (a longer Retry-After fails at once with ``.retry_after`` set).

Every failure is a :class:`pipeline.errors.FetchError` subclass; no urllib3,
socket or ssl exception escapes.
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urljoin

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    LocationValueError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from ..config import FetchSettings
from ..errors import BlockedURLError, FetchError, FetchTimeoutError, HTTPStatusError, TooLargeError
from .body import BoundedDecoder
from .deadline import Guard, GuardedHTTPConnection, GuardedHTTPSConnection, guarded, sent_on_kept_alive
from .netpolicy import AllowList, Target, VettedAddresses
from .politeness import HostGates, parse_retry_after
from .robots import RobotsCache

__all__ = ["SafeFetcher", "FetchResponse", "MAX_POOLS"]

log = logging.getLogger(__name__)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRY_STATUSES = frozenset({429, 503})
_CHUNK = 64 * 1024
#: connection pools kept (one per host and address); with up to ``per_host_concurrency`` idle sockets
#: each, this bounds the file descriptors a fetcher holds. Feeds are polled in windows of hosts that fit
#: (:func:`pipeline.feeds.order_for_reuse`), so a long feed list reuses its connections in any order.
MAX_POOLS = 256


@dataclass
class FetchResponse:
    """A successful (2xx) or not-modified (304) response.

    ``url`` is the URL asked for, ``final_url`` the one answered after redirects;
    ``headers`` have lower-case names; ``body`` is decompressed (empty for 304).
    """

    url: str
    final_url: str
    status: int
    headers: dict[str, str]
    body: bytes
    not_modified: bool
    elapsed: float
    etag: str | None = None
    last_modified: str | None = None
    redirects: int = 0


@dataclass
class _Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class _ConnectError(Exception):
    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _dropped(exc: BaseException) -> bool:
    """The server closed the connection before answering (an idle kept-alive connection it let go)."""
    inner = exc.args[1] if isinstance(exc, ProtocolError) and len(exc.args) > 1 else exc
    return isinstance(inner, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError,
                              http.client.RemoteDisconnected))


class _RetryableError(Exception):
    def __init__(self, error: HTTPStatusError, host: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.host = host


def _translate(exc: BaseException, url: str) -> FetchError:
    """Map a urllib3/socket/ssl exception to our hierarchy (one line, names the URL)."""
    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, NewConnectionError):
        return FetchError(f"connection failed: {exc}: {url}", url=url, reason="connection_error")
    if isinstance(exc, ConnectTimeoutError):
        return FetchTimeoutError(f"connect timeout: {url}", url=url)
    if isinstance(exc, (ReadTimeoutError, socket.timeout, TimeoutError)):
        return FetchTimeoutError(f"read timeout: {url}", url=url)
    if isinstance(exc, (SSLError, ssl.SSLError, ssl.CertificateError)):
        return FetchError(f"TLS error: {exc}: {url}", url=url, reason="tls_error")
    if isinstance(exc, ProtocolError):
        inner = exc.args[1] if len(exc.args) > 1 else None
        if isinstance(inner, (socket.timeout, TimeoutError)):
            return FetchTimeoutError(f"read timeout: {url}", url=url)
        return FetchError(f"connection broken: {exc}: {url}", url=url, reason="connection_error")
    if isinstance(exc, LocationValueError):
        return FetchError(f"invalid URL: {exc}: {url}", url=url, reason="invalid_url")
    return FetchError(f"{type(exc).__name__}: {exc}: {url}", url=url, reason="connection_error")


class SafeFetcher:
    """Thread-safe safe HTTP GET (see the module docstring for the guarantees).

    One instance is shared by a thread pool; it owns connection pools (per vetted
    IP), the vetted addresses of hosts, per-host politeness gates and the robots.txt
    cache: share one for a whole pass, so that connections are reused from feed to
    feed. ``close()`` releases the connections; use it as a context manager.
    """

    def __init__(self, settings: FetchSettings) -> None:
        self.settings = settings
        self._allow = AllowList(settings.allow_hosts)
        self.addresses = VettedAddresses(self._allow, settings.dns_cache_seconds)
        self._gates = HostGates(settings.per_host_concurrency, settings.delay_seconds)
        self._robots = RobotsCache(lambda u: self.fetch(u, accept="text/plain, */*;q=0.1"), settings.user_agent)
        self._pools: OrderedDict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = OrderedDict()
        self._pool_lock = threading.Lock()

    def __enter__(self) -> SafeFetcher:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection. The fetcher may not be used afterwards."""
        with self._pool_lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.close()

    # -- public API -----------------------------------------------------------------
    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        robots: bool = False,
        accept: str | None = None,
    ) -> FetchResponse:
        """GET ``url`` safely; conditional when ``etag``/``last_modified`` are given.

        Returns a FetchResponse for 2xx and 304 (``not_modified=True``). Raises
        BlockedURLError (reason ``blocked`` or ``robots_disallowed``), FetchTimeoutError,
        TooLargeError, HTTPStatusError (status >= 400, or 3xx without Location) or
        FetchError (``connection_error``, ``dns_error``, ``tls_error``,
        ``too_many_redirects``, ``invalid_url``, ``decode_error``, ``unsupported_encoding``).
        """
        started = time.monotonic()
        headers = {
            "User-Agent": self.settings.user_agent,
            "Accept": accept or "*/*",
            "Accept-Encoding": "gzip, deflate",
        }
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        attempt = 0
        while True:
            try:
                final_url, answer, hops = self._follow(url, headers, robots)
            except _RetryableError as retry:
                err = retry.error
                if attempt >= self.settings.retries:
                    raise err from None
                if err.retry_after is not None and err.retry_after > self.settings.max_retry_after:
                    raise err from None  # the server asked for longer than we wait in-run
                wait = err.retry_after if err.retry_after is not None else 2.0**attempt
                wait = min(wait, self.settings.max_retry_after)
                attempt += 1
                log.info("fetch %s: HTTP %s, retry %d/%d in %.1fs", url, err.status, attempt,
                         self.settings.retries, wait)
                self._gates.penalize(retry.host, wait)
                time.sleep(wait)
                continue
            break
        resp = FetchResponse(
            url=url,
            final_url=final_url,
            status=answer.status,
            headers=answer.headers,
            body=answer.body,
            not_modified=answer.status == 304,
            elapsed=time.monotonic() - started,
            etag=answer.headers.get("etag"),
            last_modified=answer.headers.get("last-modified"),
            redirects=hops,
        )
        log.debug("fetch %s: HTTP %s, %d bytes, %.2fs", url, resp.status, len(resp.body), resp.elapsed)
        return resp

    # -- internals ------------------------------------------------------------------
    def _follow(self, url: str, headers: dict[str, str], robots: bool) -> tuple[str, _Answer, int]:
        current = url
        budget = self.settings.deadline
        for hop in range(self.settings.max_redirects + 1):
            target = self.addresses.vet(current)
            if robots and self.settings.respect_robots and not self._robots.allowed(current):
                raise BlockedURLError(f"disallowed by robots.txt: {current}", url=current, reason="robots_disallowed")
            with self._gates.slot(target.host):
                t0 = time.monotonic()
                answer = self._request(target, headers, t0 + budget)
                budget -= time.monotonic() - t0
            location = answer.headers.get("location")
            if answer.status in _REDIRECTS and location:
                nxt = urljoin(current, location.strip())
                log.debug("fetch %s: HTTP %s redirect to %s", current, answer.status, nxt)
                current = nxt
                continue
            if 200 <= answer.status < 300 or answer.status == 304:
                return current, answer, hop
            error = HTTPStatusError(
                f"HTTP {answer.status}: {current}",
                url=current,
                status=answer.status,
                retry_after=parse_retry_after(answer.headers.get("retry-after")),
            )
            if answer.status in _RETRY_STATUSES:
                raise _RetryableError(error, target.host)
            raise error
        raise FetchError(f"more than {self.settings.max_redirects} redirects: {url}", url=url,
                         reason="too_many_redirects")

    def _pool(self, target: Target, ip: str) -> urllib3.HTTPConnectionPool:
        key = (target.scheme, ip, target.port, target.host)
        with self._pool_lock:
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                return pool
            size = self.settings.per_host_concurrency
            if target.scheme == "https":
                pool = urllib3.HTTPSConnectionPool(
                    ip, target.port, maxsize=size, block=False, cert_reqs="CERT_REQUIRED",
                    server_hostname=None if target.host_is_ip else target.host, assert_hostname=target.host,
                )
                pool.ConnectionCls = GuardedHTTPSConnection
            else:
                pool = urllib3.HTTPConnectionPool(ip, target.port, maxsize=size, block=False)
                pool.ConnectionCls = GuardedHTTPConnection
            self._pools[key] = pool
            evicted = self._pools.popitem(last=False)[1] if len(self._pools) > MAX_POOLS else None
        if evicted is not None:
            evicted.close()
        return pool

    def _request(self, target: Target, headers: dict[str, str], deadline_at: float) -> _Answer:
        """One GET of one hop to the pinned addresses (next address on connect failure)."""
        hdrs = dict(headers, Host=target.host_header)
        last: BaseException | None = None
        for ip in target.addresses:
            try:
                return self._exchange(target, ip, hdrs, deadline_at)
            except _ConnectError as failed:
                last = failed.error
                log.debug("fetch %s: cannot connect to %s: %s", target.url, ip, last)
        assert last is not None
        self.addresses.forget(target.host)  # none answered: resolve afresh next time, the site may have moved
        raise _translate(last, target.url) from None

    def _exchange(self, target: Target, ip: str, hdrs: dict[str, str], deadline_at: float) -> _Answer:
        """The GET on one address; _ConnectError when it cannot be reached. A request that went out on a
        kept-alive connection the server had just closed is sent again (at most ``per_host_concurrency`` times)."""
        pool = self._pool(target, ip)
        resent = 0
        while True:
            remaining = deadline_at - time.monotonic()
            if remaining <= 0:
                raise self._deadline(target)
            timeout = urllib3.Timeout(connect=min(self.settings.connect_timeout, remaining),
                                      read=min(self.settings.read_timeout, remaining))
            with guarded(deadline_at) as guard:
                try:
                    resp = pool.urlopen(
                        "GET", target.request_target, headers=hdrs, retries=False, redirect=False,
                        preload_content=False, decode_content=False, timeout=timeout,
                        assert_same_host=False, release_conn=False,
                    )
                except (NewConnectionError, ConnectTimeoutError) as exc:
                    if guard.fired:
                        raise self._deadline(target) from None
                    raise _ConnectError(exc) from None
                except (HTTPError, OSError) as exc:
                    if not guard.fired and sent_on_kept_alive() and _dropped(exc) \
                            and resent < self.settings.per_host_concurrency:
                        resent += 1
                        log.debug("fetch %s: kept-alive connection to %s closed by the server; sending again",
                                  target.url, ip)
                        continue
                    raise self._timeout_or(exc, target, deadline_at, guard) from None
                return self._read(resp, target, deadline_at, guard)

    def _deadline(self, target: Target, what: str = "") -> FetchTimeoutError:
        return FetchTimeoutError(f"deadline of {self.settings.deadline}s passed{what}: {target.url}", url=target.url)

    def _timeout_or(self, exc: BaseException, target: Target, deadline_at: float, guard: Guard) -> FetchError:
        """Translate ``exc``; a connection cut at the deadline, or a timeout at it, says so."""
        if guard.fired:
            return self._deadline(target)
        error = _translate(exc, target.url)
        if isinstance(error, FetchTimeoutError) and time.monotonic() >= deadline_at - 0.05:
            return self._deadline(target)
        return error

    def _read(self, resp: urllib3.BaseHTTPResponse, target: Target, deadline_at: float, guard: Guard) -> _Answer:
        headers = {k.lower(): v for k, v in resp.headers.items()}
        status = resp.status
        ok = False
        try:
            if guard.fired:  # cut while the headers were arriving: what came is not the response
                raise self._deadline(target, " before the headers were complete")
            if not 200 <= status < 300:
                ok = status == 304  # no body: the connection can be reused
                return _Answer(status, headers, b"")
            length = headers.get("content-length", "").strip()
            if length.isdigit() and int(length) > self.settings.max_bytes:
                raise TooLargeError(f"Content-Length {length} > {self.settings.max_bytes}: {target.url}",
                                    url=target.url)
            decoder = BoundedDecoder(headers.get("content-encoding", ""), self.settings.max_bytes, url=target.url)
            while True:
                remaining = deadline_at - time.monotonic()
                if remaining <= 0 or guard.fired:
                    raise self._deadline(target, " while reading body")
                conn = resp.connection
                sock = getattr(conn, "sock", None)
                if sock is not None:
                    sock.settimeout(min(self.settings.read_timeout, remaining))
                chunk = resp.read1(_CHUNK)
                if not chunk:
                    break
                decoder.feed(chunk)
            if guard.fired:  # the cut looks like the end of the body
                raise self._deadline(target, " while reading body")
            body = decoder.finish()
            ok = True
            return _Answer(status, headers, body)
        except (HTTPError, OSError) as exc:
            raise self._timeout_or(exc, target, deadline_at, guard) from None
        finally:
            if ok:
                resp.release_conn()
            else:
                resp.close()
                conn = resp.connection
                if conn is not None:
                    conn.close()
                resp.release_conn()
