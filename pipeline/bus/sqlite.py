"""The embedded message bus: durable topics in one SQLite file (WAL mode).

One partition per topic. Offsets are 0-based and dense per topic. Committed positions
are stored per (group, topic, partition). Several processes may publish and consume
concurrently (SQLite serialises writers); two consumers of the same group on one
topic would both read everything, exactly like two Kafka consumers of one group on a
single partition would not: run one consumer per group per topic here.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import BusError, TransientBusError
from .base import ALL_TOPICS, Consumer, Message, OutMessage, TopicStats

__all__ = ["SQLiteBus"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL DEFAULT 0,
    offset INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    headers TEXT NOT NULL DEFAULT '{}',
    ts REAL NOT NULL,
    PRIMARY KEY (topic, partition, offset)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS commits (
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL DEFAULT 0,
    offset INTEGER NOT NULL,
    PRIMARY KEY (grp, topic, partition)
) WITHOUT ROWID;
"""


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class SQLiteBus:
    """``MessageBus`` on SQLite. Thread-safe; safe across processes sharing the file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._conn = _connect(self.path)
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise BusError(f"cannot open bus database {self.path}: {exc}") from None

    def publish(self, topic: str, messages: Sequence[OutMessage]) -> None:
        if not messages:
            return
        now = time.time()
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                row = self._conn.execute(
                    "SELECT COALESCE(MAX(offset) + 1, 0) FROM messages WHERE topic=? AND partition=0", (topic,)
                ).fetchone()
                nxt = int(row[0])
                self._conn.executemany(
                    "INSERT INTO messages(topic, partition, offset, key, value, headers, ts) VALUES (?,0,?,?,?,?,?)",
                    [
                        (topic, nxt + i, m.key, json.dumps(m.value, ensure_ascii=False), json.dumps(m.headers), now)
                        for i, m in enumerate(messages)
                    ],
                )
                self._conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                self._rollback()
                raise TransientBusError(f"publish to {topic} failed: {exc}") from None
            except (sqlite3.Error, TypeError, ValueError) as exc:
                self._rollback()
                raise BusError(f"publish to {topic} failed: {exc}") from None

    def _rollback(self) -> None:
        try:
            self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def consumer(self, topic: str, group: str) -> Consumer:
        return _SQLiteConsumer(self, topic, group)

    def committed(self, topic: str, group: str) -> int:
        with self._lock:
            row = self._conn.execute(
                "SELECT offset FROM commits WHERE grp=? AND topic=? AND partition=0", (group, topic)
            ).fetchone()
        return int(row[0]) if row else 0

    def _read(self, topic: str, start: int, limit: int) -> list[Message]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT offset, key, value, headers, ts FROM messages WHERE topic=? AND partition=0 AND offset>=? "
                "ORDER BY offset LIMIT ?",
                (topic, start, limit),
            ).fetchall()
        out = []
        for offset, key, value, headers, ts in rows:
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = {"_unparseable": value}
            out.append(Message(topic, 0, int(offset), key, parsed, json.loads(headers), float(ts)))
        return out

    def _commit(self, group: str, topic: str, offset: int) -> None:
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO commits(grp, topic, partition, offset) VALUES (?,?,0,?) "
                    "ON CONFLICT(grp, topic, partition) DO UPDATE SET offset=MAX(offset, excluded.offset)",
                    (group, topic, offset),
                )
            except sqlite3.Error as exc:
                raise TransientBusError(f"commit {group}/{topic}@{offset} failed: {exc}") from None

    def stats(self, groups: Sequence[str] = ()) -> list[TopicStats]:
        out = []
        with self._lock:
            ends = dict(
                self._conn.execute("SELECT topic, MAX(offset) + 1 FROM messages GROUP BY topic").fetchall()
            )
            commits = self._conn.execute("SELECT grp, topic, offset FROM commits").fetchall()
        topics = list(dict.fromkeys([*ALL_TOPICS, *ends]))
        for topic in topics:
            end = int(ends.get(topic, 0))
            lag = {}
            for grp, t, off in commits:
                if t == topic and (not groups or grp in groups):
                    lag[grp] = end - int(off)
            for grp in groups:
                lag.setdefault(grp, end)
            out.append(TopicStats(topic=topic, messages=end, lag=lag))
        return out

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _SQLiteConsumer:
    def __init__(self, bus: SQLiteBus, topic: str, group: str) -> None:
        self._bus = bus
        self.topic = topic
        self.group = group
        self._position = bus.committed(topic, group)

    def poll(self, max_records: int = 100, timeout: float = 1.0) -> list[Message]:
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            msgs = self._bus._read(self.topic, self._position, max_records)
            if msgs:
                self._position = msgs[-1].offset + 1
                return msgs
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            time.sleep(min(0.05, remaining))

    def commit(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        self._bus._commit(self.group, self.topic, max(m.offset for m in messages) + 1)

    def hold(self, seconds: float, stop: threading.Event) -> bool:
        stop.wait(seconds)
        return True  # one consumer per group and topic: nothing to rebalance

    def rewind(self, messages: Sequence[Message]) -> None:
        if messages:
            self._position = min(self._position, min(m.offset for m in messages))

    def close(self) -> None:
        pass
