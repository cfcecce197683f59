"""Core CLI commands: demo, newsroom, run, search, export."""

from __future__ import annotations

import argparse
import json
import logging
import sys
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

MAX_SEARCH_LIMIT = 10_000  # Elasticsearch's default max_result_window; plenty for a terminal

__all__ = ["register", "demo_feeds_file"]

log = logging.getLogger(__name__)

# The demo prefers these ports so its URLs (and so its document ids) are the same on every
# run, which is what makes a second `make run` add nothing; it falls back to free ports.
DEMO_PORT = 8631
# After a pass, keep delivering alerts whose channel asked us to retry (Slack 429, SMTP 4xx) this long.
DELIVER_WAIT = 60.0
#: a continuous run's pass also polls the feeds due within this many seconds (never before their floor),
#: so that feeds polled together stay together instead of each waiting for the pass before it to end
PASS_AHEAD_S = 1.0


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
    p.add_argument("--wait", action="store_true",
                   help="if another run holds this data directory, wait for it instead of exiting 75")
    add_metrics_arguments(p)
    p.set_defaults(func=with_metrics(cmd_run, stages=lambda args: ("enrich", "alert", "index")))

    p = sub.add_parser("search", help="full-text search of the index (knows every catalogue spelling)")
    p.add_argument("query", nargs="?", default="", help='words, "phrases", OR, -excluded; place and actor '
                   "names match every spelling and the documents tagged with them")
    p.add_argument("--topic", help="only documents that fired this watch topic")
    p.add_argument("--entity", help="only documents mentioning this entity id")
    p.add_argument("--since", type=_date, help="published on or after (YYYY-MM-DD)")
    p.add_argument("--until", type=_date, help="published before (YYYY-MM-DD)")
    p.add_argument("--limit", type=_limit, default=20, help=f"most results (1 to {MAX_SEARCH_LIMIT}, default 20)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("export", help="every indexed document")
    p.add_argument("--jsonl", action="store_true", required=True, help="JSON lines (the only format)")
    p.add_argument("--output", "-o", type=Path, help="write to this file instead of stdout")
    p.set_defaults(func=cmd_export)


def _limit(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_SEARCH_LIMIT:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {MAX_SEARCH_LIMIT}, got {value!r}")
    return n


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


def _stopped_line(stopper: Any, ing: dict[str, Any]) -> str:
    left = []
    if ing.get("feeds_not_polled"):
        left.append(f"{ing['feeds_not_polled']} feeds not polled")
    if ing.get("left_for_next_run"):
        left.append(f"{ing['left_for_next_run']} new articles not fetched")
    rest = f"; left for the next run: {', '.join(left)}" if left else ""
    return (f"newswatch: stopped by {stopper.name}: finished and committed the work in flight "
            f"({ing.get('published', 0)} articles published){rest}")


def cmd_demo(args: argparse.Namespace) -> int:
    from .guide import alert_destinations, next_steps
    from .jobs import run_once
    from .newsroom import Newsroom
    from .preflight import check_start
    from .progress import terminal_progress
    from .runlock import hold
    from .stopping import StopOnSignals

    config = load_config()
    check_start(config)
    stages = ("enrich", "alert", "index") if config.settings.bus == "sqlite" else ()
    with StopOnSignals("demo") as stopper, hold(config.settings.data_dir, "demo", run=True, stages=stages):
        try:
            room = Newsroom(port=args.port)
            room.start()
        except OSError:
            log.warning("demo ports from %d busy; using free ports (document ids will differ from earlier runs)",
                        args.port)
            room = Newsroom(port=0)
            room.start()
        progress = terminal_progress()
        try:
            demo = _demo_config(config, room.feeds_config())
            feeds_file = demo_feeds_file(demo.settings)
            save_feeds_file(feeds_file, demo.feeds, DEMO_FEEDS_COMMENT)
            if not args.json:
                print(f"sample newsroom on {room.base_url} ({len(demo.feeds)} feeds, listed in {feeds_file}); "
                      f"data in {demo.settings.data_dir}", flush=True)
            started = time.time()
            summary = run_once(demo, progress=progress, deliver_wait=DELIVER_WAIT, stop=stopper.event)
        finally:
            if progress is not None:
                progress.clear()
            room.stop()
    report = _report(demo, summary.to_dict(), started)
    if args.json:
        print(json.dumps({**summary.to_dict(), "report": report.to_dict()}, indent=2, ensure_ascii=False))
    else:
        _print_summary("demo summary", summary.to_dict())
        _print_alerts(summary.drain.alerts if summary.drain else [])
        _print_report(report)
        print()
        print(alert_destinations(config.settings))
        print("try next:")
        for line in next_steps(config.settings, demo_feeds_file(demo.settings)):
            print("  " + line)
    if stopper.signum:
        print(_stopped_line(stopper, summary.ingest.to_dict()), file=sys.stderr)
        return stopper.exit_code
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
    from .preflight import check_start
    from .runlock import hold
    from .state import StateStore
    from .stopping import StopOnSignals

    config = load_config()
    if not config.feeds:
        path = config.settings.feeds_file or config.settings.config_dir / "feeds.yaml"
        raise InputError(f"{path}: feeds: no feeds configured (set PIPELINE_FEEDS or add feeds; try `demo`)")
    check_start(config)
    stages = ("enrich", "alert", "index") if config.settings.bus == "sqlite" else ()
    with StopOnSignals("run") as stopper, \
            hold(config.settings.data_dir, "run", run=True, stages=stages, wait=args.wait, stop=stopper.event,
                 on_wait=lambda msg: print(f"newswatch: {msg}", file=sys.stderr, flush=True)), \
            StateStore(config.settings.state_db) as store:
        # Between passes of a continuous run, owed alerts are retried on their own schedule (no 60 s
        # wait after each pass); the alert worker does that on Kafka.
        idle = IdleDelivery(config) if not args.once and config.settings.bus == "sqlite" else None
        try:
            return _run_passes(args, config, store, stopper, idle)
        finally:
            if idle is not None:
                idle.close()


def _run_passes(args: argparse.Namespace, config: Config, store: Any, stopper: Any, idle: Any) -> int:
    """The passes of ``run``: one with ``--once`` (its exit code is the pass report's), else until stopped.
    The passes share one session: connections, robots.txt, extraction processes and stages carry over."""
    from .session import RunSession

    with RunSession(config) as session:
        return _passes(args, config, store, stopper, idle, session)


def _passes(args: argparse.Namespace, config: Config, store: Any, stopper: Any, idle: Any, session: Any) -> int:
    from .progress import pass_line, terminal_progress

    ingest, drain = session.ingest, session.drain

    stop = stopper.event
    code = OK
    interrupted = False  # a signal during a pass (between passes a continuous run just ends, exit 0)
    while not stop.is_set():
        metrics.beat()
        due = config.feeds if args.once else store.due_feeds(
            config.feeds, datetime.now(UTC), config.settings.poll_interval_seconds,
            min_interval_s=config.settings.feeds.min_interval_seconds, ahead_s=PASS_AHEAD_S,
        )
        code = OK
        if due:
            started = time.time()
            wait = 0.0 if idle is not None else DELIVER_WAIT
            summary, alerts = _one_pass(config, due, stop, ingest, drain, terminal_progress(), wait)
            report = _report(config, summary, started)
            code = report.exit_code
            if args.json:
                print(json.dumps({**summary, "report": report.to_dict()}, ensure_ascii=False), flush=True)
            elif args.once:
                _print_summary(f"pass at {datetime.now(UTC):%Y-%m-%d %H:%M:%S}Z", summary)
                if summary["drain"]:
                    _print_alerts(alerts)
                _print_report(report)
            else:
                print(pass_line(summary, datetime.now(UTC)))
                if code != OK:  # one line per pass, and what did not go through when something did not
                    _print_report(report)
            sys.stdout.flush()
            if stopper.signum:
                interrupted = True
                print(_stopped_line(stopper, summary["ingest"]), file=sys.stderr)
        _check_feed_health(config)
        if args.once or stop.is_set():
            break
        # wake up when the next feed is due (at most a minute from now), and stop promptly
        seconds = _until_next_due(config, store)
        idle.wait(stop, seconds) if idle is not None else stop.wait(seconds)
    if interrupted:
        return int(stopper.exit_code)
    return code if args.once else OK


def _until_next_due(config: Config, store: Any) -> float:
    """Seconds until the next configured feed is due: at least a quarter second, at most a minute."""
    settings = config.settings
    next_at = store.next_due_at(config.feeds, settings.poll_interval_seconds,
                                min_interval_s=settings.feeds.min_interval_seconds)
    return 60.0 if next_at is None else min(60.0, max(0.25, next_at - time.time()))


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


def _one_pass(config: Config, due: list[Any], stop: Any, ingest: Any, drain: Any, progress: Any,
              deliver_wait: float) -> tuple[dict[str, Any], list[Any]]:
    """ingest + (on the SQLite bus) drain; after a stop, what was published is drained without delivery waits.
    Returns the summary as a dict and the new alerts."""
    try:
        ing = ingest(config, due, progress=progress, stop=stop)
    finally:
        if progress is not None:
            progress.clear()
    dr = None
    if config.settings.bus == "sqlite":
        dr = drain(config, deliver_wait=0.0 if stop.is_set() else deliver_wait)
    return {"ingest": ing.to_dict(), "drain": dr.to_dict() if dr else None}, (dr.alerts if dr else [])


def _open_index_to_read(settings: Any) -> Any:
    """The index of an existing data directory (never a new, empty ./var: say where we looked instead)."""
    from .index import open_index
    from .preflight import require_data_dir

    if settings.index == "sqlite":
        require_data_dir(settings)
    return open_index(settings)


def cmd_search(args: argparse.Namespace) -> int:
    from .config import load_settings, load_watchlist
    from .enrich import Tagger
    from .preflight import index_location
    from .search import search_documents

    settings = load_settings()
    index = _open_index_to_read(settings)  # first: a missing data directory is the first thing to say
    try:
        tagger = Tagger.load(watchlist=load_watchlist(settings), overlay=settings.catalogue_overlay)
        hits = search_documents(index, args.query, tagger=tagger, topic=args.topic, entity=args.entity,
                                since=args.since, until=args.until, limit=args.limit)
        searched = index.count() if not hits else 0
    finally:
        index.close()
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print(f"no results among {searched} documents in {index_location(settings)}")
        return 0
    for i, h in enumerate(hits, 1):
        topics = f" [{', '.join(h.topics)}]" if h.topics else ""
        print(f"{i:>2}. {h.title or '(untitled)'}{topics}")
        print(f"    {h.source} · {h.published or 'undated'} · {h.url}")
        if h.snippet:
            print(f"    {h.snippet[:240]}")
    return 0


def _open_output(path: Path) -> Any:
    """``path`` opened for writing; InputError (one line) for a missing folder, a directory, no permission."""
    if path.is_dir():
        raise InputError(f"--output {path}: is a directory; give a file name")
    if not path.parent.is_dir():
        raise InputError(f"--output {path}: folder {path.parent} does not exist")
    try:
        return path.open("w", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--output {path}: cannot write: {exc.strerror or exc}") from None


def cmd_export(args: argparse.Namespace) -> int:
    from .config import load_settings

    keys = ("id", "url", "title", "text", "published", "entities", "topics", "source", "fetched_at")
    if args.output:
        _open_output(args.output).close()  # a bad path is one line before anything is read
    index = _open_index_to_read(load_settings())
    try:
        write_jsonl(({k: doc.get(k) for k in keys} for doc in index.export()), args.output, "documents")
    finally:
        index.close()
    return 0


def write_jsonl(rows: Iterable[dict[str, Any]], output: Path | None, what: str) -> int:
    """Write ``rows`` as JSON lines to ``output`` (stdout when None); say how many on stderr for a file.
    A missing folder, a directory or an unwritable path is one line (InputError)."""
    out = _open_output(output) if output else sys.stdout
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
