"""Core CLI commands: demo, newsroom, run, search, export."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import metrics
from .config import Config, Settings, load_config, save_feeds_file
from .errors import InputError
from .exitcodes import OK
from .metrics_server import add_arguments as add_metrics_arguments
from .metrics_server import with_metrics

__all__ = ["register", "demo_feeds_file"]

log = logging.getLogger(__name__)

# The demo prefers these ports so its URLs (and so its document ids) are the same on every
# run, which is what makes a second `make run` add nothing; it falls back to free ports.
DEMO_PORT = 8631
# After a pass, keep delivering alerts whose channel asked us to retry (Slack 429, SMTP 4xx) this long.
DELIVER_WAIT = 60.0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="run the whole path once against the built-in sample newsroom")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--port", type=int, default=DEMO_PORT,
                   help=f"first port of the sample sites (default {DEMO_PORT}; the same port on every run keeps "
                        "document ids stable)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("newsroom", help="serve the sample newsroom alone, printing its feed URLs")
    p.add_argument("--port", type=int, default=None, help="port of the first site (others follow)")
    p.set_defaults(func=cmd_newsroom)

    p = sub.add_parser("run", help="poll the configured feeds (forever, or --once)")
    p.add_argument("--once", action="store_true", help="one pass, then exit")
    p.add_argument("--json", action="store_true", help="print each pass's summary as JSON")
    add_metrics_arguments(p)
    p.set_defaults(func=with_metrics(cmd_run, stages=lambda args: ("enrich", "alert", "index")))

    p = sub.add_parser("search", help="full-text search of the index (knows every catalogue spelling)")
    p.add_argument("query", nargs="?", default="", help='words, "phrases", OR, -excluded; place and actor '
                   "names match every spelling and the documents tagged with them")
    p.add_argument("--topic", help="only documents that fired this watch topic")
    p.add_argument("--entity", help="only documents mentioning this entity id")
    p.add_argument("--since", type=_date, help="published on or after (YYYY-MM-DD)")
    p.add_argument("--until", type=_date, help="published before (YYYY-MM-DD)")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("export", help="every indexed document")
    p.add_argument("--jsonl", action="store_true", required=True, help="JSON lines (the only format)")
    p.add_argument("--output", "-o", type=Path, help="write to this file instead of stdout")
    p.set_defaults(func=cmd_export)


def _date(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None
    return parsed.date().isoformat() if len(value) <= 10 else parsed.isoformat()


def _print_summary(title: str, summary: dict[str, Any], out: Any = None) -> None:
    out = out or sys.stdout
    ing = summary["ingest"]
    dr = summary.get("drain") or {}
    print(title, file=out)
    print(f"  feeds polled      {ing['feeds_polled']:>5}   (not modified {ing['feeds_not_modified']}, "
          f"failed {ing['feeds_failed']}, malformed {ing['feeds_malformed']})", file=out)
    print(f"  new articles      {ing['new_entries']:>5}   (fetched {ing['fetched']}, fetch failed "
          f"{ing['fetch_failed']})", file=out)
    print(f"  extracted         {ing['extracted']:>5}   (not extracted {ing['not_extracted']})", file=out)
    print(f"  published         {ing['published']:>5}", file=out)
    if dr:
        print(f"  tagged            {dr['enriched']:>5}", file=out)
        print(f"  indexed           {dr['indexed']:>5}   (already indexed {dr['already_indexed']}, "
              f"dead-lettered {dr['deadlettered']})", file=out)
        print(f"  alerts            {dr['alerts_raised']:>5}", file=out)
    reasons = {k: v for k, v in ing.get("outcomes", {}).items()}
    if reasons:
        print("  outcomes          " + ", ".join(f"{k}={v}" for k, v in sorted(reasons.items())), file=out)


def _progress() -> Any:
    """A one-line progress display on a terminal's stderr; None when stderr is not a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(stage: str, done: int, total: int) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\r{stage:<8} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}{end}")
        sys.stderr.flush()

    return show


def _print_alerts(alerts: list[Any]) -> None:
    from .alerts import format_alert_line

    if not alerts:
        print("no new alerts")
        return
    print(f"{len(alerts)} new alert(s):")
    for a in alerts:
        print("  " + format_alert_line(a))


def _demo_config(config: Config, feeds: list[Any]) -> Config:
    s = config.settings.model_copy(deep=True)
    # Our own sample servers on loopback: allow them, and don't wait between requests.
    s.fetch.allow_hosts = sorted({*s.fetch.allow_hosts, "127.0.0.1", "localhost"})
    s.fetch.delay_seconds = min(s.fetch.delay_seconds, 0.05)
    return Config(settings=s, feeds=feeds, watchlist=config.watchlist)


DEMO_FEEDS_COMMENT = """The sample newsroom's feeds, written by `python -m pipeline demo` on every run (do not edit).
Point PIPELINE_FEEDS here so that `feeds`, `status` and the web page's Feeds page know them:
  PIPELINE_FEEDS=<this file> python -m pipeline serve
The newsroom stops when the demo ends, so a `run` over this file finds the feeds down."""


def demo_feeds_file(settings: Settings) -> Path:
    """Where the demo lists the feeds it polled: ``$PIPELINE_DATA_DIR/demo-feeds.yaml``."""
    return settings.data_dir / "demo-feeds.yaml"


