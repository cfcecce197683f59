"""The alert store (SQLite, ``settings.alerts_db``): stories, alerts, the outbox and digests.

Tables:

* ``stories`` - the first copy of each story with its MinHash sketch; ``story_docs`` maps
  every document seen to its story (so a rerun of a document finds the same story).
* ``alerts`` - one row per (topic, story), keyed by ``ids.alert_id``; created if absent.
* ``outbox`` - one row per (message, channel): ``pending`` -> ``sending`` -> ``sent`` or
  ``failed``. ``sending`` is a lease: a row whose lease ran out (the sender crashed) is
  due again, so a crash between sending and marking repeats at most that one message.
* ``digest_items`` / ``digests`` - alerts waiting for a recipient's hourly/daily digest.
* ``ops_events`` / ``ops_feed_state`` - ops alerts about feeds (see :mod:`.ops`): each event once,
  keyed by (feed, kind, episode); each feed's alarm state, so a feed is reported down once and
  recovered once per episode, across restarts.

Every write that must be atomic runs inside :meth:`AlertStore.transaction` (``BEGIN
IMMEDIATE``), so several processes may share one store. ``sqlite3`` errors are
translated to :class:`~pipeline.errors.PipelineError` at this boundary.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import metrics
from ..errors import PipelineError
from ..models import AlertRecord

__all__ = ["AlertStore", "OutboxRow", "ChannelDelivery"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stories (
    story_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, url TEXT NOT NULL, source TEXT NOT NULL,
    sketch TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS stories_created ON stories(created_at);
CREATE TABLE IF NOT EXISTS story_docs (
    doc_id TEXT PRIMARY KEY, story_id TEXT NOT NULL, url TEXT NOT NULL, source TEXT NOT NULL,
    similarity REAL NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, topic TEXT NOT NULL, story_id TEXT NOT NULL, created_at REAL NOT NULL,
    delivery TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_topic_created ON alerts(topic, created_at);
CREATE TABLE IF NOT EXISTS outbox (
    msg_id TEXT NOT NULL, channel TEXT NOT NULL, kind TEXT NOT NULL, recipients TEXT NOT NULL,
    status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL,
    last_error TEXT, refused TEXT NOT NULL DEFAULT '{}', created_at REAL NOT NULL,
    updated_at REAL NOT NULL, sent_at REAL, PRIMARY KEY (msg_id, channel));
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(status, next_attempt_at);
CREATE TABLE IF NOT EXISTS digest_items (
    recipient TEXT NOT NULL, alert_id TEXT NOT NULL, period TEXT NOT NULL, added_at REAL NOT NULL,
    digest_id TEXT, PRIMARY KEY (recipient, alert_id));
CREATE TABLE IF NOT EXISTS digests (
    id TEXT PRIMARY KEY, recipient TEXT NOT NULL, period TEXT NOT NULL, bucket TEXT NOT NULL,
    created_at REAL NOT NULL, alert_ids TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ops_events (
    id TEXT PRIMARY KEY, feed_url TEXT NOT NULL, kind TEXT NOT NULL, episode REAL NOT NULL,
    created_at REAL NOT NULL, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ops_feed_state (
    feed_url TEXT PRIMARY KEY, state TEXT NOT NULL, episode REAL NOT NULL, event_id TEXT NOT NULL,
    updated_at REAL NOT NULL);
"""


@dataclass
class OutboxRow:
    msg_id: str
    channel: str
    kind: str  # "alert" or "digest"
    recipients: list[str]
    status: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    refused: dict[str, str]
    sent_at: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> OutboxRow:
        return cls(row["msg_id"], row["channel"], row["kind"], json.loads(row["recipients"]), row["status"],
                   row["attempts"], row["next_attempt_at"], row["last_error"], json.loads(row["refused"]),
                   row["sent_at"])


@dataclass
class ChannelDelivery:
    """One channel's delivery state: messages sent and given up since a time, messages still owed."""

    channel: str
    sent: int = 0
    owed: int = 0  # pending or being sent: will be retried
    failed: int = 0  # given up for good since the time asked about
    last_error: str | None = None  # the latest error of an owed or failed message
    next_attempt_at: float | None = None  # the earliest retry of an owed message


