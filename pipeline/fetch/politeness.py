"""Per-host politeness: concurrency cap, spacing between requests, Retry-After.

Contract: every request to a host runs inside ``with gates.slot(host):``. A slot
waits until (a) fewer than ``per_host_concurrency`` requests to that host are in
flight and (b) at least ``delay_seconds`` have passed since the previous request
to that host *started* (start times are reserved under a lock, so N threads get
spaced by the delay rather than all firing at once). ``penalize(host, seconds)``
pushes the host's next start time back (used after a 429/503), which every thread
honours.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC

__all__ = ["HostGates", "parse_retry_after"]


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now())


class _Host:
    def __init__(self, concurrency: int) -> None:
        self.sem = threading.BoundedSemaphore(concurrency)
        self.next_start = 0.0  # monotonic


class HostGates:
    """Thread-safe registry of per-host gates (one per lower-case host name)."""

    def __init__(self, per_host_concurrency: int, delay_seconds: float) -> None:
        self.per_host_concurrency = per_host_concurrency
        self.delay_seconds = delay_seconds
        self._lock = threading.Lock()
        self._hosts: dict[str, _Host] = {}

    def _get(self, host: str) -> _Host:
        with self._lock:
            gate = self._hosts.get(host)
            if gate is None:
                gate = self._hosts[host] = _Host(self.per_host_concurrency)
            return gate

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        """Hold one of the host's request slots, after the politeness delay."""
        gate = self._get(host)
        gate.sem.acquire()
        try:
            with self._lock:
                now = time.monotonic()
                start = max(now, gate.next_start)
                gate.next_start = start + self.delay_seconds
            if start > now:
                time.sleep(start - now)
            yield
        finally:
            gate.sem.release()

    def penalize(self, host: str, seconds: float) -> None:
        """No new request to ``host`` starts within ``seconds`` from now."""
        gate = self._get(host)
        with self._lock:
            gate.next_start = max(gate.next_start, time.monotonic() + seconds)