def cmd_demo(args: argparse.Namespace) -> int:
    from .jobs import run_once
    from .newsroom import Newsroom

    config = load_config()
    try:
        room = Newsroom(port=args.port)
        room.start()
    except OSError:
        log.warning("demo ports from %d busy; using free ports (document ids will differ from earlier runs)",
                    args.port)
        room = Newsroom(port=0)
        room.start()
    try:
        demo = _demo_config(config, room.feeds_config())
        feeds_file = demo_feeds_file(demo.settings)
        save_feeds_file(feeds_file, demo.feeds, DEMO_FEEDS_COMMENT)
        if not args.json:
            print(f"sample newsroom on {room.base_url} ({len(demo.feeds)} feeds, listed in {feeds_file}); "
                  f"data in {demo.settings.data_dir}")
        started = time.time()
        summary = run_once(demo, progress=_progress(), deliver_wait=DELIVER_WAIT)
    finally:
        room.stop()
    report = _report(demo, summary.to_dict(), started)
    if args.json:
        print(json.dumps({**summary.to_dict(), "report": report.to_dict()}, indent=2, ensure_ascii=False))
        return report.exit_code
    _print_summary("demo summary", summary.to_dict())
    _print_alerts(summary.drain.alerts if summary.drain else [])
    _print_report(report)
    return report.exit_code


def _report(config: Config, summary: dict[str, Any], started: float) -> Any:
    """The pass's :class:`~pipeline.passreport.PassReport` (delivery state only when it drained)."""
    from .passreport import delivery_state, pass_report

    drained = summary.get("drain") is not None
    return pass_report(summary["ingest"], delivery_state(config.settings, started) if drained else None)


def _print_report(report: Any) -> None:
    for line in report.lines():
        print("  " + line)


def cmd_newsroom(args: argparse.Namespace) -> int:
    from .newsroom import serve_forever

    return int(serve_forever(args.port) or 0)


def cmd_run(args: argparse.Namespace) -> int:
    from .alerts.idle import IdleDelivery
    from .state import StateStore

    config = load_config()
    if not config.feeds:
        path = config.settings.feeds_file or config.settings.config_dir / "feeds.yaml"
        raise InputError(f"{path}: feeds: no feeds configured (set PIPELINE_FEEDS or add feeds; try `demo`)")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    store = StateStore(config.settings.state_db)
    # Between passes of a continuous run, owed alerts are retried on their own schedule (no 60 s
    # wait after each pass); the alert worker does that on Kafka.
    idle = IdleDelivery(config) if not args.once and config.settings.bus == "sqlite" else None
    try:
        return _run_passes(args, config, store, stop, idle)
    finally:
        if idle is not None:
            idle.close()
        store.close()


def _run_passes(args: argparse.Namespace, config: Config, store: Any, stop: threading.Event,
                idle: Any) -> int:
    from .jobs import drain, ingest

    while not stop.is_set():
        metrics.beat()
        due = config.feeds if args.once else store.due_feeds(
            config.feeds, datetime.now(UTC), config.settings.poll_interval_seconds
        )
        code = OK
        if due:
            started = time.time()
            ing = ingest(config, due, progress=_progress())
            dr = drain(config, stop=stop, deliver_wait=0.0 if idle else DELIVER_WAIT) \
                if config.settings.bus == "sqlite" else None
            summary = {"ingest": ing.to_dict(), "drain": dr.to_dict() if dr else None}
            report = _report(config, summary, started)
            code = report.exit_code
            if args.json:
                print(json.dumps({**summary, "report": report.to_dict()}, ensure_ascii=False), flush=True)
            else:
                _print_summary(f"pass at {datetime.now(UTC):%Y-%m-%d %H:%M:%S}Z", summary)
                if dr:
                    _print_alerts(dr.alerts)
                _print_report(report)
                sys.stdout.flush()
        _check_feed_health(config)
        if args.once:
            return code
        if stop.is_set():
            return OK
        # wake up often enough to catch the next due feed, and to stop promptly
        wait = min(60.0, config.settings.poll_interval_seconds)
        idle.wait(stop, wait) if idle is not None else stop.wait(wait)
    return 0


def _check_feed_health(config: Config) -> None:
    """Raise (and send) the ops alerts about feeds that went down or recovered; never fails the run."""
    from .alerts.ops import check_feeds
    from .errors import ConfigError, PipelineError

    try:
        check_feeds(config)
    except ConfigError:
        raise
    except PipelineError as exc:
        log.warning("feed health check: %s", exc)


def cmd_search(args: argparse.Namespace) -> int:
    from .enrich import Tagger
    from .index import open_index
    from .search import search_documents

    config = load_config()
    tagger = Tagger.load(watchlist=config.watchlist, overlay=config.settings.catalogue_overlay)
    index = open_index(config.settings)
    try:
        hits = search_documents(index, args.query, tagger=tagger, topic=args.topic, entity=args.entity,
                                since=args.since, until=args.until, limit=args.limit)
    finally:
        index.close()
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print("no results")
        return 0
    for i, h in enumerate(hits, 1):
        topics = f" [{', '.join(h.topics)}]" if h.topics else ""
        print(f"{i:>2}. {h.title or '(untitled)'}{topics}")
        print(f"    {h.source} · {h.published or 'undated'} · {h.url}")
        if h.snippet:
            print(f"    {h.snippet[:240]}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .config import load_settings
    from .index import open_index

    keys = ("id", "url", "title", "text", "published", "entities", "topics", "source", "fetched_at")
    index = open_index(load_settings())
    try:
        write_jsonl(({k: doc.get(k) for k in keys} for doc in index.export()), args.output, "documents")
    finally:
        index.close()
    return 0


def write_jsonl(rows: Iterable[dict[str, Any]], output: Path | None, what: str) -> int:
    """Write ``rows`` as JSON lines to ``output`` (stdout when None); say how many on stderr for a file."""
    out = output.open("w", encoding="utf-8") if output else sys.stdout
    n = 0
    try:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    finally:
        if output:
            out.close()
    if output:
        print(f"exported {n} {what} to {output}", file=sys.stderr)
    return n
