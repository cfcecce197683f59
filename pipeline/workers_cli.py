"""``worker`` and ``status`` subcommands: long-running stage consumers and a bus/index overview.

``newswatch worker enrich|index|alert`` consumes the stage's input topics on the bus named
by the settings (SQLite or Kafka) until SIGTERM/SIGINT, which finishes and commits the
current batch before exiting (a second signal aborts; the batch is then redelivered).
``--until-idle`` drains what is there and exits (a one-off catch-up).

On Kafka a worker joins its stage's consumer group (``subscribe``), the way Kafka users
expect: start a second replica of a stage and the group splits the partitions between them;
when one dies, its partitions move to the others once the group's session timeout (10 s)
has passed, and they resume from its last commit. ``--all-partitions`` opts out: the worker
assigns itself every partition without joining (no rebalances, instant start) and must then
be the only one of its stage. ``--scale-out``, the old opt-in, is still accepted and changes
nothing. The SQLite bus has one partition per topic and no group coordinator: run one
worker per stage there (a second one would redo the same messages; harmless, since stages
are idempotent, but wasted).

``newswatch status`` prints messages per topic, each stage group's lag on its inputs, the
dead-letter count, the number of indexed documents and the feeds' health (``feeds`` has the detail).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from types import FrameType
from typing import Any

from .errors import PipelineError
from .metrics_server import add_arguments as add_metrics_arguments
from .metrics_server import with_metrics

__all__ = ["register", "cmd_worker", "cmd_status", "collect_status"]

log = logging.getLogger(__name__)

STAGES = ("enrich", "index", "alert")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("worker", help="run one stage as a long-lived consumer (enrich, index or alert)")
    p.add_argument("stage", choices=STAGES, help="which stage to run")
    p.add_argument("--max-records", type=_positive, default=100, help="largest batch per poll (default 100)")
    p.add_argument("--until-idle", action="store_true", help="exit once every input topic is drained")
    p.add_argument("--poll-timeout", type=float, default=1.0, help="seconds one poll waits for messages")
    p.add_argument("--all-partitions", action="store_true",
                   help="Kafka: read every partition without joining the consumer group (then run only one "
                        "worker of this stage); by default workers join the group and split the partitions")
    p.add_argument("--scale-out", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for scripts
    add_metrics_arguments(p)
    p.set_defaults(func=with_metrics(cmd_worker, stages=lambda args: [args.stage]))

    p = sub.add_parser("status", help="messages per topic, consumer lag per stage, dead letters, indexed documents")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=cmd_status)


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return n


def _install_stop_handlers(stop: threading.Event) -> dict[int, Any]:
    """SIGTERM/SIGINT set ``stop``; a second one raises KeyboardInterrupt. Returns the old handlers."""
    old: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.warning("worker: %s received; stopping after the current batch", signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            old[sig] = signal.signal(sig, handler)
    return old


def cmd_worker(args: argparse.Namespace) -> int:
    from .bus import open_bus
    from .config import load_config
    from .stages import build_stage
    from .worker import run_stage

    pipeline_log = logging.getLogger("pipeline")
    old_level = pipeline_log.level
    if pipeline_log.getEffectiveLevel() > logging.INFO:
        pipeline_log.setLevel(logging.INFO)  # a worker logs one line per batch
    try:
        return _run_worker(args, load_config, open_bus, build_stage, run_stage)
    finally:
        pipeline_log.setLevel(old_level)


def _open_worker_bus(args: argparse.Namespace, config: Any, open_bus: Any, stop: threading.Event) -> Any:
    """The worker's bus. On Kafka a broker that cannot be reached yet is waited for (a worker restarted
    while its broker restarts must not exit: a supervisor would restart it into the same wall); None if
    stopped meanwhile."""
    from .worker import StopRequested, retry_transient

    if config.settings.bus != "kafka":
        log.info("worker: SQLite bus (one partition per topic): run one %s worker", args.stage)
        return open_bus(config.settings)
    from .bus.kafka import KafkaBus

    try:
        return retry_transient("connecting to Kafka",
                               lambda: KafkaBus(config.settings.kafka, group_management=not args.all_partitions),
                               stop=stop, name=f"worker {args.stage}",
                               attempts=3 if args.until_idle else None)
    except StopRequested:
        return None


def _run_worker(args: argparse.Namespace, load_config: Any, open_bus: Any, build_stage: Any, run_stage: Any) -> int:
    from contextlib import nullcontext

    from .preflight import check_watchlist_entities, prepare_data_dir
    from .runlock import hold

    config = load_config()
    if config.settings.bus == "sqlite" or config.settings.index == "sqlite" or args.stage == "alert":
        prepare_data_dir(config.settings)
    if args.stage in ("enrich", "alert"):
        check_watchlist_entities(config.watchlist)
    # the SQLite bus allows one consumer per stage and data directory (see pipeline.runlock)
    lock = hold(config.settings.data_dir, f"worker {args.stage}", run=False, stages=(args.stage,)) \
        if config.settings.bus == "sqlite" else nullcontext()
    with lock:
        return _consume(args, config, open_bus, build_stage, run_stage)


def _consume(args: argparse.Namespace, config: Any, open_bus: Any, build_stage: Any, run_stage: Any) -> int:
    stop = threading.Event()
    old = _install_stop_handlers(stop)
    try:
        bus = _open_worker_bus(args, config, open_bus, stop)
        if bus is None:
            print(f"worker {args.stage}: stopped before the bus could be reached")
            return 0
        try:
            stage = build_stage(args.stage, config, bus)
            try:
                stats = run_stage(bus, stage, stop=stop, until_idle=args.until_idle, max_records=args.max_records,
                                  poll_timeout=args.poll_timeout)
            finally:
                stage.close()
        finally:
            bus.close()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    print(f"worker {args.stage}: {stats.batches} batches, {stats.processed} processed, "
          f"{stats.deadlettered} dead-lettered, {stats.retried} retried")
    return 0


def collect_status() -> dict[str, Any]:
    """Topic counts, per-stage lag, dead letters and index size, as a dict (for ``status --json``)."""
    from .bus import TOPIC_DEADLETTER, open_bus
    from .config import load_settings
    from .index import open_index
    from .preflight import require_data_dir
    from .stages import AlertStage, EnrichStage, IndexStage

    settings = load_settings()
    if settings.bus == "sqlite" or settings.index == "sqlite":
        require_data_dir(settings)
    stage_classes: dict[str, Any] = {"enrich": EnrichStage, "index": IndexStage, "alert": AlertStage}
    groups = {name: cls.group for name, cls in stage_classes.items()}
    bus = open_bus(settings)
    try:
        stats = {s.topic: s for s in bus.stats(list(groups.values()))}
    finally:
        bus.close()
    out: dict[str, Any] = {
        "bus": settings.bus,
        "topics": {t: s.messages for t, s in stats.items()},
        "lag": {
            name: {t: stats[t].lag.get(groups[name], 0) for t in cls.topics if t in stats}
            for name, cls in stage_classes.items()
        },
        "deadlettered": stats[TOPIC_DEADLETTER].messages if TOPIC_DEADLETTER in stats else 0,
        "index": {"backend": settings.index},
    }
    try:
        index = open_index(settings)
        try:
            out["index"]["documents"] = index.count()
        finally:
            index.close()
    except PipelineError as exc:
        out["index"]["error"] = str(exc)
    out["feeds"] = _feed_status(settings)
    return out


def _feed_status(settings: Any) -> dict[str, Any]:
    """Feed health counts and the feeds with a problem (``status`` shows them; ``feeds`` has the detail)."""
    from .config import Config, load_feeds, load_watchlist
    from .feedhealth import count_by_status, health_of

    try:
        config = Config(settings=settings, feeds=load_feeds(settings), watchlist=load_watchlist(settings))
        health = health_of(config)
    except PipelineError as exc:
        return {"error": str(exc)}
    return {**count_by_status(health),
            "problems": [{"url": h.url, "name": h.name, "status": h.status, "problem": h.problem, "alarm": h.alarm}
                         for h in health if h.problem]}


def cmd_status(args: argparse.Namespace) -> int:
    status = collect_status()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    out = sys.stdout
    print(f"bus: {status['bus']}", file=out)
    for topic, n in status["topics"].items():
        print(f"  {topic:<28} {n:>8} messages", file=out)
    print("consumer lag:", file=out)
    for stage, lags in status["lag"].items():
        detail = ", ".join(f"{t} {n}" for t, n in lags.items())
        print(f"  {stage:<8} {sum(lags.values()):>6}  ({detail})", file=out)
    print(f"dead-lettered: {status['deadlettered']}", file=out)
    idx = status["index"]
    if "error" in idx:
        print(f"index ({idx['backend']}): unavailable: {idx['error']}", file=out)
    else:
        print(f"index ({idx['backend']}): {idx['documents']} documents", file=out)
    feeds = status["feeds"]
    if "error" in feeds:
        print(f"feeds: unavailable: {feeds['error']}", file=out)
    else:
        print(f"feeds: {feeds['configured']} configured: {feeds['ok']} ok, {feeds['failing']} failing, "
              f"{feeds['silent']} silent, {feeds['new']} never polled", file=out)
        for p in feeds["problems"]:
            print(f"  {p['status']:<8} {p['name'] or p['url']}: {p['problem']}", file=out)
    return 0

