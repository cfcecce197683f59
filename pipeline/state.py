"""Run state on SQLite (``settings.state_db``): feed state, seen entries, outcomes, runs.

WAL mode, shared by threads: writes go through one connection, one transaction at a
time (a lock held only for the transaction), reads through a connection per thread
that takes no lock at all, so poll threads reading seen keys never queue behind a
write; several processes may open the same file (busy timeout 30 s). Each method is
one transaction: when it returns, its writes are committed. A pass of many feeds
reads their validators once (:meth:`StateStore.poll_states`) and writes its polls'
results in batches (:meth:`StateStore.record_polls`, one transaction per batch,
their outcomes in the same transaction).

Seen entries are keyed per feed by ``u:<canonical URL>`` and ``g:<guid>``; an entry
is "seen" if either key is. The feeds stage never marks entries itself: the caller
calls :meth:`StateStore.mark_seen` AFTER publishing them, so a crash in between
re-finds them. For the same reason a poll that found new entries keeps its
validators (ETag, Last-Modified, body hash) *pending*, with the list of those new
entries; ``mark_seen`` promotes the validators once every one of them is marked
seen (an entry left unmarked, e.g. after a transient fetch failure, keeps the
next poll a full, unconditional fetch that finds it again).

The schedule (:meth:`StateStore.due_feeds`, a feed's :class:`Pace`): a feed with
``interval_seconds`` is polled at exactly that interval. Any other feed adapts: it has an
interval factor (1.0 at start, between 0.25 and 8) that shrinks by 0.7 after a poll that
brought new items and grows by 1.25 after one that did not; its interval is
``base * factor``, where ``base`` is the feed's ``interval_minutes`` or the default
``poll_interval_seconds``. Every interval is bounded to ``feeds.min_interval_seconds``
(default 60 s) .. 24 h. A failing feed waits ``base * 2**failures`` (capped at 24 h, at
least any Retry-After). Never-polled feeds are due.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from . import metrics
from .config import FeedConfig
from .errors import StateError
from .ids import canonical_url
from .models import FeedEntry, Outcome

__all__ = ["StateStore", "FeedState", "PollRecord", "Pace", "feed_pace", "entry_keys", "feed_interval",
           "MIN_INTERVAL_S", "MAX_INTERVAL_S"]

log = logging.getLogger(__name__)

MIN_INTERVAL_S = 60.0  # the default of feeds.min_interval_seconds
MAX_INTERVAL_S = 24 * 3600.0
FACTOR_MIN, FACTOR_MAX = 0.25, 8.0
FACTOR_ON_NEW, FACTOR_ON_NONE = 0.7, 1.25

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (
    url TEXT PRIMARY KEY,
    etag TEXT, last_modified TEXT, body_hash TEXT,
    pending_etag TEXT, pending_last_modified TEXT, pending_body_hash TEXT, has_pending INTEGER NOT NULL DEFAULT 0,
    last_polled REAL, next_due REAL, interval_s REAL, interval_factor REAL NOT NULL DEFAULT 1.0,
    consecutive_failures INTEGER NOT NULL DEFAULT 0, failing_since REAL, last_error TEXT, retry_after REAL,
    last_ok REAL, items_last_poll INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS seen (
    feed_url TEXT NOT NULL, key TEXT NOT NULL, seen_at REAL NOT NULL,
    PRIMARY KEY (feed_url, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_at_idx ON seen (seen_at);
CREATE TABLE IF NOT EXISTS pending_entries (
    feed_url TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (feed_url, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outcomes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL,
    stage TEXT NOT NULL, target TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL, ok INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outcomes_at_idx ON outcomes (at);
CREATE INDEX IF NOT EXISTS outcomes_feed_errors_idx ON outcomes (target, id) WHERE stage = 'feeds' AND ok = 0;
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, at REAL NOT NULL, summary TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_kind_idx ON runs (kind, id);
"""


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _ts(when: datetime | None) -> float:
    if when is None:
        return time.time()
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def entry_keys(entry: FeedEntry) -> list[str]:
    """The seen-keys of an entry: its canonical URL and, when it has one, its GUID."""
    keys = [f"u:{canonical_url(entry.url)}"]
    if entry.guid:
        keys.append(f"g:{entry.guid}")
    return keys


