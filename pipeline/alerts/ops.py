"""Ops alerts about the pipeline's own feeds: one when a feed goes down, one when it recovers.

A feed is *down* for ops when :mod:`pipeline.feedhealth` raises its ``alarm``: failing for
``ops.feed_failing_minutes``, or silent far beyond its usual rhythm. :func:`check_feeds` then
raises ONE ``feed_down`` event, and ONE ``feed_recovered`` event once the feed is healthy again
(status ``ok``); nothing in between, however long the episode lasts or whatever else changes.

Both go through the alert outbox (kind ``ops``) and the same notifiers as watch alerts: email to
``ops.email`` (``NEWSWATCH_OPS_EMAIL``) when SMTP is configured, the Slack webhook unless
``ops.slack`` is false, or ``alerts.jsonl`` when neither is configured. Secrets stay in the
environment. Delivery is retried on the outbox's backoff like any alert.

Idempotent and crash-safe: an event's id is a hash of (feed, kind, episode start), and the event,
its outbox rows and the feed's new alarm state (``ops_feed_state``, in ``alerts.sqlite3``) are
committed in one transaction. A rerun finds the state already moved and raises nothing; a crash
before the commit leaves nothing, and the next check raises the same event id.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .. import ids
from ..config import Config, Settings
from ..feedhealth import FeedHealth, health_of
from .render import Rendered, format_time, header_safe, one_line, slack_escape

if TYPE_CHECKING:
    from .service import AlertService
    from .store import AlertStore

__all__ = ["check_feeds", "raise_feed_events", "ops_routes", "render_ops", "OPS_KIND"]

log = logging.getLogger(__name__)

OPS_KIND = "ops"  # the outbox row kind of ops events
DOWN, RECOVERED = "feed_down", "feed_recovered"


def ops_routes(settings: Settings, channels: set[str]) -> dict[str, list[str]]:
    """Channel -> recipients for ops events, among the configured ``channels``."""
    out: dict[str, list[str]] = {}
    if "email" in channels and settings.ops.email:
        out["email"] = list(settings.ops.email)
    if "slack" in channels and settings.ops.slack:
        out["slack"] = []
    if "file" in channels:
        out["file"] = []
    return out


def _event(store: AlertStore, h: FeedHealth, kind: str, episode: float, routes: dict[str, list[str]],
           now: float) -> dict[str, Any]:
    event_id = ids.stable_hash(OPS_KIND, kind, h.url, f"{episode:.3f}")
    record = {"feed_name": h.name, "status": h.status, "problem": h.problem, "health": h.to_dict()}
    if store.insert_ops_event(event_id, h.url, kind, episode, record, now):
        for channel, recipients in routes.items():
            store.enqueue(event_id, channel, OPS_KIND, recipients, now)
    store.set_ops_state(h.url, "down" if kind == DOWN else "ok", episode, event_id, now)
    return {"id": event_id, "kind": kind, "feed_url": h.url, **record}


def raise_feed_events(service: AlertService, health: Sequence[FeedHealth], *,
                      now: float | None = None) -> list[dict[str, Any]]:
    """Raise the ``feed_down`` / ``feed_recovered`` events that ``health`` calls for; returns them."""
    store = service.store
    ts = now if now is not None else datetime.now(UTC).timestamp()
    routes = ops_routes(service.settings, set(service.notifiers))
    states = store.ops_states()
    raised: list[dict[str, Any]] = []
    for h in health:
        before = states.get(h.url)
        was_down = before is not None and before["state"] == "down"
        if not ((h.alarm and not was_down) or (was_down and h.status == "ok")):
            continue  # the common case, decided without a write lock
        with store.transaction():
            state = store.ops_state(h.url)  # again, under the lock: another process may have moved it
            down = state is not None and state["state"] == "down"
            if h.alarm and not down:
                since = h.problem_since
                ev = _event(store, h, DOWN, since.timestamp() if since else ts, routes, ts)
            elif down and h.status == "ok":
                assert state is not None
                ev = _event(store, h, RECOVERED, float(state["episode"]), routes, ts)
            else:
                continue
        raised.append(ev)
        level = logging.WARNING if ev["kind"] == DOWN else logging.INFO
        log.log(level, "ops: %s %s: %s (event %s, to %s)", ev["kind"], h.url, h.problem or h.status, ev["id"],
                ", ".join(routes) or "nobody: no ops channel configured")
    return raised


def check_feeds(config: Config, *, now: datetime | None = None,
                service: AlertService | None = None) -> list[dict[str, Any]]:
    """Check every configured feed's health, raise the ops events due and deliver them; returns the new events.

    Cheap when nothing changes (reads only). Does nothing when ``ops.feed_alerts`` is false.
    """
    if not config.settings.ops.feed_alerts or not config.feeds:
        return []
    from .service import AlertService

    health = health_of(config, now=now)
    own = service is None
    service = service if service is not None else AlertService(config.settings, config.watchlist)
    try:
        raised = raise_feed_events(service, health, now=now.timestamp() if now else None)
        if raised:
            service.deliver_pending()
        return raised
    finally:
        if own:
            service.close()


# -- rendering -----------------------------------------------------------------------------------


def _lines(event: dict[str, Any]) -> tuple[str, list[str]]:
    h = event.get("health") or {}
    name = one_line(event.get("feed_name") or "") or event["feed_url"]
    if event["kind"] == DOWN:
        head = f"feed down: {name}"
        body = [f"Problem: {one_line(event.get('problem') or 'unknown')}",
                f"Last success: {format_time(h.get('last_success'))}",
                f"Next poll: {format_time(h.get('next_poll'))}",
                "You will get one more message when it recovers, none in between."]
    else:
        head = f"feed recovered: {name}"
        body = [f"Down since: {format_time(datetime.fromtimestamp(event['episode'], UTC).isoformat())}",
                f"Last success: {format_time(h.get('last_success'))}",
                f"Last new item: {format_time(h.get('last_new_item'))}"]
    return head, [f"Feed: {event['feed_url']}", *body]


def render_ops(event: dict[str, Any]) -> Rendered:
    """The messages of one ops event (an ``AlertStore.get_ops_event`` dict)."""
    head, body = _lines(event)
    created = datetime.fromtimestamp(event["created_at"], UTC).isoformat(timespec="seconds")
    subject = header_safe(f"[newswatch ops] {head}")
    text = "\n".join([f"newswatch ops: {head}", "", *body, "", f"event {event['id']}"]) + "\n"
    items = "".join(f"<li>{html.escape(line)}</li>" for line in body)
    page = (f"<html><body><p><strong>newswatch ops: {html.escape(head)}</strong></p><ul>{items}</ul>"
            f"<p><small>event {html.escape(event['id'])}</small></p></body></html>\n")
    slack = {
        "text": slack_escape(f"newswatch ops: {head}"),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*newswatch ops: {slack_escape(head)}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(slack_escape(b) for b in body)[:2900]}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"event {event['id']}"}]},
        ],
        "unfurl_links": False,
        "unfurl_media": False,
    }
    return Rendered(event["id"], subject, text, page, slack, created)
