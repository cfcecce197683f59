"""What a pass did not do: feeds not read, articles not fetched, alert messages not delivered.

:func:`pass_report` turns an ingest summary (``IngestSummary.to_dict()``, or the sum of several
from the Airflow batches) and the outbox state after the pass into a :class:`PassReport`: three
stage tallies, the exit code they mean (:mod:`pipeline.exitcodes`), and the lines that end a
pass's output. A dead link (HTTP 404/410 on an article page) is reported but is not a failure:
it is a fact about the source that no retry changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .exitcodes import StageTally, describe, exit_code

if TYPE_CHECKING:
    from .alerts.store import ChannelDelivery
    from .config import Settings

__all__ = ["PassReport", "pass_report", "delivery_state", "GONE"]

GONE = frozenset({"http_404", "http_410"})  # article pages that are gone for good: dead links
_NOTHING = {"feeds": "no feed could be read", "articles": "no article could be fetched",
            "delivery": "no alert message was delivered"}


def _reasons(not_ok: Mapping[str, int], stage: str) -> dict[str, int]:
    prefix = f"{stage}:"
    return {k[len(prefix):]: int(v) for k, v in not_ok.items() if k.startswith(prefix)}


def _counts(reasons: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))


def _hhmm(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%SZ")


@dataclass
class PassReport:
    feeds: StageTally
    articles: StageTally
    delivery: StageTally | None  # None when this pass did not deliver (on Kafka the alert worker does)
    dead_links: dict[str, int] = field(default_factory=dict)
    channels: list[ChannelDelivery] = field(default_factory=list)  # channels with messages owed or failed

    @property
    def exit_code(self) -> int:
        return exit_code([t for t in (self.feeds, self.articles, self.delivery) if t is not None])

    def lines(self) -> list[str]:
        """The end of a pass's output: what was not read, fetched or delivered, and the result."""
        out: list[str] = []
        if self.feeds.failed:
            out.append(f"not read          {self.feeds.failed} of {self.feeds.attempted} feeds "
                       f"({_counts(self.feeds.reasons)}); `newswatch feeds` shows each")
        if self.articles.failed:
            out.append(f"not fetched       {self.articles.failed} of {self.articles.attempted} articles "
                       f"({_counts(self.articles.reasons)})")
        if self.dead_links:
            out.append(f"dead links        {sum(self.dead_links.values())} ({_counts(self.dead_links)}): "
                       "recorded, not retried")
        for ch in self.channels:
            parts = []
            if ch.owed:
                parts.append(f"{ch.owed} owed" + (f", next try {_hhmm(ch.next_attempt_at)}"
                                                  if ch.next_attempt_at else ""))
            if ch.failed:
                parts.append(f"{ch.failed} given up")
            why = f" ({ch.last_error})" if ch.last_error else ""
            out.append(f"not delivered     {ch.channel}: {'; '.join(parts)}{why}")
        code = self.exit_code
        dead = [_NOTHING[t.stage] for t in (self.feeds, self.articles, self.delivery)
                if t is not None and t.failed and not t.succeeded]
        out.append(f"result            {describe(code)}{': ' + ', '.join(dead) if dead else ''} (exit {code})")
        return out

    def to_dict(self) -> dict[str, Any]:
        def tally(t: StageTally | None) -> dict[str, Any] | None:
            return None if t is None else {"succeeded": t.succeeded, "failed": t.failed, "reasons": t.reasons}

        return {
            "exit_code": self.exit_code, "result": describe(self.exit_code),
            "feeds": tally(self.feeds), "articles": tally(self.articles), "delivery": tally(self.delivery),
            "dead_links": self.dead_links,
            "undelivered": [{"channel": c.channel, "owed": c.owed, "failed": c.failed, "last_error": c.last_error,
                             "next_attempt_at": datetime.fromtimestamp(c.next_attempt_at, UTC).isoformat()
                             if c.next_attempt_at else None} for c in self.channels],
        }


def pass_report(ingest: Mapping[str, Any], delivery: Sequence[ChannelDelivery] | None) -> PassReport:
    """The report of a pass from its ingest summary dict and the outbox state after it.

    ``delivery``: each configured channel's :class:`~pipeline.alerts.store.ChannelDelivery` since
    the pass began (:func:`delivery_state`), or None when the pass did not deliver.
    """
    not_ok = ingest.get("not_ok") or {}
    feed_reasons = _reasons(not_ok, "feeds")
    feeds_failed = int(ingest.get("feeds_failed", 0))
    feeds = StageTally("feeds", int(ingest.get("feeds_polled", 0)) - feeds_failed, feeds_failed, feed_reasons)
    fetch_reasons = _reasons(not_ok, "fetch")
    dead = {k: v for k, v in fetch_reasons.items() if k in GONE}
    failed = {k: v for k, v in fetch_reasons.items() if k not in GONE}
    articles = StageTally("articles", int(ingest.get("fetched", 0)), sum(failed.values()), failed)
    tally = None
    channels: list[ChannelDelivery] = []
    if delivery is not None:
        channels = [c for c in delivery if c.owed or c.failed]
        tally = StageTally("delivery", sum(c.sent for c in delivery), sum(c.owed + c.failed for c in delivery),
                           {c.channel: c.owed + c.failed for c in channels})
    return PassReport(feeds=feeds, articles=articles, delivery=tally, dead_links=dead, channels=channels)


def delivery_state(settings: Settings, since: float) -> list[ChannelDelivery]:
    """Each configured alert channel's messages sent and given up since ``since``, and owed now."""
    from .alerts.notifiers import configured_channels
    from .alerts.store import AlertStore

    store = AlertStore(settings.alerts_db)
    try:
        return store.delivery_since(since, configured_channels(settings))
    finally:
        store.close()
