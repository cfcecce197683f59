"""Daily housekeeping: prune fetch state, report dead letters and failing feeds, expire old documents.

:func:`run_maintenance` is a plain function (the ``news_maintenance`` DAG task and tests
call it); it returns a JSON-serialisable report and records it as a ``maintenance`` run
in the state store, so the next run can say how many dead letters are new.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from .config import Config

__all__ = ["run_maintenance", "problems", "FAILING_FEED_HOURS", "RUN_KIND"]

log = logging.getLogger(__name__)

FAILING_FEED_HOURS = 24.0  # a feed failing continuously this long is reported
RUN_KIND = "maintenance"


def run_maintenance(config: Config, *, now: datetime | None = None,
                    failing_hours: float = FAILING_FEED_HOURS) -> dict[str, Any]:
    """Prune, report and expire; return the report.

    * state: outcomes, runs and seen entries older than ``fetch_state_retention_days``,
      and (when feeds are configured) the state of feeds no longer configured;
    * ``deadletter``: messages on ``news.deadletter`` now, and how many arrived since
      the previous maintenance run;
    * ``failing_feeds``: feeds failing continuously for ``failing_hours`` or more;
    * index: documents dated before ``now - retention_days`` are deleted.

    Backend failures raise the pipeline's errors (the DAG task retries).
    """
    from .bus import TOPIC_DEADLETTER, open_bus
    from .index import open_index
    from .state import StateStore

    settings = config.settings
    now = now or datetime.now(UTC)
    report: dict[str, Any] = {"at": now.isoformat(timespec="seconds")}

    with StateStore(settings.state_db) as store:
        keep = [f.url for f in config.feeds] or None  # an empty feed list never wipes all feed state
        report["state_rows_pruned"] = store.prune(settings.fetch_state_retention_days, keep_feeds=keep)
        report["failing_feeds"] = store.failing_feeds(failing_hours)
        previous = store.last_runs(RUN_KIND, 1)

        bus = open_bus(settings)
        try:
            stats = {s.topic: s.messages for s in bus.stats(())}
        finally:
            bus.close()
        dead = int(stats.get(TOPIC_DEADLETTER, 0))
        before = previous[0]["summary"].get("deadletter", {}).get("messages") if previous else None
        report["deadletter"] = {"messages": dead, "new": dead - int(before) if before is not None else dead}

        cutoff = (now - timedelta(days=settings.retention_days)).date().isoformat()
        index = open_index(settings)
        try:
            report["index_deleted"] = index.delete_older_than(cutoff)
            report["index_documents"] = index.count()
        finally:
            index.close()
        report["index_cutoff"] = cutoff
        store.record_run(RUN_KIND, report)

    for feed in report["failing_feeds"]:
        log.warning("feed %s failing for %.1f h (%d failures): %s", feed["url"], feed["hours"],
                    feed["consecutive_failures"], feed["last_error"])
    if report["deadletter"]["new"]:
        log.warning("topic %s: %d new dead letters (%d in all)", TOPIC_DEADLETTER, report["deadletter"]["new"], dead)
    log.info("maintenance: pruned=%d index_deleted=%d (before %s) failing_feeds=%d deadletter=%d",
             report["state_rows_pruned"], report["index_deleted"], cutoff, len(report["failing_feeds"]), dead)
    return report


def problems(report: Mapping[str, Any]) -> list[str]:
    """Human-readable lines for what ops should look at in a maintenance report (empty: all well)."""
    lines: list[str] = []
    dead = report.get("deadletter") or {}
    if dead.get("new"):
        lines.append(f"{dead['new']} new dead letters ({dead.get('messages', 0)} in all)")
    failing = report.get("failing_feeds") or []
    if failing:
        worst = failing[0]
        lines.append(f"{len(failing)} feeds failing for a day or more (longest: {worst['url']}, {worst['hours']} h)")
    return lines