def feed_interval(base_s: float, factor: float = 1.0, failures: int = 0, retry_after: float | None = None,
                  *, floor_s: float = MIN_INTERVAL_S) -> float:
    """Seconds between two polls of a feed (see the module docstring)."""
    if failures > 0:
        wait = min(MAX_INTERVAL_S, max(floor_s, base_s) * 2.0 ** min(failures, 20))
        return max(wait, min(retry_after or 0.0, MAX_INTERVAL_S))
    return min(MAX_INTERVAL_S, max(floor_s, base_s * factor))


@dataclass(frozen=True)
class Pace:
    """How often one feed is polled: every ``base_s`` seconds, times its adaptive factor unless ``fixed``,
    never more often than every ``floor_s`` seconds."""

    base_s: float
    fixed: bool = False
    floor_s: float = MIN_INTERVAL_S

    def interval(self, factor: float = 1.0, failures: int = 0, retry_after: float | None = None) -> float:
        return feed_interval(self.base_s, 1.0 if self.fixed else factor, failures, retry_after, floor_s=self.floor_s)


def feed_pace(feed: FeedConfig, default_interval_s: float, floor_s: float = MIN_INTERVAL_S) -> Pace:
    """The pace of ``feed``: its ``interval_seconds`` (fixed), else its ``interval_minutes`` or the default (adaptive)."""
    if feed.interval_seconds is not None:
        return Pace(feed.interval_seconds, fixed=True, floor_s=floor_s)
    if feed.interval_minutes is not None:
        return Pace(feed.interval_minutes * 60.0, floor_s=floor_s)
    return Pace(default_interval_s, floor_s=floor_s)


@dataclass
class PollRecord:
    """What one poll changes in its feed's state (applied by :meth:`StateStore.record_polls`).

    ``ok``: a 200 or 304, with the validators to keep (None keeps the stored one) and
    ``pending_keys``, the URL keys of the new entries it found (their validators stay pending
    until :meth:`StateStore.mark_seen` has marked them all). Not ``ok``: a failure, ``error`` its
    one-line reason, ``retry_after`` what the server asked for."""

    url: str
    pace: Pace
    ok: bool
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    new_items: int = 0
    pending_keys: tuple[str, ...] = ()
    error: str = ""
    retry_after: float | None = None
    at: float = field(default_factory=time.time)


