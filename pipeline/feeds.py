"""The feeds stage: parse a feed body, and poll a feed with conditional GET.

``parse_feed`` is a plain function over BYTES (never a URL or a path: feedparser
would otherwise happily fetch or open them). ``FeedPoller.check`` adds the I/O:
the safe fetcher, validators and body hash, new-entry detection; it returns the
change to the feed's state as ``PollResult.record`` without writing it, so that a
pass writes its polls in batches (``store.record_polls``); ``FeedPoller.poll`` is
check + record, for one feed. Neither raises for a fetch failure: that becomes an
``Outcome(ok=False)``. Neither marks entries seen: the caller calls
``store.mark_seen(result.new_entries)`` after publishing them. ``poll`` does not
record the outcome either (the caller does, with its batch).

:func:`order_for_reuse` orders a pass's feeds so that each host's feeds are polled
close together in time, whatever order they are listed in, and its kept-alive
connections are reused (:data:`pipeline.fetch.http.MAX_POOLS`).
"""

from __future__ import annotations

import calendar
import concurrent.futures as cf
import hashlib
import io
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from .config import FeedConfig
from .errors import FetchError, HTTPStatusError
from .fetch import SafeFetcher
from .models import FeedEntry, Outcome
from .state import MIN_INTERVAL_S, FeedState, PollRecord, StateStore, entry_keys, feed_pace

__all__ = ["parse_feed", "ParsedFeed", "FeedPoller", "PollResult", "FEED_ACCEPT", "parse_odd_date",
           "order_for_reuse", "HOSTS_AT_ONCE", "PollQueue", "PollCrashed"]

log = logging.getLogger(__name__)

FEED_ACCEPT = ("application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
               "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1")
STAGE = "feeds"

_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}
# e.g. "Thu,28 Jul 2022 4:35:5 GMT+9" (The Korea Times): no space after the comma,
# unpadded hour/minute/second, and an hour offset glued to "GMT".
_ODD_DATE = re.compile(
    r"(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})[a-z]*\s+(\d{4})\s+(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?"
    r"\s*(?:(?:GMT|UTC|UT|Z)?\s*([+-])(\d{1,2})(?::?(\d{2}))?|GMT|UTC|UT|Z)?\s*$"
)


def parse_odd_date(value: str) -> datetime | None:
    """A lenient RFC-822-like date parser for what feedparser rejects; None if not understood."""
    m = _ODD_DATE.match(value.strip())
    if not m:
        return None
    day, mon, year, hh, mi, ss, sign, oh, om = m.groups()
    month = _MONTHS.get(mon.lower())
    if month is None:
        return None
    offset = timedelta(hours=int(oh or 0), minutes=int(om or 0))
    if sign == "-":
        offset = -offset
    try:
        local = datetime(int(year), month, int(day), int(hh), int(mi), int(ss or 0), tzinfo=timezone(offset))
    except ValueError:
        return None
    return local.astimezone(UTC)


@dataclass
class ParsedFeed:
    """What a feed body yielded. ``skipped`` counts entries without a usable http(s) link."""

    entries: list[FeedEntry]
    title: str = ""
    bozo: bool = False
    bozo_reason: str | None = None
    skipped: int = 0


def _iso_utc(dt: datetime) -> str:
    return dt.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _published(entry: Any) -> str | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        st = entry.get(key)
        if st:
            try:
                return _iso_utc(datetime.fromtimestamp(calendar.timegm(st), UTC))
            except (TypeError, ValueError, OverflowError, OSError):
                continue
    for key in ("published", "updated", "created"):
        raw = entry.get(key)
        if isinstance(raw, str) and raw:
            dt = parse_odd_date(raw)
            if dt is not None:
                return _iso_utc(dt)
    return None


def _link(entry: Any, base: str) -> str | None:
    candidates: list[str] = []
    if entry.get("link"):
        candidates.append(entry["link"])
    for link in entry.get("links") or []:
        if link.get("href") and link.get("rel", "alternate") == "alternate":
            candidates.append(link["href"])
    guid = entry.get("id")
    if isinstance(guid, str) and guid.lower().startswith(("http://", "https://")):
        candidates.append(guid)
    for raw in candidates:
        url = urljoin(base, raw.strip())
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.hostname:
            return url
    return None


def _one_line(exc: object) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:300]


