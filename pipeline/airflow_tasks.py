"""The bodies of the newswatch DAG tasks: one function per task, called from ``dags/``.

Each function builds its configuration with :func:`pipeline.airflow_support.task_config`
(environment + Airflow connections/Variables), calls the pipeline and returns a small
JSON-serialisable dict (the task's XCom). They hold no Airflow logic, so they also run
outside Airflow; ``env`` (default ``os.environ``) and the lookups are injectable.

The heavy pipeline modules (fetching, extraction, bus, index) are imported inside the
functions: importing this module costs nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .airflow_support import aggregate_summaries, batch_limits, ops_notifiers, pipeline_env, plan_batches, task_config
from .config import load_config
from .errors import ConfigError, InputError, PipelineError

if TYPE_CHECKING:
    from .config import Config

__all__ = ["plan_ingest", "ingest_batch", "finish_ingest_run", "run_backfill", "maintenance_task", "send_digests"]

log = logging.getLogger(__name__)

RUN_KIND = "dag_ingest"  # StateStore run kind of a whole news_ingest DAG run (ingest() records each batch)


def plan_ingest(
    *, force: bool = False, now: datetime | None = None, env: Mapping[str, str] | None = None, **lookups: Any
) -> list[list[dict[str, Any]]]:
    """Task ``plan``: the due feeds (all configured feeds when ``force``), split into batches."""
    from .state import StateStore

    merged = pipeline_env(env, **lookups)
    config = load_config(env=merged)
    batch_size, max_batches = batch_limits(merged)
    if force:
        due = list(config.feeds)
    else:
        with StateStore(config.settings.state_db) as store:
            due = store.due_feeds(config.feeds, now or datetime.now(UTC), config.settings.poll_interval_seconds,
                                  min_interval_s=config.settings.feeds.min_interval_seconds)
    batches = plan_batches(due, batch_size=batch_size, max_batches=max_batches)
    log.info("plan: feeds configured=%d due=%d batches=%d force=%s", len(config.feeds), len(due), len(batches), force)
    if not config.feeds:
        path = config.settings.feeds_file or config.settings.config_dir / "feeds.yaml"
        log.warning("plan: NO FEEDS CONFIGURED in %s: this run ingests nothing. Add feeds there, or point "
                    "PIPELINE_FEEDS (or the Airflow Variable newswatch_feeds) at a feeds file.", path)
    return batches


def ingest_batch(batch: Sequence[Mapping[str, Any]], *, env: Mapping[str, str] | None = None,
                 **lookups: Any) -> dict[str, Any]:
    """Task ``ingest_batch``: poll, fetch, extract and publish one batch of feeds (``FeedConfig`` dicts)."""
    from .config import FeedConfig
    from .jobs import ingest

    config = task_config(env, **lookups)
    feeds = [FeedConfig.model_validate(f) for f in batch]
    summary = ingest(config, feeds).to_dict()
    log.info("batch done feeds=%d first=%s published=%s", len(feeds), feeds[0].url if feeds else "-",
             summary.get("published"))
    return summary


def _drain_embedded(config: Config, *, alert_on_replay: bool = False) -> dict[str, Any] | None:
    """On the embedded bus, run enrich/alert/index until idle; on Kafka the workers do it (None)."""
    if config.settings.bus != "sqlite":
        return None
    from .jobs import drain

    result = drain(config, alert_on_replay=alert_on_replay).to_dict()
    alerts = result.pop("alerts", [])
    result["alert_ids"] = [a["id"] for a in alerts]
    return result


def finish_ingest_run(results: Sequence[Mapping[str, Any]], *, env: Mapping[str, str] | None = None,
                      **lookups: Any) -> dict[str, Any]:
    """Task ``summarize``: drain (embedded backends only), record the run summary and return it.

    The summary: ``batches``, ``feeds_polled``, ``feeds_not_modified``, ``feeds_failed``,
    ``new_entries``, ``published`` ... (sums over the batches) and ``drain`` (``None`` on Kafka).
    """
    from .alerts.ops import check_feeds
    from .passreport import delivery_state, pass_report
    from .state import StateStore

    config = task_config(env, **lookups)
    summary = aggregate_summaries(results)
    started = time.time()
    summary["drain"] = _drain_embedded(config)
    report = pass_report(summary, delivery_state(config.settings, started) if summary["drain"] is not None else None)
    summary["report"] = report.to_dict()
    with StateStore(config.settings.state_db) as store:
        store.record_run(RUN_KIND, summary)
    log.info("news_ingest run: batches=%d feeds_polled=%s failed=%s published=%s drain=%s", summary["batches"],
             summary.get("feeds_polled", 0), summary.get("feeds_failed", 0), summary.get("published", 0),
             summary["drain"])
    for line in report.lines():  # what was not read, fetched or delivered: a warning unless all went through
        log.log(logging.INFO if report.exit_code == 0 else logging.WARNING, "news_ingest run: %s", " ".join(line.split()))
    try:
        summary["ops_events"] = [e["id"] for e in check_feeds(config)]
    except ConfigError:
        raise
    except PipelineError as exc:  # the run's work is done; the next run checks the feeds again
        log.warning("news_ingest run: feed health check failed: %s", exc)
    return summary


def _parse_when(name: str, raw: Any) -> datetime | None:
    if raw in (None, ""):
        return None
    try:
        when = datetime.fromisoformat(str(raw).strip())
    except ValueError:
        raise InputError(f"param {name}: expected an ISO date or date-time, got {raw!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _strings(name: str, raw: Any) -> list[str]:
    if raw in (None, ""):
        return []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(u, str) for u in raw):
        raise InputError(f"param {name}: expected a list of URLs")
    urls = [u.strip() for u in raw if u.strip()]
    for u in urls:
        if not u.lower().startswith(("http://", "https://")):
            raise InputError(f"param {name}: not an http(s) URL: {u!r}")
    return urls


def run_backfill(params: Mapping[str, Any], *, env: Mapping[str, str] | None = None, **lookups: Any) -> dict[str, Any]:
    """Task ``backfill``: re-poll ``feeds`` and fetch ``urls`` (params), silenced unless ``alert``.

    Articles are published with ``replay = not alert``; on the embedded backends the
    stages are drained with ``alert_on_replay = alert``. Raises InputError (one line) on bad params.
    """
    from .config import FeedConfig
    from .jobs import ingest, ingest_urls

    feed_urls, urls = _strings("feeds", params.get("feeds")), _strings("urls", params.get("urls"))
    since, until = _parse_when("since", params.get("since")), _parse_when("until", params.get("until"))
    if since and until and since >= until:
        raise InputError(f"params since/until: empty window {since.isoformat()} .. {until.isoformat()}")
    if not feed_urls and not urls:
        raise InputError("params feeds/urls: give at least one feed URL or article URL")
    alert = bool(params.get("alert", False))
    config = task_config(env, **lookups)
    configured = {f.url: f for f in config.feeds}
    result: dict[str, Any] = {"alert": alert}
    if feed_urls:
        feeds = [configured.get(u) or FeedConfig(url=u) for u in feed_urls]
        result["feeds"] = ingest(config, feeds, force=True, replay=not alert, since=since, until=until).to_dict()
    if urls:
        result["urls"] = ingest_urls(config, urls, replay=not alert).to_dict()
    result["drain"] = _drain_embedded(config, alert_on_replay=alert)
    log.info("backfill: feeds=%d urls=%d alert=%s drain=%s", len(feed_urls), len(urls), alert, result["drain"])
    return result


def maintenance_task(*, env: Mapping[str, str] | None = None, **lookups: Any) -> dict[str, Any]:
    """Task ``maintenance``: :func:`pipeline.maintenance.run_maintenance`, problems sent to ops."""
    from .maintenance import problems, run_maintenance

    merged = pipeline_env(env, **lookups)
    report = run_maintenance(load_config(env=merged))
    found = problems(report)
    if found:
        text = "newswatch maintenance: " + "; ".join(found)
        for notifier in ops_notifiers(text, env=merged, **lookups):
            try:
                notifier.notify({})
            except Exception as exc:  # noqa: BLE001 - a report that cannot be sent must not fail housekeeping
                log.error("maintenance report via %s failed: %s", type(notifier).__name__, type(exc).__name__)
    return report


def send_digests(mode: str = "daily", *, env: Mapping[str, str] | None = None, **lookups: Any) -> dict[str, Any]:
    """Task ``send_daily_digests``: each watch topic's digest to its recipients via the alert notifiers."""
    from .alerts import AlertService

    config = task_config(env, **lookups)
    service = AlertService(config.settings, config.watchlist)
    try:
        result = service.send_digests(mode)
    finally:
        close = getattr(service, "close", None)
        if callable(close):
            close()
    summary = result.to_dict() if hasattr(result, "to_dict") else result
    out = summary if isinstance(summary, dict) else {"result": summary}
    log.info("digests mode=%s: %s", mode, out)
    return out