@dataclass
class FeedState:
    """What we know of one feed (times are epoch seconds)."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    last_polled: float | None = None
    next_due: float | None = None
    interval_s: float | None = None
    interval_factor: float = 1.0
    consecutive_failures: int = 0
    failing_since: float | None = None
    last_error: str | None = None
    retry_after: float | None = None
    last_ok: float | None = None
    items_last_poll: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        for k in ("last_polled", "next_due", "failing_since", "last_ok"):
            d[k] = _iso(d[k])
        return d


_FEED_STATE_FIELDS = frozenset(FeedState.__dataclass_fields__)

_PLAIN = {
    "file is not a database": "not a newswatch state database (damaged, or another kind of file): move it away",
    "database is locked": "held by another process (database is locked)",
    "database or disk is full": "the disk is full (database or disk is full)",
    "attempt to write a readonly database": "read-only (attempt to write a readonly database)",
    "unable to open database file": "cannot open the file (unable to open database file)",
    "disk I/O error": "disk I/O error (is the disk full?)",
}

#: seconds a write waits for another process's transaction before "held by another process"
BUSY_TIMEOUT_S = 30.0


@contextmanager
def _translated(path: Path, doing: str) -> Iterator[None]:
    """sqlite3 and OS errors -> StateError naming the file, in plain words."""
    try:
        yield
    except sqlite3.Error as exc:
        text = str(exc)
        raise StateError(f"state database {path}: cannot {doing}: {_PLAIN.get(text, text)}") from None
    except OSError as exc:
        raise StateError(f"state database {path}: cannot {doing}: {exc.strerror or exc}") from None


def _feed_state(row: sqlite3.Row) -> FeedState:
    return FeedState(**{k: row[k] for k in row.keys() if k in _FEED_STATE_FIELDS})


def _pace(pace: Pace | None, base_interval_s: float | None) -> Pace:
    if pace is not None:
        return pace
    if base_interval_s is None:
        raise TypeError("give pace= or base_interval_s=")
    return Pace(base_interval_s)


def _outcome_rows(outcomes: Sequence[Outcome], ts: float) -> list[tuple[Any, ...]]:
    return [(ts, o.stage, o.target, o.status, o.reason[:1000], int(o.ok)) for o in outcomes]


# the columns of ``feeds``, in the order _apply_polls writes them
_FEED_COLUMNS = ("url", "etag", "last_modified", "body_hash", "pending_etag", "pending_last_modified",
                 "pending_body_hash", "has_pending", "last_polled", "next_due", "interval_s", "interval_factor",
                 "consecutive_failures", "failing_since", "last_error", "retry_after", "last_ok", "items_last_poll")
_NEW_FEED = dict.fromkeys(_FEED_COLUMNS) | {"has_pending": 0, "interval_factor": 1.0, "consecutive_failures": 0,
                                            "items_last_poll": 0}


def _insert_rows(db: sqlite3.Connection, head: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """``head`` (``INSERT ... (cols) VALUES``) with many rows per statement.

    sqlite3 gives up the GIL around every row it steps (``executemany``: once per row), and in a
    process whose poll threads want the GIL each time it is asked back costs a wait; a statement
    of many rows asks once."""
    if not rows:
        return
    width = len(rows[0])
    per = max(1, min(500, db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
    group = "(" + ",".join("?" * width) + ")"
    for i in range(0, len(rows), per):
        chunk = rows[i:i + per]
        db.execute(head + ",".join([group] * len(chunk)), [v for row in chunk for v in row])


def _current_rows(db: sqlite3.Connection, urls: list[str]) -> dict[str, dict[str, Any]]:
    """The stored rows of ``urls`` (as column -> value), read in one step per 500 URLs."""
    out: dict[str, dict[str, Any]] = {}
    cols = ", ".join(_FEED_COLUMNS)
    for i in range(0, len(urls), 500):
        chunk = urls[i:i + 500]
        marks = ",".join("?" * len(chunk))
        try:  # one row holding them all (JSON): one step, not one per row (see _insert_rows)
            packed = db.execute(f"SELECT json_group_array(json_array({cols})) FROM feeds "  # noqa: S608
                                f"WHERE url IN ({marks})", chunk).fetchone()[0]
            found = json.loads(packed)
        except sqlite3.OperationalError:  # an SQLite built without JSON
            found = [tuple(r) for r in db.execute(f"SELECT {cols} FROM feeds WHERE url IN ({marks})",  # noqa: S608
                                                  chunk)]
        out.update((values[0], dict(zip(_FEED_COLUMNS, values, strict=True))) for values in found)
    return out


def _polled(row: dict[str, Any], r: PollRecord) -> None:
    """Apply one poll record to its feed's row (in place)."""
    ts = r.at
    if not r.ok:
        failures = int(row["consecutive_failures"]) + 1
        interval = r.pace.interval(failures=failures, retry_after=r.retry_after)
        row.update(last_polled=ts, next_due=ts + interval, interval_s=interval, consecutive_failures=failures,
                   failing_since=row["failing_since"] if row["failing_since"] is not None else ts,
                   last_error=r.error[:500], retry_after=r.retry_after, items_last_poll=0)
        return
    factor = float(row["interval_factor"]) * (FACTOR_ON_NEW if r.new_items > 0 else FACTOR_ON_NONE)
    factor = min(FACTOR_MAX, max(FACTOR_MIN, factor))
    interval = r.pace.interval(factor)
    validators = (r.etag if r.etag is not None else row["etag"],
                  r.last_modified if r.last_modified is not None else row["last_modified"],
                  r.body_hash if r.body_hash is not None else row["body_hash"])
    if r.pending_keys:  # kept pending until mark_seen has marked every new entry
        row.update(pending_etag=validators[0], pending_last_modified=validators[1], pending_body_hash=validators[2],
                   has_pending=1)
    else:
        row.update(etag=validators[0], last_modified=validators[1], body_hash=validators[2], has_pending=0,
                   pending_etag=None, pending_last_modified=None, pending_body_hash=None)
    row.update(last_polled=ts, last_ok=ts, next_due=ts + interval, interval_s=interval, interval_factor=factor,
               consecutive_failures=0, failing_since=None, last_error=None, retry_after=None,
               items_last_poll=r.new_items)