def parse_feed(
    body: bytes,
    *,
    feed_url: str,
    headers: dict[str, str] | None = None,
    feed_name: str = "",
    base_url: str | None = None,
) -> ParsedFeed:
    """Parse RSS/Atom/RDF ``body`` (bytes) with feedparser; never raises for bad input.

    ``headers`` are the HTTP response headers (for the charset). Entry URLs are made
    absolute against ``base_url`` (default ``feed_url``; pass the final URL after
    redirects); entries without an http(s) link are skipped and counted. ``published``
    is ISO 8601 UTC or None. A malformed feed gives ``bozo=True`` with a one-line
    ``bozo_reason`` and whatever entries could be recovered.
    """
    base = base_url or feed_url
    response_headers: dict[str, str] | None = None
    if headers:  # feedparser flags a missing Content-Type only when it is given headers
        response_headers = {k.lower(): v for k, v in headers.items()}
        response_headers.setdefault("content-location", base)
    parsed = feedparser.parse(io.BytesIO(body), response_headers=response_headers)
    entries: list[FeedEntry] = []
    skipped = 0
    for raw in parsed.entries:
        url = _link(raw, base)
        if url is None:
            skipped += 1
            continue
        entries.append(FeedEntry(
            feed_url=feed_url,
            url=url,
            guid=str(raw.get("id") or ""),
            title=" ".join(str(raw.get("title") or "").split()),
            published=_published(raw),
            summary=str(raw.get("summary") or ""),
            feed_name=feed_name,
        ))
    bozo = bool(parsed.get("bozo"))
    reason = _one_line(parsed.get("bozo_exception")) if bozo else None
    title = str(parsed.feed.get("title") or "") if parsed.get("feed") is not None else ""
    if skipped:
        log.info("feed %s: %d entries without an http(s) link skipped", feed_url, skipped)
    return ParsedFeed(entries=entries, title=title, bozo=bozo, bozo_reason=reason, skipped=skipped)


@dataclass
class PollResult:
    """The result of one poll. ``entries`` are all parsed entries (empty when not
    modified); ``new_entries`` those never marked seen (all of them when forced);
    ``record`` the change to the feed's state (written by ``poll``, or by the caller
    of ``check`` with ``store.record_polls``)."""

    feed_url: str
    outcome: Outcome
    entries: list[FeedEntry] = field(default_factory=list)
    new_entries: list[FeedEntry] = field(default_factory=list)
    not_modified: bool = False
    final_url: str = ""
    elapsed: float = 0.0
    record: PollRecord | None = None


#: hosts whose feeds are polled interleaved at one time (see :func:`order_for_reuse`); half the fetcher's
#: pools, so that article hosts fit beside them
HOSTS_AT_ONCE = 128


def order_for_reuse(feeds: Sequence[FeedConfig], hosts_at_once: int = HOSTS_AT_ONCE) -> list[FeedConfig]:
    """``feeds`` in the order to poll them: hosts in windows of ``hosts_at_once`` (in the order they first
    appear), each window's feeds interleaved host by host, every feed of a window before the next window.

    Interleaving spreads the requests to one host over the pass (politeness delays overlap, a host
    never holds every thread); windows keep the hosts of a moment few enough for their kept-alive
    connections to stay pooled until their last feed, however the list is ordered."""
    by_host: dict[str, list[FeedConfig]] = {}
    for feed in feeds:
        by_host.setdefault((urlsplit(feed.url).hostname or "").lower(), []).append(feed)
    groups = list(by_host.values())
    ordered: list[FeedConfig] = []
    for w in range(0, len(groups), max(1, hosts_at_once)):
        window = groups[w:w + hosts_at_once]
        for i in range(max(len(g) for g in window)):
            ordered.extend(g[i] for g in window if i < len(g))
    return ordered


@dataclass
class PollCrashed:
    """A poll that raised (a bug, or the state store failing), delivered in place of its result."""

    error: BaseException


class PollQueue:
    """The feeds of a pass, taken one at a time by ``threads`` poll loops on ``executor``, each result handed
    to ``deliver``: no future, lock or callback per feed (10,000 ``submit`` calls cost a pass seconds)."""

    def __init__(self, feeds: Sequence[FeedConfig], poll: Callable[[FeedConfig], Any], executor: cf.Executor,
                 threads: int) -> None:
        self.pending: deque[FeedConfig] = deque(feeds)
        self.total = len(self.pending)
        self.poll = poll
        self.executor = executor
        self.threads = max(1, min(threads, self.total))
        self.closed = False

    def start(self, deliver: Callable[[Any], None]) -> None:
        for _ in range(self.threads if self.total else 0):
            self.executor.submit(self._loop, deliver)

    def _loop(self, deliver: Callable[[Any], None]) -> None:
        while not self.closed:
            try:
                feed = self.pending.popleft()
            except IndexError:
                return
            try:
                result = self.poll(feed)
            except BaseException as exc:  # noqa: BLE001 - delivered, and raised by whoever takes the results
                result = PollCrashed(exc)
            deliver(result)

    def close(self) -> int:
        """Take no more feeds; returns how many were left unpolled."""
        self.closed = True
        left = 0
        while True:
            try:
                self.pending.popleft()
            except IndexError:
                return left
            left += 1


