"""The alert stage: raise alerts for enriched articles, deliver them, list them, send digests.

Call order per batch (what the pipeline's alert stage does)::

    new = service.raise_alerts(batch)      # durable: alerts + outbox rows committed
    service.deliver_pending()              # sends what is due, each channel on its own
    # publish `new` to news.alerts

``raise_alerts`` commits before anything is sent (outbox pattern), so a crash after it
loses nothing: the next ``deliver_pending`` of any process sends the rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from .. import ids
from ..config import Settings, Watchlist
from ..errors import ConfigError, PipelineError
from ..models import AlertRecord, EnrichedArticle, TopicHit
from . import stories
from .digest import collect_digests
from .notifiers import Notifier, build_notifiers
from .ops import OPS_KIND, render_ops
from .outbox import Backoff, DeliveryReport, deliver
from .render import Rendered, make_snippet, render_alert, render_digest
from .rules import Route, validate_watchlist
from .store import AlertStore, OutboxRow

__all__ = ["AlertService", "STORY_WINDOW_DAYS"]

log = logging.getLogger(__name__)

STORY_WINDOW_DAYS = 14  # a syndicated copy is matched against stories first seen this recently


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


class AlertService:
    """Alerts for the watched topics, one per (topic, story), delivered through an outbox."""

    def __init__(
        self,
        settings: Settings,
        watchlist: Watchlist,
        *,
        notifiers: list[Notifier] | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.settings = settings
        self.watchlist = watchlist
        self.routes: dict[str, Route] = validate_watchlist(watchlist)
        self._clock = clock or _utcnow
        self._sleep = sleep or time.sleep
        chosen = build_notifiers(settings) if notifiers is None else list(notifiers)
        self.notifiers: dict[str, Notifier] = {}
        for n in chosen:
            if n.channel in self.notifiers:
                raise ConfigError(f"alerts: two notifiers for channel {n.channel!r}")
            self.notifiers[n.channel] = n
        a = settings.alerts
        self.backoff = Backoff(a.base_backoff_seconds, a.max_backoff_seconds, a.max_attempts)
        self.store = AlertStore(settings.alerts_db)
        self._stories = stories.StoryIndex()  # recent story sketches, refreshed from the store as it grows
        self._story_rowid = 0
        self._paused: dict[str, float] = {}  # channel -> no attempts before (after a transient failure)

    def _now(self) -> float:
        return self._clock().timestamp()

    def topic_name(self, topic_id: str) -> str:
        try:
            t = self.watchlist.topic(topic_id)
        except KeyError:
            return topic_id
        return t.name or t.id

    # -- raising -------------------------------------------------------------------------------

    def _story_of(self, ea: EnrichedArticle, now: float) -> tuple[str, bool]:
        """(story id, is_first_copy) of the article; records the document in its story."""
        art = ea.article
        known = self.store.story_of_doc(art.id)
        if known is not None:
            return known, known == art.id
        basis = art.text if len(stories.tokens(art.text)) >= 2 * stories.SHINGLE_WORDS else f"{art.title}\n{art.text}"
        sk = stories.sketch(basis)
        since = now - STORY_WINDOW_DAYS * 86400
        for rowid, story_id, created_at, other in self.store.new_sketches(self._story_rowid, since):
            self._stories.add(story_id, other, created_at)  # stories stored by any process since our last look
            self._story_rowid = rowid
        best_id, best = self._stories.best_match(sk, since)
        source = self._source(ea)
        if best >= stories.SAME_STORY_THRESHOLD:
            self.store.add_story_doc(art.id, best_id, art.url, source, best)
            log.info("doc %s url=%s is a copy of story %s (similarity %.2f)", art.id, art.url, best_id, best)
            return best_id, False
        self.store.add_story(art.id, art.id, art.url, source, sk, now)
        self.store.add_story_doc(art.id, art.id, art.url, source, 1.0)
        return art.id, True

    @staticmethod
    def _source(ea: EnrichedArticle) -> str:
        return ea.article.source or urlsplit(ea.article.url).hostname or ea.article.feed_name or "unknown"

    def _record(self, ea: EnrichedArticle, hit: TopicHit, story_id: str, now: float) -> AlertRecord:
        art = ea.article
        reason = hit.reasons[0] if hit.reasons else None
        return AlertRecord(
            id=ids.alert_id(hit.id, story_id), topic=hit.id, story_id=story_id, doc_id=art.id, url=art.url,
            title=art.title, source=self._source(ea), published=art.published, created_at=_iso(now),
            reasons=list(hit.reasons), snippet=make_snippet(art, reason),
        )

    def _add_other_source(self, alert_id: str, ea: EnrichedArticle) -> None:
        rec = self.store.get_alert(alert_id)
        if rec is None or rec.doc_id == ea.article.id:
            return
        entry = f"{self._source(ea)} ({ea.article.url})"
        if any(ea.article.url in s for s in rec.other_sources):
            return
        rec.other_sources.append(entry)
        self.store.update_alert(rec)
        log.info("alert %s topic=%s: doc %s url=%s added as another source", alert_id, rec.topic,
                 ea.article.id, ea.article.url)

    def _file(self, rec: AlertRecord, route: Route, now: float) -> str:
        """Create the alert, its outbox rows and digest items; returns how it is delivered."""
        channels = set(self.notifiers)
        immediate = route.immediate_channels(channels)
        throttled = bool(immediate) and self.store.count_immediate_since(rec.topic, now - 3600) >= route.max_per_hour
        delivery = "throttled" if throttled else ("immediate" if immediate else "digest")
        if not self.store.insert_alert(rec, delivery, now):
            return ""
        if not throttled:
            for channel, recipients in immediate.items():
                self.store.enqueue(rec.id, channel, "alert", recipients, now)
        for key, period in route.digest_keys(channels, throttled=throttled).items():
            self.store.add_digest_item(key, rec.id, period, now)
        return delivery

    def raise_alerts(self, articles: Sequence[EnrichedArticle], *, alert_on_replay: bool = False) -> list[AlertRecord]:
        """New alerts only: one per (topic, story) for each watched topic in ``article.tags.topics``.

        Creates-if-absent ``ids.alert_id(topic, story_id)``; a syndicated copy of a known story
        adds its source to the first alert's ``other_sources`` instead. Enqueues one outbox row
        per (alert, channel), committed per article. Articles with ``replay=True`` raise nothing
        unless ``alert_on_replay``. Idempotent: the same articles again return ``[]``.
        """
        new: list[AlertRecord] = []
        replays = copies = 0
        for ea in articles:
            if ea.article.replay and not alert_on_replay:
                replays += 1
                continue
            hits = [h for h in ea.tags.topics if h.id in self.routes]
            for h in ea.tags.topics:
                if h.id not in self.routes:
                    log.warning("doc %s url=%s: topic %s is not in the watchlist; no alert", ea.id, ea.article.url, h.id)
            if not hits:
                continue
            now = self._now()
            with self.store.transaction():
                story_id, _ = self._story_of(ea, now)
                for hit in hits:
                    aid = ids.alert_id(hit.id, story_id)
                    if self.store.get_alert(aid) is not None:
                        self._add_other_source(aid, ea)
                        copies += 1
                        continue
                    rec = self._record(ea, hit, story_id, now)
                    delivery = self._file(rec, self.routes[hit.id], now)
                    if delivery:
                        new.append(rec)
                        log.info("alert %s raised: topic=%s story=%s doc=%s url=%s delivery=%s", rec.id, rec.topic,
                                 story_id, ea.id, ea.article.url, delivery)
        log.info("raise_alerts: articles=%d new_alerts=%d known_story=%d replays_silenced=%d",
                 len(articles), len(new), copies, replays)
        return new

    def alerts_for(self, articles: Sequence[EnrichedArticle]) -> list[AlertRecord]:
        """Every stored alert (new or earlier) for the stories of ``articles``, without duplicates.

        The alert stage publishes these to ``news.alerts`` after :meth:`raise_alerts`, so a batch
        redelivered after a failed publish still gets its alerts onto the bus (at-least-once;
        the alert index is create-if-absent).
        """
        out: dict[str, AlertRecord] = {}
        for ea in articles:
            story_id = self.store.story_of_doc(ea.id)
            if story_id is None:
                continue
            for hit in ea.tags.topics:
                aid = ids.alert_id(hit.id, story_id)
                if aid not in out:
                    rec = self.store.get_alert(aid)
                    if rec is not None:
                        out[aid] = rec
        return list(out.values())

    # -- delivering ----------------------------------------------------------------------------

    def render_row(self, row: OutboxRow) -> Rendered:
        """The message of an outbox row (an alert, an ops event, or a digest rendered from current alert state)."""
        if row.kind == "alert":
            rec = self.store.get_alert(row.msg_id)
            if rec is None:
                raise PipelineError(f"alert {row.msg_id} not found")
            return render_alert(rec, self.topic_name(rec.topic))
        if row.kind == OPS_KIND:
            event = self.store.get_ops_event(row.msg_id)
            if event is None:
                raise PipelineError(f"ops event {row.msg_id} not found")
            return render_ops(event)
        digest = self.store.get_digest(row.msg_id)
        if digest is None:
            raise PipelineError(f"digest {row.msg_id} not found")
        stories_: list[tuple[AlertRecord, str]] = []
        for aid in digest["alert_ids"]:
            rec = self.store.get_alert(aid)
            if rec is not None:
                stories_.append((rec, self.topic_name(rec.topic)))
        return render_digest(row.msg_id, digest["period"], _iso(digest["created_at"]), stories_)

    def deliver_pending(self, *, max_seconds: float | None = None) -> DeliveryReport:
        """Send the outbox rows that are due, each channel on its own.

        ``max_seconds=None``: one pass, no waiting; otherwise keep delivering (sleeping until
        the next retry is due) until nothing is pending or ``max_seconds`` have passed.
        """
        return deliver(self.store, self.notifiers, self.render_row, self.backoff, now=self._now,
                       sleep=self._sleep, max_seconds=max_seconds, paused=self._paused)

    def next_delivery_at(self) -> float | None:
        """When the next outbox row of a configured channel may be tried (epoch seconds), None if none is owed.

        A channel paused after a transient failure is not tried before its pause ends."""
        times = [max(self._paused.get(c, 0.0), due) for c in self.notifiers
                 if (due := self.store.next_due([c])) is not None]
        return min(times) if times else None

    def deliver_due(self) -> DeliveryReport | None:
        """One delivery pass if some row is due now, else nothing (a read-only check): what idle loops call."""
        due = self.next_delivery_at()
        if due is None or due > self._now():
            return None
        return self.deliver_pending()

    def send_digests(self, period: str = "daily", *, now: datetime | None = None) -> DeliveryReport:
        """Create this period's digests (one per recipient, stories grouped by topic) and deliver what is due."""
        if period not in ("hourly", "daily"):
            raise ConfigError(f"digest period must be hourly or daily, got {period!r}")
        collect_digests(self.store, period, now or self._clock(), set(self.notifiers))
        return self.deliver_pending()

    def pending(self) -> int:
        """Outbox rows not yet sent or failed."""
        counts = self.store.outbox_counts()
        return counts.get("pending", 0) + counts.get("sending", 0)

    # -- listing -------------------------------------------------------------------------------

    def channels_of(self, msg_id: str) -> dict[str, dict[str, Any]]:
        """Channel -> the delivery of one outbox message (an alert, digest or ops event): status, attempts,
        last error, recipients, refused recipients, when sent, next try while owed."""
        return {
            r.channel: {"status": r.status, "attempts": r.attempts, "last_error": r.last_error,
                        "recipients": r.recipients, "refused": r.refused,
                        "sent_at": _iso(r.sent_at) if r.sent_at else None,
                        "next_attempt_at": _iso(r.next_attempt_at) if r.status in ("pending", "sending") else None}
            for r in self.store.outbox_rows(msg_id)
        }

    def list_alerts(self) -> list[dict[str, Any]]:
        """Every alert with each channel's status, attempts, last error (and its digests)."""
        out = []
        for rec, delivery, _created in self.store.all_alerts():
            channels = self.channels_of(rec.id)
            digests = []
            for item in self.store.digest_items_of(rec.id):
                entry: dict[str, Any] = {"recipient": item["recipient"], "period": item["period"],
                                         "digest_id": item["digest_id"], "status": "waiting"}
                if item["digest_id"]:
                    rows = self.store.outbox_rows(item["digest_id"])
                    if rows:
                        entry.update(status=rows[0].status, attempts=rows[0].attempts, last_error=rows[0].last_error)
                digests.append(entry)
            out.append({
                "id": rec.id, "topic": rec.topic, "story_id": rec.story_id, "doc_id": rec.doc_id, "title": rec.title,
                "url": rec.url, "source": rec.source, "published": rec.published, "created_at": rec.created_at,
                "delivery": delivery, "other_sources": rec.other_sources,
                "why": [f"{r.entity_name} ({r.relation}) via {r.variant!r}" for r in rec.reasons],
                "channels": channels, "digests": digests,
            })
        return out

    def close(self) -> None:
        for n in self.notifiers.values():
            n.close()
        self.store.close()

    def __enter__(self) -> AlertService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
