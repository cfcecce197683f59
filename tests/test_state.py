"""StateStore: feed schedule, seen entries, outcomes, runs, pruning, thread safety."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.config import FeedConfig
from pipeline.models import FeedEntry, Outcome
from pipeline.state import (
    MAX_INTERVAL_S,
    MIN_INTERVAL_S,
    Pace,
    PollRecord,
    StateStore,
    entry_keys,
    feed_interval,
    feed_pace,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    s = StateStore(tmp_path / "var" / "state.sqlite3")
    yield s
    s.close()


def feed(url: str = "https://news.example/rss", minutes: float | None = None) -> FeedConfig:
    return FeedConfig(url=url, interval_minutes=minutes)


def test_file_is_wal_and_created_with_parents(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "state.sqlite3"
    with StateStore(path):
        pass
    assert path.exists()
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_never_polled_feeds_are_due_first(store: StateStore) -> None:
    a, b = feed("https://a.example/rss"), feed("https://b.example/rss")
    store.record_poll_ok(a.url, etag=None, last_modified=None, body_hash="h", new_items=1, base_interval_s=300, now=T0)
    assert store.due_feeds([a, b], T0 + timedelta(seconds=10), 300) == [b]
    assert store.due_feeds([a, b], T0 + timedelta(hours=1), 300) == [b, a]


def test_interval_adapts_to_new_items_within_bounds(store: StateStore) -> None:
    f = feed()
    now = T0
    for _ in range(10):  # every poll brings new items: interval shrinks to base/4
        st = store.record_poll_ok(f.url, etag=None, last_modified=None, body_hash=None, new_items=3,
                                  base_interval_s=600, now=now)
    assert st.interval_s == pytest.approx(150)
    assert store.due_feeds([f], now + timedelta(seconds=149), 600) == []
    assert store.due_feeds([f], now + timedelta(seconds=151), 600) == [f]
    for _ in range(30):  # no new items: grows to 8x base
        st = store.record_poll_ok(f.url, etag=None, last_modified=None, body_hash=None, new_items=0,
                                  base_interval_s=600, now=now)
    assert st.interval_s == pytest.approx(4800)
    assert store.due_feeds([f], now + timedelta(seconds=4700), 600) == []
    # a FeedConfig interval overrides the default; bounds are 60 s .. 24 h
    g = feed("https://fast.example/rss", minutes=2)
    store.record_poll_ok(g.url, etag=None, last_modified=None, body_hash=None, new_items=0, base_interval_s=120,
                         now=now)
    assert store.due_feeds([g], now + timedelta(seconds=149), 600) == []
    assert store.due_feeds([g], now + timedelta(seconds=151), 600) == [g]  # 120 s x 1.25
    assert feed_interval(10, 0.25) == MIN_INTERVAL_S
    assert feed_interval(20_000, 8.0) == MAX_INTERVAL_S


def test_failures_back_off_exponentially_and_recover(store: StateStore) -> None:
    f = feed()
    intervals = []
    for i in range(12):
        st = store.record_poll_failure(f.url, "FetchError: connection refused", base_interval_s=300,
                                       now=T0 + timedelta(minutes=i))
        intervals.append(st.interval_s)
    assert intervals[:3] == [600, 1200, 2400]
    assert max(intervals) == MAX_INTERVAL_S
    assert st.consecutive_failures == 12
    last = T0 + timedelta(minutes=11)
    assert store.due_feeds([f], last + timedelta(hours=23), 300) == []
    assert store.due_feeds([f], last + timedelta(hours=24, seconds=1), 300) == [f]  # backed off, never dropped
    st = store.record_poll_ok(f.url, etag=None, last_modified=None, body_hash=None, new_items=0,
                              base_interval_s=300, now=last)
    assert (st.consecutive_failures, st.last_error, st.failing_since) == (0, None, None)


def test_retry_after_lengthens_the_backoff(store: StateStore) -> None:
    st = store.record_poll_failure("https://x.example/", "HTTP 429", base_interval_s=300, retry_after=7200)
    assert st.interval_s == 7200


def test_failing_feeds(store: StateStore) -> None:
    old = datetime.now(UTC) - timedelta(hours=30)
    store.record_poll_failure("https://old.example/", "HTTP 500", base_interval_s=300, now=old)
    store.record_poll_failure("https://old.example/", "HTTP 502", base_interval_s=300)
    store.record_poll_failure("https://new.example/", "timeout", base_interval_s=300)
    failing = store.failing_feeds(24)
    assert [f["url"] for f in failing] == ["https://old.example/"]
    assert failing[0]["consecutive_failures"] == 2 and failing[0]["last_error"] == "HTTP 502"
    assert failing[0]["hours"] >= 29.9
    assert {f["url"] for f in store.failing_feeds(0)} == {"https://old.example/", "https://new.example/"}


def test_seen_by_url_and_guid_and_pending_validators(store: StateStore) -> None:
    url = "https://news.example/rss"
    store.record_poll_ok(url, etag='"1"', last_modified=None, body_hash="h1", new_items=0, base_interval_s=300)
    e = FeedEntry(feed_url=url, url="https://news.example/a?utm_source=rss", guid="tag:a")
    f = FeedEntry(feed_url=url, url="https://news.example/b", guid="tag:b")
    store.record_poll_ok(url, etag='"2"', last_modified=None, body_hash="h2", new_items=2, base_interval_s=300,
                         pending_entries=[e, f])
    st = store.get_feed(url)
    assert st is not None and (st.etag, st.body_hash) == ('"1"', "h1")  # not yet published
    assert store.mark_seen([e]) == 2
    st = store.get_feed(url)
    assert st is not None and (st.etag, st.body_hash) == ('"1"', "h1")  # f not published yet
    assert store.mark_seen([f]) == 2
    assert store.mark_seen([e, f]) == 0  # idempotent
    st = store.get_feed(url)
    assert st is not None and (st.etag, st.body_hash) == ('"2"', "h2")
    assert store.seen_keys(url, ["u:https://news.example/a", "g:tag:a", "g:other"]) == {
        "u:https://news.example/a", "g:tag:a"}
    assert store.seen_keys("https://other.example/rss", ["g:tag:a"]) == set()


def test_outcomes_counts_recent_and_runs(store: StateStore) -> None:
    store.record(Outcome("fetch", "https://a.example/1", "extracted"), at=T0)
    store.record_many([Outcome("fetch", "https://a.example/2", "timeout", "read timeout", ok=False),
                       Outcome("fetch", "https://a.example/3", "extracted"),
                       Outcome("feeds", "https://a.example/rss", "not_modified")])
    assert store.outcome_counts() == {"extracted": 2, "timeout": 1, "not_modified": 1}
    assert store.outcome_counts(since=T0 + timedelta(seconds=1)) == {"extracted": 1, "timeout": 1,
                                                                      "not_modified": 1}
    assert store.outcome_counts(stage="feeds") == {"not_modified": 1}
    recent = store.recent_outcomes(2)
    assert [r["target"] for r in recent] == ["https://a.example/rss", "https://a.example/3"]
    assert recent[0]["ok"] is True and recent[0]["at"].endswith("Z")
    store.record_run("ingest", {"fetched": 3})
    store.record_run("ingest", {"fetched": 5})
    store.record_run("alerts", {"sent": 1})
    runs = store.last_runs("ingest", 5)
    assert [r["summary"]["fetched"] for r in runs] == [5, 3]


def test_prune_old_rows_and_unconfigured_feeds(store: StateStore) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=100)
    store.record(Outcome("fetch", "https://a.example/old", "extracted"), at=long_ago)
    store.record(Outcome("fetch", "https://a.example/new", "extracted"))
    kept, gone = "https://kept.example/rss", "https://gone.example/rss"
    for f in (kept, gone):
        store.record_poll_ok(f, etag=None, last_modified=None, body_hash=None, new_items=0, base_interval_s=300)
        store.mark_seen([FeedEntry(feed_url=f, url=f"{f}/item")])
    deleted = store.prune(90, keep_feeds=[kept])
    assert deleted == 1 + 1 + 1  # the old outcome, the gone feed's seen key, the gone feed
    assert [r["target"] for r in store.recent_outcomes(10)] == ["https://a.example/new"]
    assert store.get_feed(gone) is None and store.get_feed(kept) is not None
    assert store.seen_keys(kept, [f"u:{kept}/item"]) == {f"u:{kept}/item"}


def test_thread_safe_writes(store: StateStore) -> None:
    def work(n: int) -> None:
        for i in range(25):
            store.record_many([Outcome("fetch", f"https://t{n}.example/{i}", "extracted")])
            store.mark_seen([FeedEntry(feed_url="https://f.example/rss", url=f"https://t{n}.example/{i}")])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.outcome_counts() == {"extracted": 200}


def test_two_stores_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with StateStore(path) as a, StateStore(path) as b:
        a.mark_seen([FeedEntry(feed_url="https://f.example/rss", url="https://f.example/1")])
        assert b.seen_keys("https://f.example/rss", ["u:https://f.example/1"]) == {"u:https://f.example/1"}


def test_reads_do_not_wait_for_a_write_in_progress(store: StateStore) -> None:
    """Readers (poll threads reading seen keys) have their own connections: a transaction held open by
    the writer (a batch of polls being written) does not hold them up."""
    url = "https://news.example/rss"
    store.mark_seen([FeedEntry(feed_url=url, url="https://news.example/a")])
    inside, release = threading.Event(), threading.Event()

    def long_write() -> None:
        with store._tx() as db:  # the writer's lock and an open write transaction
            db.execute("UPDATE seen SET seen_at = seen_at")
            inside.set()
            release.wait(30)

    writer = threading.Thread(target=long_write)
    writer.start()
    assert inside.wait(30)
    answers: list[set[str]] = []
    readers = [threading.Thread(target=lambda: answers.append(store.seen_keys(url, ["u:https://news.example/a"])))
               for _ in range(4)]
    for t in readers:
        t.start()
    for t in readers:
        t.join(10)
    done = [not t.is_alive() for t in readers]
    release.set()
    writer.join(30)
    assert all(done), "a read waited for the write transaction"
    assert answers == [{"u:https://news.example/a"}] * 4


def test_a_batch_of_polls_is_the_same_as_one_poll_at_a_time(tmp_path: Path) -> None:
    pace, fixed = Pace(300), Pace(90, fixed=True, floor_s=30)
    e = FeedEntry(feed_url="https://a.example/rss", url="https://a.example/1")
    records = [
        PollRecord("https://a.example/rss", pace, ok=True, etag='"1"', last_modified="lm", body_hash="h1", at=1000),
        PollRecord("https://b.example/rss", fixed, ok=False, error="HTTP 503", retry_after=700, at=1001),
        PollRecord("https://a.example/rss", pace, ok=True, etag='"2"', body_hash="h2", new_items=1,
                   pending_keys=tuple(entry_keys(e)[:1]), at=1002),  # the same feed again, in the same batch
        PollRecord("https://b.example/rss", fixed, ok=False, error="timeout", at=1003),
        PollRecord("https://c.example/rss", fixed, ok=True, etag=None, body_hash="hc", at=1004),
    ]
    with StateStore(tmp_path / "one.sqlite3") as one, StateStore(tmp_path / "batch.sqlite3") as batch:
        for r in records:
            one.record_polls([r])
        batch.record_polls(records, [Outcome("feeds", r.url, "polled") for r in records])
        assert batch.feed_states() == one.feed_states()
        assert batch.outcome_counts() == {"polled": 5}
        b = batch.get_feed("https://b.example/rss")
        assert b is not None and (b.consecutive_failures, b.failing_since, b.last_error) == (2, 1001, "timeout")
        assert b.interval_s == 360  # fixed pace 90 s, two failures: 90 * 2**2
        a = batch.get_feed("https://a.example/rss")
        assert a is not None and (a.etag, a.body_hash) == ('"1"', "h1")  # the new validators wait for mark_seen
        batch.mark_seen([e])
        a = batch.get_feed("https://a.example/rss")
        assert a is not None and (a.etag, a.last_modified, a.body_hash) == ('"2"', "lm", "h2")


def test_a_feeds_own_interval_is_fixed_and_the_floor_holds(store: StateStore) -> None:
    fast = FeedConfig(url="https://fast.example/rss", interval_seconds=15)
    slow = FeedConfig(url="https://slow.example/rss")
    assert feed_pace(fast, 300, floor_s=10) == Pace(15, fixed=True, floor_s=10)
    assert feed_pace(slow, 300, floor_s=10) == Pace(300, floor_s=10)
    for _ in range(5):  # nothing new, five times: an adaptive feed slows down, a fixed one does not
        for f in (fast, slow):
            store.record_poll_ok(f.url, etag=None, last_modified=None, body_hash=None, new_items=0,
                                 pace=feed_pace(f, 300, floor_s=10), now=T0)
    assert store.due_feeds([fast, slow], T0 + timedelta(seconds=14), 300, min_interval_s=10) == []
    assert store.due_feeds([fast, slow], T0 + timedelta(seconds=15), 300, min_interval_s=10) == [fast]
    assert store.due_feeds([fast, slow], T0 + timedelta(seconds=300 * 1.25**5 - 1), 300, min_interval_s=10) == [fast]
    assert store.next_due_at([fast, slow], 300, min_interval_s=10) == pytest.approx(T0.timestamp() + 15)
    # polled together, due together: a feed due within ahead_s joins the pass, but never before its floor
    assert store.due_feeds([fast], T0 + timedelta(seconds=14.5), 300, min_interval_s=10, ahead_s=1) == [fast]
    assert store.due_feeds([fast], T0 + timedelta(seconds=14.5), 300, min_interval_s=15, ahead_s=1) == []
    assert feed_interval(5, floor_s=10) == 10 and feed_interval(5, 1.0, floor_s=MIN_INTERVAL_S) == 60
