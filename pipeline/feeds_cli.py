"""``feeds [--json]``: each configured feed's health (:mod:`pipeline.feedhealth`), and whether ops were told."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .config import Settings, load_config
from .feedhealth import FeedHealth, count_by_status, health_of

__all__ = ["register", "cmd_feeds", "ops_states", "health_line"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("feeds", help="each feed: status, last success, last error and why, failures, next poll, "
                                     "items per day")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=cmd_feeds)


def ops_states(settings: Settings) -> dict[str, dict[str, Any]]:
    """Feed URL -> its ops alarm state, from the alert store (nothing if that store does not exist yet)."""
    if not settings.alerts_db.exists():
        return {}
    from .alerts.store import AlertStore

    store = AlertStore(settings.alerts_db)
    try:
        return store.ops_states()
    finally:
        store.close()


def _when(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%MZ") if t else "-"


def health_line(h: FeedHealth) -> str:
    """``failing  http://... : failing for 6.2 h (...)``: one line for a feed with a problem."""
    return f"{h.status:<8} {h.name or h.url}: {h.problem or h.status}"


def _table(health: Sequence[FeedHealth], ops: dict[str, dict[str, Any]]) -> str:
    lines = [f"{'status':<8} {'fails':>5}  {'last success':<17}  {'last error':<34}  {'next poll':<17}  "
             f"{'items/day':>9}  feed"]
    for h in health:
        err = f"{h.last_error_reason or 'error'} {_when(h.last_error_at)[5:]}" if h.last_error else "-"
        per_day = "-" if h.items_per_day is None else f"{h.items_per_day:.1f}"
        feed = f"{h.name} <{h.url}>" if h.name else h.url
        lines.append(f"{h.status:<8} {h.consecutive_failures:>5}  {_when(h.last_success):<17}  {err[:34]:<34}  "
                     f"{_when(h.next_poll):<17}  {per_day:>9}  {feed}")
        if h.problem:
            lines.append(f"{'':10}{h.problem}")
        if h.last_error and h.status != "failing":
            lines.append(f"{'':10}last error: {h.last_error[:200]}")
        state = ops.get(h.url)
        if state and state["state"] == "down":
            lines.append(f"{'':10}ops alerted (event {state['event_id']}); they hear again when it recovers")
    c = count_by_status(health)
    lines.append(f"{c['configured']} feeds: {c['ok']} ok, {c['failing']} failing, {c['silent']} silent, "
                 f"{c['new']} never polled")
    return "\n".join(lines) + "\n"


def cmd_feeds(args: argparse.Namespace) -> int:
    config = load_config()
    health = health_of(config)
    ops = ops_states(config.settings)
    if args.json:
        out = [{**h.to_dict(), "ops": ops.get(h.url, {}).get("state", "ok")} for h in health]
        json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    if not health:
        path = config.settings.feeds_file or config.settings.config_dir / "feeds.yaml"
        print(f"no feeds configured in {path}")
        return 0
    sys.stdout.write(_table(health, ops))
    return 0