def _apply_polls(db: sqlite3.Connection, records: Sequence[PollRecord]) -> None:
    """Write ``records`` in order to their feeds' rows (inside the caller's transaction), in a few statements."""
    if not records:
        return
    urls = list(dict.fromkeys(r.url for r in records))
    rows = _current_rows(db, urls)
    pending: dict[str, tuple[str, ...]] = {}  # feed -> its pending entries after these polls (ok polls only)
    for r in records:
        row = rows.setdefault(r.url, _NEW_FEED | {"url": r.url})
        _polled(row, r)
        if r.ok:
            pending[r.url] = r.pending_keys
    cleared = list(pending)
    for i in range(0, len(cleared), 500):
        chunk = cleared[i:i + 500]
        db.execute(f"DELETE FROM pending_entries WHERE feed_url IN ({','.join('?' * len(chunk))})",  # noqa: S608
                   chunk)
    _insert_rows(db, "INSERT OR IGNORE INTO pending_entries (feed_url, key) VALUES ",
                 [(url, key) for url, keys in pending.items() for key in keys])
    _insert_rows(db, f"INSERT OR REPLACE INTO feeds ({', '.join(_FEED_COLUMNS)}) VALUES ",
                 [tuple(rows[url][c] for c in _FEED_COLUMNS) for url in urls])


_INSERT_OUTCOMES = "INSERT INTO outcomes (at, stage, target, status, reason, ok) VALUES "


