"""Feed health: how each configured feed is doing, as typed records.

:func:`feed_health` reads the run state (``state.sqlite3``) and returns one :class:`FeedHealth` per
configured feed; ``python -m pipeline feeds``, ``status``, the ops alerts
(:mod:`pipeline.alerts.ops`) and any web page are its clients. It only reads.

A feed is

* ``new``: never polled;
* ``failing``: its latest poll failed (unreachable, HTTP error, a body that is not a feed);
* ``silent``: it polls fine but has brought no new item for far longer than its usual rhythm:
  more than ``feed_silent_factor`` times its usual gap between new items, and at least
  ``feed_silent_min_hours``. The rhythm is the rate of new items over the last 14 days, not
  counting the backlog its first poll found; until it has brought ``MIN_ITEMS`` items that way
  it has no known rhythm and is never called silent;
* ``ok`` otherwise.

``alarm`` says the problem has lasted long enough to tell ops: failing for ``feed_failing_minutes``,
or silent at all (the silence threshold is already a duration).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from .config import Config, FeedConfig, Settings
from .state import MIN_INTERVAL_S, StateStore, feed_pace

__all__ = ["FeedHealth", "FeedStatus", "HealthRules", "feed_health", "health_of", "count_by_status",
           "RHYTHM_WINDOW_S", "BACKLOG_GRACE_S", "MIN_ITEMS"]

FeedStatus = Literal["ok", "failing", "silent", "new"]

RHYTHM_WINDOW_S = 14 * 86400.0  # the rhythm is measured over this window
BACKLOG_GRACE_S = 3600.0  # entries marked seen within this long of a feed's first entry are its backlog
MIN_ITEMS = 3  # new items (backlog excluded) needed before a rhythm is known


@dataclass(frozen=True)
class HealthRules:
    """When a feed counts as silent, and when a problem is old enough for an ops alert (seconds)."""

    failing_after_s: float = 6 * 3600.0
    silent_factor: float = 4.0
    silent_min_s: float = 6 * 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> HealthRules:
        ops = settings.ops
        return cls(failing_after_s=ops.feed_failing_minutes * 60.0, silent_factor=ops.feed_silent_factor,
                   silent_min_s=ops.feed_silent_min_hours * 3600.0)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat().replace("+00:00", "Z")


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True)
class FeedHealth:
    """One configured feed's health at ``checked_at``. Times are timezone-aware UTC datetimes."""

    url: str
    name: str
    status: FeedStatus
    checked_at: datetime
    last_polled: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None  # the latest failed poll's message (kept after the feed recovers)
    last_error_reason: str | None = None  # its short reason: timeout, http_503, malformed_feed, ...
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    next_poll: datetime | None = None
    items_per_day: float | None = None  # new items a day over the rhythm window (None: not measurable yet)
    usual_gap_s: float | None = None  # the usual time between new items, once the rhythm is known
    last_new_item: datetime | None = None
    alarm: bool = False  # the problem has lasted long enough to tell ops
    problem: str | None = None  # one line: what is wrong, since when

    @property
    def problem_since(self) -> datetime | None:
        """When the current problem began: the first failure, or the last new item of a silent feed."""
        if self.status == "failing":
            return self.failing_since
        if self.status == "silent":
            return self.last_new_item
        return None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, datetime):
                d[k] = _iso(v)
        d["problem_since"] = _iso(self.problem_since)
        return d


def _hours(seconds: float) -> str:
    return f"{seconds / 86400:.1f} days" if seconds >= 2 * 86400 else f"{seconds / 3600:.1f} h"


