"""robots.txt, fetched through the safe fetcher and cached per origin.

Policy (RFC 9309 §2.3.1, with one deliberate deviation):
- 2xx: parsed with :mod:`urllib.robotparser`;
- 4xx (incl. 404): no restrictions (allow all);
- 5xx, network error, timeout, too large: allow all *with a warning*. RFC 9309 says
  "assume complete disallow"; we prefer not to lose news because a site's robots.txt
  endpoint is flaky, and we still honour it whenever it can be read.
- A robots.txt on a blocked address is treated as the fetch itself would be:
  the BlockedURLError propagates.
The result is cached per origin for ``ttl`` seconds (default an hour; RFC 9309 §2.4 allows up
to 24 h), and fetched once per origin even under threads: a fetcher kept by a continuous run
asks a site for its robots.txt once an hour, not once per pass.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

from ..errors import BlockedURLError, FetchError, HTTPStatusError

if TYPE_CHECKING:
    from .http import FetchResponse

__all__ = ["RobotsCache", "ROBOTS_TTL_S"]

log = logging.getLogger(__name__)

_MAX_ROBOTS_BYTES = 512 * 1024
#: how long an origin's robots.txt rules are used before it is asked again
ROBOTS_TTL_S = 3600.0


def _allow_all() -> RobotFileParser:
    parser = RobotFileParser()
    parser.parse([])  # no rules: everything allowed
    return parser


class RobotsCache:
    """``allowed(url)`` answers from the origin's robots.txt, fetching it once per ``ttl`` seconds."""

    def __init__(self, fetch: Callable[[str], FetchResponse], user_agent: str, *, ttl: float = ROBOTS_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self.user_agent = user_agent
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._parsers: dict[str, tuple[float, RobotFileParser]] = {}
        self._origin_locks: dict[str, threading.Lock] = {}

    @staticmethod
    def origin(url: str) -> str:
        parts = urlsplit(url)
        return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), "", "", ""))

    def _load(self, origin: str) -> RobotFileParser:
        robots_url = origin + "/robots.txt"
        try:
            resp = self._fetch(robots_url)
        except BlockedURLError:
            raise
        except HTTPStatusError as exc:
            if 400 <= exc.status < 500:
                log.debug("robots %s: HTTP %s, no restrictions", robots_url, exc.status)
            else:
                log.warning("robots %s: HTTP %s, allowing all (RFC 9309 would disallow)", robots_url, exc.status)
            return _allow_all()
        except FetchError as exc:
            log.warning("robots %s: %s (%s), allowing all", robots_url, exc.reason, exc)
            return _allow_all()
        parser = RobotFileParser(robots_url)
        text = resp.body[:_MAX_ROBOTS_BYTES].decode("utf-8", errors="replace")
        parser.parse(text.splitlines())
        log.debug("robots %s: loaded (%d bytes)", robots_url, len(resp.body))
        return parser

    def _cached(self, origin: str) -> RobotFileParser | None:
        entry = self._parsers.get(origin)  # under self._lock
        return entry[1] if entry is not None and entry[0] > self._clock() else None

    def allowed(self, url: str) -> bool:
        """Whether our user agent may fetch ``url``. May raise BlockedURLError."""
        origin = self.origin(url)
        with self._lock:
            parser = self._cached(origin)
            if parser is None:
                origin_lock = self._origin_locks.setdefault(origin, threading.Lock())
        if parser is None:
            with origin_lock:
                with self._lock:
                    parser = self._cached(origin)
                if parser is None:
                    parser = self._load(origin)
                    with self._lock:
                        self._parsers[origin] = (self._clock() + self.ttl, parser)
        return parser.can_fetch(self.user_agent, url)