class StateStore:
    """Thread-safe SQLite store of run state. ``path`` is created with its parents.

    Writes share one connection, one transaction at a time; reads use a connection of the calling
    thread (opened on its first read, closed by :meth:`close`), so they wait for no lock; an
    in-memory store (``":memory:"``) reads through the writer's connection instead.
    Every sqlite3 or OS error becomes a :class:`~pipeline.errors.StateError` naming the file
    (not a database, held by another process, disk full); a failed write is rolled back."""

    def __init__(self, path: Path | str, *, timeout: float | None = None) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()  # the writer connection, for one transaction at a time
        self._memory = str(path) == ":memory:"
        self._timeout = BUSY_TIMEOUT_S if timeout is None else timeout
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()  # never the writer's lock: a reader must not wait for a write
        self._closed = False
        with _translated(self.path, "open"):
            if not self._memory:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), timeout=self._timeout, check_same_thread=False,
                                       isolation_level=None)
            try:
                self._db.row_factory = sqlite3.Row
                with self._lock:
                    self._db.execute("PRAGMA journal_mode=WAL")
                    self._db.execute("PRAGMA synchronous=NORMAL")
                    self._db.executescript(_SCHEMA)
            except BaseException:
                self._db.close()
                raise

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        with self._readers_lock:
            self._closed = True
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, _translated(self.path, "write"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the failed COMMIT may have ended the transaction already
                raise

    def _reader(self) -> sqlite3.Connection:
        """This thread's read-only connection (WAL: it sees every committed write, blocks no writer)."""
        conn: sqlite3.Connection | None = getattr(self._local, "db", None)
        if conn is None:
            conn = sqlite3.connect(str(self.path), timeout=self._timeout, check_same_thread=False,
                                   isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA query_only=1")
            with self._readers_lock:
                if self._closed:
                    conn.close()
                    raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
                self._readers.append(conn)
            self._local.db = conn
        return conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        if self._memory:
            with self._lock, _translated(self.path, "read"):
                yield self._db
            return
        with _translated(self.path, "read"):
            yield self._reader()

    # -- feed state -----------------------------------------------------------------
    def get_feed(self, url: str) -> FeedState | None:
        """The stored state of ``url`` (committed validators only), or None if never polled."""
        with self._read() as db:
            row = db.execute("SELECT * FROM feeds WHERE url = ?", (url,)).fetchone()
        return None if row is None else _feed_state(row)

    def poll_states(self, urls: Sequence[str]) -> dict[str, FeedState]:
        """The stored state of each of ``urls`` that was ever polled, in one read (what a pass polls with)."""
        wanted = set(urls)
        with self._read() as db:
            rows = db.execute("SELECT * FROM feeds").fetchall()
        return {row["url"]: _feed_state(row) for row in rows if row["url"] in wanted}

    def record_poll_ok(
        self,
        url: str,
        *,
        etag: str | None,
        last_modified: str | None,
        body_hash: str | None,
        new_items: int,
        base_interval_s: float | None = None,
        pace: Pace | None = None,
        pending_entries: Sequence[FeedEntry] = (),
        now: datetime | None = None,
    ) -> FeedState:
        """Record a successful poll (200 or 304); the one-poll form of :meth:`record_polls`.

        ``pending_entries`` are the new entries the poll found: the validators stay
        pending until :meth:`mark_seen` has marked all of them. ``etag``/``last_modified``/
        ``body_hash`` of None keep the stored values. ``pace`` (or an adaptive pace on
        ``base_interval_s``) sets the next poll."""
        record = PollRecord(url, _pace(pace, base_interval_s), ok=True, etag=etag, last_modified=last_modified,
                            body_hash=body_hash, new_items=new_items,
                            pending_keys=tuple(entry_keys(e)[0] for e in pending_entries), at=_ts(now))
        return self._recorded(record)

    def record_poll_failure(
        self, url: str, error: str, *, base_interval_s: float | None = None, pace: Pace | None = None,
        retry_after: float | None = None, now: datetime | None = None,
    ) -> FeedState:
        """Record a failed poll: failures + 1, next due backed off exponentially (never dropped)."""
        record = PollRecord(url, _pace(pace, base_interval_s), ok=False, error=error, retry_after=retry_after,
                            at=_ts(now))
        return self._recorded(record)

    def _recorded(self, record: PollRecord) -> FeedState:
        self.record_polls([record])
        state = self.get_feed(record.url)
        assert state is not None
        return state

    def record_polls(self, records: Sequence[PollRecord], outcomes: Sequence[Outcome] = ()) -> None:
        """Apply ``records`` in order to their feeds' state and append ``outcomes`` to the log, in one
        transaction: a batch of a pass's polls is all recorded, or (a crash) none of it is."""
        if not records and not outcomes:
            return
        with self._tx() as db:
            _apply_polls(db, records)
            _insert_rows(db, _INSERT_OUTCOMES, _outcome_rows(outcomes, time.time()))
        if outcomes:
            metrics.count_outcomes(outcomes)

    def _due_times(self, feeds: Sequence[FeedConfig], default_interval_s: float,
                   floor_s: float) -> list[tuple[float, float, int, FeedConfig]]:
        """(when it is due, when the floor allows it at the earliest, its place in ``feeds``, the feed) for
        every feed; a never-polled feed is due at -inf."""
        with self._read() as db:
            rows = {r["url"]: r for r in db.execute(
                "SELECT url, last_polled, interval_factor, consecutive_failures, retry_after FROM feeds")}
        out: list[tuple[float, float, int, FeedConfig]] = []
        for i, feed in enumerate(feeds):
            row = rows.get(feed.url)
            if row is None or row["last_polled"] is None:
                out.append((float("-inf"), float("-inf"), i, feed))
                continue
            pace = feed_pace(feed, default_interval_s, floor_s)
            interval = pace.interval(float(row["interval_factor"]), int(row["consecutive_failures"]),
                                     row["retry_after"])
            last = float(row["last_polled"])
            out.append((last + interval, last + pace.floor_s, i, feed))
        return out

    def due_feeds(self, feeds: Sequence[FeedConfig], now: datetime, default_interval_s: float, *,
                  min_interval_s: float = MIN_INTERVAL_S, ahead_s: float = 0.0) -> list[FeedConfig]:
        """The configured feeds due at ``now``, most overdue first, never-polled first of all.

        ``ahead_s``: feeds due within that many seconds after ``now`` count as due too (never before
        their floor), so that feeds polled together in one pass stay together in the next one."""
        ts = _ts(now)
        due = sorted((due_at, i, f) for due_at, earliest, i, f in self._due_times(feeds, default_interval_s,
                                                                                  min_interval_s)
                     if due_at <= ts or (due_at - ahead_s <= ts and earliest <= ts))
        return [f for _, _, f in due]

    def next_due_at(self, feeds: Sequence[FeedConfig], default_interval_s: float, *,
                    min_interval_s: float = MIN_INTERVAL_S) -> float | None:
        """When the next of ``feeds`` is due (epoch seconds; in the past if one is due now), None if no feeds."""
        times = self._due_times(feeds, default_interval_s, min_interval_s)
        return min(t[0] for t in times) if times else None

    def failing_feeds(self, min_hours: float) -> list[dict[str, Any]]:
        """Feeds failing continuously for at least ``min_hours`` (longest-failing first)."""
        cutoff = time.time() - min_hours * 3600.0
        with self._read() as db:
            rows = db.execute(
                "SELECT * FROM feeds WHERE consecutive_failures > 0 AND failing_since <= ? ORDER BY failing_since",
                (cutoff,)).fetchall()
        return [
            {"url": r["url"], "consecutive_failures": r["consecutive_failures"], "last_error": r["last_error"],
             "failing_since": _iso(r["failing_since"]), "last_ok": _iso(r["last_ok"]),
             "next_due": _iso(r["next_due"]), "hours": round((time.time() - r["failing_since"]) / 3600.0, 2)}
            for r in rows
        ]

    def feed_states(self) -> list[FeedState]:
        with self._read() as db:
            rows = db.execute("SELECT * FROM feeds ORDER BY url").fetchall()
        return [_feed_state(r) for r in rows]

    def feed_arrivals(self, since: float, grace_s: float) -> dict[str, tuple[float, float, int]]:
        """Per feed URL: (first, last) time one of its entries was marked seen, and how many entries
        were marked at or after ``since`` AND more than ``grace_s`` after the first one (so the backlog
        found by a feed's first poll does not count as its rhythm). Entries are counted by URL key."""
        with self._read() as db:
            rows = db.execute(
                "SELECT s.feed_url AS url, f.first AS first, f.last AS last, "
                "SUM(s.seen_at >= MAX(f.first + ?, ?)) AS recent FROM seen s JOIN ("
                "  SELECT feed_url, MIN(seen_at) AS first, MAX(seen_at) AS last FROM seen"
                "  WHERE key >= 'u:' AND key < 'u;' GROUP BY feed_url) f ON f.feed_url = s.feed_url "
                "WHERE s.key >= 'u:' AND s.key < 'u;' GROUP BY s.feed_url", (grace_s, since)).fetchall()
        return {r["url"]: (float(r["first"]), float(r["last"]), int(r["recent"])) for r in rows}

    def last_feed_errors(self) -> dict[str, tuple[float, str, str]]:
        """Per feed URL: (at, status, reason) of its latest failed poll in the outcome log."""
        with self._read() as db:
            rows = db.execute(
                "SELECT target, at, status, reason FROM outcomes WHERE id IN ("
                "  SELECT MAX(id) FROM outcomes WHERE stage = 'feeds' AND ok = 0 GROUP BY target)").fetchall()
        return {r["target"]: (float(r["at"]), r["status"], r["reason"]) for r in rows}

    # -- seen entries ---------------------------------------------------------------
    def seen_keys(self, feed_url: str, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` were already marked seen for ``feed_url``."""
        found: set[str] = set()
        with self._read() as db:
            for i in range(0, len(keys), 500):
                batch = list(keys[i:i + 500])
                marks = ",".join("?" * len(batch))
                found.update(r["key"] for r in db.execute(
                    f"SELECT key FROM seen WHERE feed_url = ? AND key IN ({marks})",  # noqa: S608 - placeholders only
                    [feed_url, *batch]))
        return found

    def mark_seen(self, entries: Sequence[FeedEntry], *, now: datetime | None = None) -> int:
        """Mark entries seen (by canonical URL and GUID) for their ``feed_url``; call AFTER publishing.

        Promotes a feed's pending validators once all its pending entries are marked.
        Idempotent. Returns the number of keys newly stored.
        """
        ts = _ts(now)
        added = 0
        with self._tx() as db:
            for entry in entries:
                for key in entry_keys(entry):
                    cur = db.execute("INSERT OR IGNORE INTO seen (feed_url, key, seen_at) VALUES (?, ?, ?)",
                                     (entry.feed_url, key, ts))
                    added += cur.rowcount
                db.execute("DELETE FROM pending_entries WHERE feed_url = ? AND key = ?",
                           (entry.feed_url, entry_keys(entry)[0]))
            for feed_url in {e.feed_url for e in entries}:
                if db.execute("SELECT 1 FROM pending_entries WHERE feed_url = ? LIMIT 1", (feed_url,)).fetchone():
                    continue
                db.execute(
                    "UPDATE feeds SET etag=pending_etag, last_modified=pending_last_modified, "
                    "body_hash=pending_body_hash, has_pending=0, pending_etag=NULL, pending_last_modified=NULL, "
                    "pending_body_hash=NULL WHERE url=? AND has_pending=1", (feed_url,))
        return added

    # -- outcomes and runs ----------------------------------------------------------
    def record(self, outcome: Outcome, *, at: datetime | None = None) -> None:
        self.record_many([outcome], at=at)

    def record_many(self, outcomes: Sequence[Outcome], *, at: datetime | None = None) -> None:
        """Append outcomes to the log in one transaction."""
        with self._tx() as db:
            _insert_rows(db, _INSERT_OUTCOMES, _outcome_rows(outcomes, _ts(at)))
        metrics.count_outcomes(outcomes)

    def outcome_counts(self, since: datetime | None = None, *, stage: str | None = None) -> dict[str, int]:
        """Number of outcomes per status (optionally since a time, for one stage)."""
        sql = "SELECT status, COUNT(*) AS n FROM outcomes WHERE at >= ?"
        args: list[Any] = [_ts(since) if since else 0.0]
        if stage:
            sql += " AND stage = ?"
            args.append(stage)
        with self._read() as db:
            rows = db.execute(sql + " GROUP BY status ORDER BY status", args).fetchall()
        return {r["status"]: int(r["n"]) for r in rows}

    def recent_outcomes(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest outcomes, newest first, as dicts (``at`` in ISO 8601 UTC)."""
        with self._read() as db:
            rows = db.execute("SELECT * FROM outcomes ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [{"at": _iso(r["at"]), "stage": r["stage"], "target": r["target"], "status": r["status"],
                 "reason": r["reason"], "ok": bool(r["ok"])} for r in rows]

    def record_run(self, kind: str, summary: dict[str, Any]) -> None:
        """Store one run summary (JSON-serialisable dict) of ``kind`` (e.g. ``ingest``)."""
        with self._tx() as db:
            db.execute("INSERT INTO runs (kind, at, summary) VALUES (?, ?, ?)",
                       (kind, time.time(), json.dumps(summary, default=str, sort_keys=True)))

    def last_runs(self, kind: str, n: int = 10) -> list[dict[str, Any]]:
        """The ``n`` latest runs of ``kind``, newest first: ``{"kind", "at", "summary"}``."""
        with self._read() as db:
            rows = db.execute("SELECT * FROM runs WHERE kind = ? ORDER BY id DESC LIMIT ?", (kind, n)).fetchall()
        return [{"kind": r["kind"], "at": _iso(r["at"]), "summary": json.loads(r["summary"])} for r in rows]

    # -- housekeeping ---------------------------------------------------------------
    def prune(self, older_than_days: int, *, keep_feeds: Sequence[str] | None = None) -> int:
        """Delete outcomes and runs older than N days, seen entries older than N days, and,
        when ``keep_feeds`` is given, the state and seen entries of every other feed.
        Returns the number of rows deleted."""
        cutoff = time.time() - older_than_days * 86400.0
        deleted = 0
        with self._tx() as db:
            deleted += db.execute("DELETE FROM outcomes WHERE at < ?", (cutoff,)).rowcount
            deleted += db.execute("DELETE FROM runs WHERE at < ?", (cutoff,)).rowcount
            deleted += db.execute("DELETE FROM seen WHERE seen_at < ?", (cutoff,)).rowcount
            if keep_feeds is not None:
                db.execute("CREATE TEMP TABLE IF NOT EXISTS keep_feeds (url TEXT PRIMARY KEY)")
                db.execute("DELETE FROM keep_feeds")
                db.executemany("INSERT OR IGNORE INTO keep_feeds (url) VALUES (?)", [(u,) for u in keep_feeds])
                deleted += db.execute("DELETE FROM seen WHERE feed_url NOT IN (SELECT url FROM keep_feeds)").rowcount
                db.execute("DELETE FROM pending_entries WHERE feed_url NOT IN (SELECT url FROM keep_feeds)")
                deleted += db.execute("DELETE FROM feeds WHERE url NOT IN (SELECT url FROM keep_feeds)").rowcount
        log.info("state %s: pruned %d rows older than %d days", self.path, deleted, older_than_days)
        return deleted