def _one(feed: FeedConfig, store_state: Any, arrivals: tuple[float, float, int] | None,
         error: tuple[float, str, str] | None, now: float, default_interval_s: float,
         rules: HealthRules, min_interval_s: float = MIN_INTERVAL_S) -> FeedHealth:
    checked = datetime.fromtimestamp(now, UTC)
    err_at, err_reason, err_text = error if error else (None, None, None)
    if store_state is None or store_state.last_polled is None:
        return FeedHealth(url=feed.url, name=feed.name, status="new", checked_at=checked, last_error=err_text,
                          last_error_reason=err_reason, last_error_at=_dt(err_at))
    st = store_state
    if st.consecutive_failures > 0 and not (err_at and st.failing_since and err_at >= st.failing_since):
        err_at, err_reason, err_text = st.last_polled, None, st.last_error  # the log has not caught up yet
    pace = feed_pace(feed, default_interval_s, min_interval_s)
    next_poll = st.last_polled + pace.interval(st.interval_factor, st.consecutive_failures, st.retry_after)
    per_day = gap = last_item = None
    if arrivals is not None:
        first, last, recent = arrivals
        last_item = last
        span = now - max(first + BACKLOG_GRACE_S, now - RHYTHM_WINDOW_S)
        if span >= BACKLOG_GRACE_S:
            per_day = recent * 86400.0 / span
            if recent >= MIN_ITEMS:
                gap = span / recent
    status: FeedStatus = "ok"
    alarm = False
    problem = None
    if st.consecutive_failures > 0:
        status = "failing"
        failing_for = now - (st.failing_since or now)
        alarm = failing_for >= rules.failing_after_s
        why = f"{err_reason}: {err_text}" if err_reason else (err_text or "unknown error")
        problem = f"failing for {_hours(failing_for)} ({st.consecutive_failures} failed polls): {why}"
    elif gap is not None and last_item is not None:
        quiet = now - last_item
        if quiet > max(rules.silent_factor * gap, rules.silent_min_s):
            status, alarm = "silent", True
            problem = f"no new item for {_hours(quiet)}; usually one every {_hours(gap)}"
    return FeedHealth(
        url=feed.url, name=feed.name, status=status, checked_at=checked, last_polled=_dt(st.last_polled),
        last_success=_dt(st.last_ok), last_error=err_text, last_error_reason=err_reason,
        last_error_at=_dt(err_at), consecutive_failures=st.consecutive_failures, failing_since=_dt(st.failing_since),
        next_poll=_dt(next_poll), items_per_day=None if per_day is None else round(per_day, 2),
        usual_gap_s=None if gap is None else round(gap, 1), last_new_item=_dt(last_item), alarm=alarm,
        problem=problem,
    )


def feed_health(store: StateStore, feeds: Sequence[FeedConfig], *, default_interval_s: float,
                rules: HealthRules | None = None, now: datetime | None = None,
                min_interval_s: float = MIN_INTERVAL_S) -> list[FeedHealth]:
    """The health of ``feeds`` (in their order) from the run state in ``store``; reads only."""
    rules = rules or HealthRules()
    ts = (now or datetime.now(UTC)).timestamp()
    states = {s.url: s for s in store.feed_states()}
    arrivals = store.feed_arrivals(ts - RHYTHM_WINDOW_S, BACKLOG_GRACE_S)
    errors = store.last_feed_errors()
    return [_one(f, states.get(f.url), arrivals.get(f.url), errors.get(f.url), ts, default_interval_s, rules,
                 min_interval_s) for f in feeds]


def health_of(config: Config, *, now: datetime | None = None) -> list[FeedHealth]:
    """:func:`feed_health` of the configured feeds, with the configured rules."""
    settings = config.settings
    with StateStore(settings.state_db) as store:
        return feed_health(store, config.feeds, default_interval_s=settings.poll_interval_seconds,
                           rules=HealthRules.from_settings(settings), now=now,
                           min_interval_s=settings.feeds.min_interval_seconds)


def count_by_status(health: Sequence[FeedHealth]) -> dict[str, int]:
    """``{"configured": n, "ok": n, "failing": n, "silent": n, "new": n, "alarm": n}``."""
    out = {"configured": len(health), "ok": 0, "failing": 0, "silent": 0, "new": 0, "alarm": 0}
    for h in health:
        out[h.status] += 1
        out["alarm"] += int(h.alarm)
    return out