class AlertStore:
    """All alert state in one SQLite file. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise PipelineError(f"{self.path}: cannot open the alert store: {exc}") from None
        self._lock = threading.RLock()
        self._depth = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on error); nests as one transaction."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise PipelineError(f"{self.path}: cannot lock the alert store: {exc}") from None
            self._depth = 1
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                try:
                    self._db.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._db.execute("ROLLBACK")
                    raise PipelineError(f"{self.path}: commit failed: {exc}") from None
            finally:
                self._depth = 0

    def _x(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            try:
                return self._db.execute(sql, params)
            except sqlite3.Error as exc:
                raise PipelineError(f"{self.path}: {exc}") from None

    # -- stories -------------------------------------------------------------------------------

    def story_of_doc(self, doc_id: str) -> str | None:
        row = self._x("SELECT story_id FROM story_docs WHERE doc_id = ?", (doc_id,)).fetchone()
        return row["story_id"] if row else None

    def new_sketches(self, after_rowid: int, since: float) -> list[tuple[int, str, float, list[int]]]:
        """(rowid, story id, created_at, sketch) of stories stored after ``after_rowid`` and created since ``since``."""
        rows = self._x("SELECT rowid, story_id, created_at, sketch FROM stories WHERE rowid > ? AND created_at >= ? "
                       "ORDER BY rowid", (after_rowid, since)).fetchall()
        return [(r["rowid"], r["story_id"], r["created_at"], json.loads(r["sketch"])) for r in rows]

    def add_story(self, story_id: str, doc_id: str, url: str, source: str, sketch: list[int], now: float) -> None:
        self._x("INSERT OR IGNORE INTO stories VALUES (?, ?, ?, ?, ?, ?)",
                (story_id, doc_id, url, source, json.dumps(sketch), now))

    def add_story_doc(self, doc_id: str, story_id: str, url: str, source: str, similarity: float) -> None:
        self._x("INSERT OR IGNORE INTO story_docs VALUES (?, ?, ?, ?, ?)", (doc_id, story_id, url, source, similarity))

    def story_docs(self, story_id: str) -> list[dict[str, Any]]:
        rows = self._x("SELECT * FROM story_docs WHERE story_id = ?", (story_id,)).fetchall()
        return [dict(r) for r in rows]

    # -- alerts --------------------------------------------------------------------------------

    def insert_alert(self, rec: AlertRecord, delivery: str, now: float) -> bool:
        """Create the alert if absent; True if it was created now."""
        cur = self._x("INSERT OR IGNORE INTO alerts VALUES (?, ?, ?, ?, ?, ?)",
                      (rec.id, rec.topic, rec.story_id, now, delivery, json.dumps(rec.to_dict())))
        return cur.rowcount == 1

    def get_alert(self, alert_id: str) -> AlertRecord | None:
        row = self._x("SELECT record FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return AlertRecord.from_dict(json.loads(row["record"])) if row else None

    def alerts_of_story(self, story_id: str) -> list[AlertRecord]:
        rows = self._x("SELECT record FROM alerts WHERE story_id = ?", (story_id,)).fetchall()
        return [AlertRecord.from_dict(json.loads(r["record"])) for r in rows]

    def update_alert(self, rec: AlertRecord) -> None:
        self._x("UPDATE alerts SET record = ? WHERE id = ?", (json.dumps(rec.to_dict()), rec.id))

    def count_immediate_since(self, topic: str, since: float) -> int:
        row = self._x("SELECT count(*) AS n FROM alerts WHERE topic = ? AND delivery = 'immediate' AND created_at > ?",
                      (topic, since)).fetchone()
        return int(row["n"])

    def all_alerts(self) -> list[tuple[AlertRecord, str, float]]:
        rows = self._x("SELECT record, delivery, created_at FROM alerts ORDER BY created_at, rowid").fetchall()
        return [(AlertRecord.from_dict(json.loads(r["record"])), r["delivery"], r["created_at"]) for r in rows]

    # -- outbox --------------------------------------------------------------------------------

    def enqueue(self, msg_id: str, channel: str, kind: str, recipients: Sequence[str], now: float) -> bool:
        cur = self._x("INSERT OR IGNORE INTO outbox (msg_id, channel, kind, recipients, status, attempts, "
                      "next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
                      (msg_id, channel, kind, json.dumps(list(recipients)), now, now, now))
        return cur.rowcount == 1

    def claim_next(self, channels: Sequence[str], now: float, lease: float) -> OutboxRow | None:
        """Take the oldest due row of ``channels``: status ``sending``, attempts + 1, lease until now+lease."""
        if not channels:
            return None
        marks = ",".join("?" * len(channels))
        with self.transaction():
            row = self._x(f"SELECT * FROM outbox WHERE status IN ('pending', 'sending') AND next_attempt_at <= ? "
                          f"AND channel IN ({marks}) ORDER BY next_attempt_at, created_at LIMIT 1",
                          (now, *channels)).fetchone()
            if row is None:
                return None
            self._x("UPDATE outbox SET status = 'sending', attempts = attempts + 1, next_attempt_at = ?, "
                    "updated_at = ? WHERE msg_id = ? AND channel = ?", (now + lease, now, row["msg_id"], row["channel"]))
        claimed = OutboxRow.from_row(row)
        claimed.attempts += 1
        return claimed

    def mark_sent(self, row: OutboxRow, refused: dict[str, str], now: float) -> None:
        self._x("UPDATE outbox SET status = 'sent', sent_at = ?, updated_at = ?, refused = ?, last_error = ? "
                "WHERE msg_id = ? AND channel = ?",
                (now, now, json.dumps(refused), ("refused: " + "; ".join(f"{k}: {v}" for k, v in refused.items()))
                 if refused else None, row.msg_id, row.channel))
        metrics.count_delivery(row.channel, "sent")

    def mark_retry(self, row: OutboxRow, error: str, next_at: float, now: float) -> None:
        self._x("UPDATE outbox SET status = 'pending', next_attempt_at = ?, last_error = ?, updated_at = ? "
                "WHERE msg_id = ? AND channel = ?", (next_at, error, now, row.msg_id, row.channel))
        metrics.count_delivery(row.channel, "retry")

    def mark_failed(self, row: OutboxRow, error: str, now: float) -> None:
        self._x("UPDATE outbox SET status = 'failed', last_error = ?, updated_at = ? WHERE msg_id = ? AND channel = ?",
                (error, now, row.msg_id, row.channel))
        metrics.count_delivery(row.channel, "failed")

    def next_due(self, channels: Sequence[str]) -> float | None:
        if not channels:
            return None
        marks = ",".join("?" * len(channels))
        row = self._x(f"SELECT min(next_attempt_at) AS t FROM outbox WHERE status IN ('pending', 'sending') "
                      f"AND channel IN ({marks})", tuple(channels)).fetchone()
        return row["t"]

    def outbox_rows(self, msg_id: str | None = None) -> list[OutboxRow]:
        if msg_id is None:
            rows = self._x("SELECT * FROM outbox ORDER BY created_at, rowid").fetchall()
        else:
            rows = self._x("SELECT * FROM outbox WHERE msg_id = ? ORDER BY channel", (msg_id,)).fetchall()
        return [OutboxRow.from_row(r) for r in rows]

    def delivery_since(self, since: float, channels: Sequence[str]) -> list[ChannelDelivery]:
        """Per channel of ``channels``: sent and failed since ``since``, owed now (every outbox row kind)."""
        if not channels:
            return []
        marks = ",".join("?" * len(channels))
        out = {c: ChannelDelivery(c) for c in channels}
        for r in self._x(
            f"SELECT channel, SUM(status = 'sent' AND sent_at >= ?) AS sent, "
            f"SUM(status IN ('pending', 'sending')) AS owed, SUM(status = 'failed' AND updated_at >= ?) AS failed, "
            f"MIN(CASE WHEN status IN ('pending', 'sending') THEN next_attempt_at END) AS next_at "
            f"FROM outbox WHERE channel IN ({marks}) GROUP BY channel", (since, since, *channels)).fetchall():
            out[r["channel"]] = ChannelDelivery(r["channel"], int(r["sent"] or 0), int(r["owed"] or 0),
                                                int(r["failed"] or 0), next_attempt_at=r["next_at"])
        for r in self._x(
            f"SELECT channel, last_error FROM outbox WHERE channel IN ({marks}) AND last_error IS NOT NULL "
            f"AND (status IN ('pending', 'sending') OR (status = 'failed' AND updated_at >= ?)) "
            f"ORDER BY updated_at", (*channels, since)).fetchall():
            out[r["channel"]].last_error = r["last_error"]  # ordered by time: the latest wins
        return [out[c] for c in channels]

    def outbox_counts(self) -> dict[str, int]:
        rows = self._x("SELECT status, count(*) AS n FROM outbox GROUP BY status").fetchall()
        return {r["status"]: r["n"] for r in rows}

    # -- digests -------------------------------------------------------------------------------

    def add_digest_item(self, recipient: str, alert_id: str, period: str, now: float) -> None:
        self._x("INSERT OR IGNORE INTO digest_items VALUES (?, ?, ?, ?, NULL)", (recipient, alert_id, period, now))

    def waiting_digest_items(self, period: str, until: float) -> dict[str, list[str]]:
        rows = self._x("SELECT recipient, alert_id FROM digest_items WHERE period = ? AND digest_id IS NULL "
                       "AND added_at <= ? ORDER BY added_at, alert_id", (period, until)).fetchall()
        out: dict[str, list[str]] = {}
        for r in rows:
            out.setdefault(r["recipient"], []).append(r["alert_id"])
        return out

    def create_digest(self, digest_id: str, recipient: str, period: str, bucket: str, alert_ids: Sequence[str],
                      now: float) -> bool:
        """Record a digest and attach its items; False (and nothing changed) if it exists already."""
        cur = self._x("INSERT OR IGNORE INTO digests VALUES (?, ?, ?, ?, ?, ?)",
                      (digest_id, recipient, period, bucket, now, json.dumps(list(alert_ids))))
        if cur.rowcount != 1:
            return False
        for alert_id in alert_ids:
            self._x("UPDATE digest_items SET digest_id = ? WHERE recipient = ? AND alert_id = ?",
                    (digest_id, recipient, alert_id))
        return True

    def get_digest(self, digest_id: str) -> dict[str, Any] | None:
        row = self._x("SELECT * FROM digests WHERE id = ?", (digest_id,)).fetchone()
        if row is None:
            return None
        out = dict(row)
        out["alert_ids"] = json.loads(out["alert_ids"])
        return out

    def digest_items_of(self, alert_id: str) -> list[dict[str, Any]]:
        rows = self._x("SELECT * FROM digest_items WHERE alert_id = ? ORDER BY recipient", (alert_id,)).fetchall()
        return [dict(r) for r in rows]

    # -- ops events ----------------------------------------------------------------------------

    def insert_ops_event(self, event_id: str, feed_url: str, kind: str, episode: float, record: dict[str, Any],
                         now: float) -> bool:
        """Create the ops event if absent; True if it was created now."""
        cur = self._x("INSERT OR IGNORE INTO ops_events VALUES (?, ?, ?, ?, ?, ?)",
                      (event_id, feed_url, kind, episode, now, json.dumps(record)))
        return cur.rowcount == 1

    def get_ops_event(self, event_id: str) -> dict[str, Any] | None:
        row = self._x("SELECT * FROM ops_events WHERE id = ?", (event_id,)).fetchone()
        if row is None:
            return None
        return {**json.loads(row["record"]), "id": row["id"], "feed_url": row["feed_url"], "kind": row["kind"],
                "episode": row["episode"], "created_at": row["created_at"]}

    def ops_state(self, feed_url: str) -> dict[str, Any] | None:
        """The feed's alarm state: ``{"state": "down"|"ok", "episode", "event_id", "updated_at"}``, or None."""
        row = self._x("SELECT * FROM ops_feed_state WHERE feed_url = ?", (feed_url,)).fetchone()
        return dict(row) if row else None

    def ops_states(self) -> dict[str, dict[str, Any]]:
        return {r["feed_url"]: dict(r) for r in self._x("SELECT * FROM ops_feed_state").fetchall()}

    def set_ops_state(self, feed_url: str, state: str, episode: float, event_id: str, now: float) -> None:
        self._x("INSERT INTO ops_feed_state VALUES (?, ?, ?, ?, ?) ON CONFLICT (feed_url) DO UPDATE SET "
                "state = excluded.state, episode = excluded.episode, event_id = excluded.event_id, "
                "updated_at = excluded.updated_at", (feed_url, state, episode, event_id, now))
