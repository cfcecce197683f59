"""The total deadline of one HTTP exchange, enforced on the socket whatever phase it is in.

Socket timeouts bound each ``recv`` alone: a server that sends a header line every 4 s, or
one byte of a header every 2 s, never trips a 10 s read timeout and holds a fetch for as long
as it likes (http.client reads the status line and headers inside ``getresponse``, out of our
reach). So every exchange runs under a :class:`Guard`: a single watchdog thread (one per
process, started on first use) shuts the connection's socket down when the guard's deadline
passes, which ends any blocked ``connect``/``send``/``recv`` at once, in the TLS handshake,
the headers or the body alike. The fetcher then sees :attr:`Guard.fired` and reports the
deadline (``FetchTimeoutError``) instead of whatever the cut connection looked like (an early
end of headers can even look like a complete, empty response: that is why the flag, not the
exception, decides).

The connection classes find the guard of the current exchange in a thread-local (one fetch
thread runs one exchange at a time) when they connect and when they send a request, so
both new and kept-alive connections are covered. They also note there whether the request
went out on a kept-alive socket (:func:`sent_on_kept_alive`): a server may close an idle
connection just as we reuse it, and only then may the fetcher send the request again.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection

__all__ = ["Guard", "guarded", "sent_on_kept_alive", "GuardedHTTPConnection", "GuardedHTTPSConnection"]

_local = threading.local()


class Guard:
    """The deadline of one exchange; ``fired`` once the watchdog has cut its connection."""

    def __init__(self, deadline_at: float) -> None:
        self.deadline_at = deadline_at
        self.fired = False
        self.done = False
        self._conn: Any = None
        self._lock = threading.Lock()

    def attach(self, conn: Any) -> None:
        """Watch ``conn`` (a urllib3 connection): its current socket is cut at the deadline."""
        with self._lock:
            self._conn = conn
            late = self.fired
        if late:
            self._cut()

    def fire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.fired = True
        self._cut()

    def _cut(self) -> None:
        sock = getattr(self._conn, "sock", None)
        if sock is None:
            return
        try:
            # the plain socket's shutdown, also for an SSLSocket (its own would drop the TLS object under a reader)
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass  # already closed: nothing left to cut

    def finish(self) -> None:
        with self._lock:
            self.done = True
            self._conn = None


class _Watchdog:
    """Fires guards at their deadlines (one daemon thread, a heap of deadlines)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Guard]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, guard: Guard) -> None:
        with self._cond:
            heapq.heappush(self._heap, (guard.deadline_at, next(self._seq), guard))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="fetch-deadline", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is guard:
                self._cond.notify()  # only an earlier deadline than the one it sleeps for needs to wake it

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                guard = heapq.heappop(self._heap)[2]
            guard.fire()


_WATCHDOG = _Watchdog()


@contextmanager
def guarded(deadline_at: float) -> Iterator[Guard]:
    """Run one exchange under a deadline (``time.monotonic()`` based)."""
    guard = Guard(deadline_at)
    previous = getattr(_local, "guard", None)
    _local.guard = guard
    _local.kept_alive = False
    _WATCHDOG.watch(guard)
    try:
        yield guard
    finally:
        guard.finish()
        _local.guard = previous


def sent_on_kept_alive() -> bool:
    """Whether the current exchange's last request went out on a socket that had served a request before."""
    return bool(getattr(_local, "kept_alive", False))


def _attach(conn: Any) -> None:
    guard: Guard | None = getattr(_local, "guard", None)
    if guard is not None:
        guard.attach(conn)


class _Guarded:
    """Attaches the connection to the current exchange's :class:`Guard` on connect and on each request."""

    def connect(self) -> None:
        _attach(self)
        super().connect()  # type: ignore[misc]

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self)
        sock = getattr(self, "sock", None)
        # the same socket as the previous request: kept alive (a reconnect or a new TLS socket is another object)
        _local.kept_alive = sock is not None and sock is getattr(self, "_last_sock", None)
        super().request(*args, **kwargs)  # type: ignore[misc]
        self._last_sock = getattr(self, "sock", None)


class GuardedHTTPConnection(_Guarded, HTTPConnection):
    """urllib3's connection, watched by the current exchange's :class:`Guard`."""


class GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    """urllib3's TLS connection, watched by the current exchange's :class:`Guard`."""