class FeedPoller:
    """Polls feeds through one :class:`SafeFetcher`; ``poll`` records their state in a StateStore.

    Thread-safe when its fetcher and store are (they are). ``default_interval_s`` is the
    base poll interval for feeds without an interval of their own; ``min_interval_s`` the
    floor of every interval (``feeds.min_interval_seconds``).
    """

    def __init__(self, fetcher: SafeFetcher, store: StateStore, *, default_interval_s: float = 300.0,
                 min_interval_s: float = MIN_INTERVAL_S) -> None:
        self.fetcher = fetcher
        self.store = store
        self.default_interval_s = default_interval_s
        self.min_interval_s = min_interval_s

    def poll(self, feed: FeedConfig, *, force: bool = False) -> PollResult:
        """Poll ``feed`` once and record its new state (not its outcome); never raises a FetchError.

        Conditional GET with the stored validators unless ``force``; a 200 whose body
        has the stored sha256 counts as not modified. Does not mark entries seen."""
        result = self.check(feed, None if force else self.store.get_feed(feed.url), force=force)
        assert result.record is not None
        self.store.record_polls([result.record])
        return result

    def check(self, feed: FeedConfig, state: FeedState | None, *, force: bool = False) -> PollResult:
        """Poll ``feed`` with its stored ``state`` (None: never polled, or forced); writes nothing.

        Like :meth:`poll`, but the change to the feed's state is returned as ``result.record``
        for the caller to write (``store.record_polls``), e.g. in a batch with other polls'."""
        started = time.monotonic()
        pace = feed_pace(feed, self.default_interval_s, self.min_interval_s)
        try:
            resp = self.fetcher.fetch(feed.url, etag=state.etag if state else None,
                                      last_modified=state.last_modified if state else None, accept=FEED_ACCEPT)
        except FetchError as exc:
            retry_after = exc.retry_after if isinstance(exc, HTTPStatusError) else None
            record = PollRecord(feed.url, pace, ok=False, error=_one_line(exc), retry_after=retry_after)
            failures = (state.consecutive_failures if state else 0) + 1
            log.warning("feed %s: %s (%s); failure %d, next poll in %.0fs", feed.url, exc.reason, exc, failures,
                        pace.interval(failures=failures, retry_after=retry_after))
            outcome = Outcome(STAGE, feed.url, exc.reason, str(exc), ok=False)
            return PollResult(feed.url, outcome, elapsed=time.monotonic() - started, record=record)

        body_hash = hashlib.sha256(resp.body).hexdigest() if not resp.not_modified else None
        if resp.not_modified or (state is not None and body_hash == state.body_hash):
            why = "HTTP 304" if resp.not_modified else "body unchanged (same sha256)"
            record = PollRecord(feed.url, pace, ok=True, etag=resp.etag, last_modified=resp.last_modified,
                                body_hash=body_hash)
            log.debug("feed %s: not modified (%s)", feed.url, why)
            return PollResult(feed.url, Outcome(STAGE, feed.url, "not_modified", why), not_modified=True,
                              final_url=resp.final_url, elapsed=time.monotonic() - started, record=record)

        parsed = parse_feed(resp.body, feed_url=feed.url, headers=resp.headers, feed_name=feed.name,
                            base_url=resp.final_url)
        summary = f"{len(parsed.entries)} entries, {{new}} new, {parsed.skipped} without link"
        if parsed.bozo and not parsed.entries:  # an HTML page, an error page, garbage: a failure
            reason = f"{parsed.bozo_reason}; {summary.format(new=0)}"
            record = PollRecord(feed.url, pace, ok=False, error=reason)
            log.warning("feed %s: malformed, no entries (%s); failure %d", feed.url, parsed.bozo_reason,
                        (state.consecutive_failures if state else 0) + 1)
            return PollResult(feed.url, Outcome(STAGE, feed.url, "malformed_feed", reason, ok=False),
                              final_url=resp.final_url, elapsed=time.monotonic() - started, record=record)
        new = parsed.entries if force else self._unseen(feed.url, parsed.entries)
        summary = summary.format(new=len(new))
        record = PollRecord(feed.url, pace, ok=True, etag=resp.etag or "", last_modified=resp.last_modified or "",
                            body_hash=body_hash, new_items=len(new),
                            pending_keys=tuple(entry_keys(e)[0] for e in new))
        if parsed.bozo:
            outcome = Outcome(STAGE, feed.url, "malformed_feed", f"{parsed.bozo_reason}; {summary}", ok=True)
        else:
            outcome = Outcome(STAGE, feed.url, "polled", summary)
        log.info("feed %s: %s%s", feed.url, summary, f" (malformed: {parsed.bozo_reason})" if parsed.bozo else "")
        return PollResult(feed.url, outcome, entries=parsed.entries, new_entries=new, final_url=resp.final_url,
                          elapsed=time.monotonic() - started, record=record)

    def _unseen(self, feed_url: str, entries: list[FeedEntry]) -> list[FeedEntry]:
        """Entries whose URL key and GUID key are both unseen (first of duplicates kept)."""
        keys_of = [entry_keys(e) for e in entries]
        seen = self.store.seen_keys(feed_url, [k for keys in keys_of for k in keys])
        new: list[FeedEntry] = []
        for entry, keys in zip(entries, keys_of, strict=True):
            if seen.isdisjoint(keys):
                new.append(entry)
            seen.update(keys)
        return new
