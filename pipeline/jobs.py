"""The main job, as plain functions the CLI, the DAGs and the benchmark call.

``ingest``  polls feeds, fetches new article pages (threads, per-host politeness),
            extracts them (worker processes), publishes articles to news.articles.raw
            in batches, then marks their feed entries seen and records every outcome.
``drain``   runs the enrich, alert and index stages until their input topics are idle
            (the embedded run; on Kafka the long-running workers do this).
``run_once`` = ingest + drain.

Crash safety: entries are marked seen only after their articles are published, and
stages commit only after their outputs are written, so a crash anywhere re-does work
that every later step absorbs (deterministic ids, create-if-absent writes).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from .bus import TOPIC_RAW, MessageBus, OutMessage, open_bus
from .config import Config, FeedConfig
from .errors import FetchError, PipelineError
from .extract import extract
from .feeds import FeedPoller
from .fetch import SafeFetcher
from .ids import canonical_url, doc_id
from .models import AlertRecord, Article, ExtractResult, FeedEntry, Outcome
from .state import StateStore

__all__ = ["IngestSummary", "DrainSummary", "RunSummary", "ingest", "ingest_urls", "drain", "run_once"]

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]


@dataclass
class IngestSummary:
    feeds_polled: int = 0
    feeds_not_modified: int = 0
    feeds_failed: int = 0
    feeds_malformed: int = 0
    new_entries: int = 0
    fetched: int = 0
    fetch_failed: int = 0
    extracted: int = 0
    not_extracted: int = 0
    published: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DrainSummary:
    enriched: int = 0
    indexed: int = 0
    already_indexed: int = 0
    alerts_raised: int = 0
    deadlettered: int = 0
    alerts: list[AlertRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["alerts"] = [a.to_dict() for a in self.alerts]
        return d


@dataclass
class RunSummary:
    ingest: IngestSummary
    drain: DrainSummary | None

    def to_dict(self) -> dict[str, Any]:
        return {"ingest": self.ingest.to_dict(), "drain": self.drain.to_dict() if self.drain else None}


def _now() -> datetime:
    return datetime.now(UTC)


def _extract_job(html: bytes, url: str, min_chars: int) -> ExtractResult:
    return extract(html, url, min_text_chars=min_chars)


def _pool(workers: int) -> cf.Executor:
    """Extraction processes. forkserver: never fork a process that has fetch threads running."""
    n = workers or os.cpu_count() or 1
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["pipeline.extract"])
    return cf.ProcessPoolExecutor(max_workers=n, mp_context=ctx)


def _in_window(entry: FeedEntry, since: datetime | None, until: datetime | None) -> bool:
    if since is None and until is None:
        return True
    if not entry.published:
        return False
    try:
        when = datetime.fromisoformat(entry.published)
    except ValueError:
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (since is None or when >= since) and (until is None or when < until)


class _Publisher:
    """Collects articles and publishes them in batches; marks entries seen after each batch."""

    def __init__(self, bus: MessageBus, store: StateStore, batch_size: int) -> None:
        self.bus = bus
        self.store = store
        self.batch_size = batch_size
        self.pending: list[tuple[Article, list[FeedEntry]]] = []
        self.published = 0
        self.published_ids: set[str] = set()

    def add(self, article: Article, entries: list[FeedEntry]) -> None:
        self.pending.append((article, entries))
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        fresh = [(a, e) for a, e in self.pending if a.id not in self.published_ids]
        self.bus.publish(TOPIC_RAW, [OutMessage(key=a.id, value=a.to_dict()) for a, _ in fresh])
        self.published += len(fresh)
        self.published_ids.update(a.id for a, _ in fresh)
        self.store.mark_seen([e for _, entries in self.pending for e in entries])
        log.info("published batch topic=%s articles=%d", TOPIC_RAW, len(fresh))
        self.pending.clear()


def _article(entries: list[FeedEntry], final_url: str, res: ExtractResult, replay: bool) -> Article:
    entry = entries[0]
    url = canonical_url(res.canonical_url or final_url or entry.url)
    return Article(
        id=doc_id(url),
        url=url,
        title=res.title or entry.title,
        text=res.text,
        fetched_at=_now().isoformat(timespec="seconds"),
        feed_url=entry.feed_url,
        feed_name=entry.feed_name,
        source=res.site_name or urlsplit(url).hostname or "",
        guid=entry.guid,
        final_url=final_url,
        authors=res.authors,
        published=res.published or entry.published,
        language=res.language,
        replay=replay,
    )


def _fetch_and_extract(
    config: Config,
    groups: dict[str, list[FeedEntry]],
    fetcher: SafeFetcher,
    publisher: _Publisher,
    summary: IngestSummary,
    outcomes: list[Outcome],
    replay: bool,
    progress: ProgressFn | None,
) -> None:
    """Fetch every grouped entry concurrently, extract in processes, hand articles to the publisher."""
    settings = config.settings
    transient_fail: list[str] = []
    total = len(groups)
    done = 0
    with _pool(settings.extract.workers) as pool, cf.ThreadPoolExecutor(
        max_workers=max(1, min(settings.fetch.concurrency, total)), thread_name_prefix="fetch"
    ) as threads:
        fetches = {threads.submit(fetcher.fetch, url, robots=settings.fetch.respect_robots): url for url in groups}
        extractions: dict[cf.Future[ExtractResult], tuple[str, str]] = {}
        for fut in cf.as_completed(fetches):
            url = fetches[fut]
            try:
                resp = fut.result()
            except FetchError as exc:
                summary.fetch_failed += 1
                outcomes.append(Outcome("fetch", url, exc.reason, str(exc), ok=False))
                if exc.transient:
                    transient_fail.append(url)  # try again next poll: not marked seen
                else:
                    publisher.store.mark_seen(groups[url])
                continue
            summary.fetched += 1
            ex = pool.submit(_extract_job, resp.body, resp.final_url, settings.extract.min_text_chars)
            extractions[ex] = (url, resp.final_url)
        for ex in cf.as_completed(extractions):
            url, final_url = extractions[ex]
            done += 1
            if progress:
                progress("extract", done, total)
            try:
                res = ex.result()
            except Exception as exc:  # noqa: BLE001 - a crashed worker process is an outcome, not a crash
                res = ExtractResult(ok=False, status="extract_error", reason=f"{type(exc).__name__}: {exc}")
            if not res.ok:
                summary.not_extracted += 1
                outcomes.append(Outcome("extract", url, res.status, res.reason, ok=False))
                publisher.store.mark_seen(groups[url])
                continue
            summary.extracted += 1
            article = _article(groups[url], final_url, res, replay)
            outcomes.append(Outcome("extract", url, "extracted", f"doc {article.id}"))
            publisher.add(article, groups[url])
    publisher.flush()
    if transient_fail:
        log.warning("%d article fetches failed transiently; they will be retried next poll", len(transient_fail))


def ingest(
    config: Config,
    feeds: Sequence[FeedConfig] | None = None,
    *,
    bus: MessageBus | None = None,
    force: bool = False,
    replay: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: ProgressFn | None = None,
) -> IngestSummary:
    """Poll ``feeds`` (default: the configured ones) and publish their new articles.

    ``force`` ignores conditional GET and seen-state (backfill); ``replay`` marks the
    articles as replayed (alerts silenced); ``since``/``until`` keep only entries
    published in that window (entries without a date are then skipped).
    """
    settings = config.settings
    feeds = list(config.feeds if feeds is None else feeds)
    summary = IngestSummary()
    outcomes: list[Outcome] = []
    own_bus = bus is None
    bus = bus if bus is not None else open_bus(settings)
    store = StateStore(settings.state_db)
    try:
        with SafeFetcher(settings.fetch) as fetcher:
            poller = FeedPoller(fetcher, store, default_interval_s=settings.poll_interval_seconds)
            groups: dict[str, list[FeedEntry]] = {}
            with cf.ThreadPoolExecutor(max_workers=max(1, min(8, len(feeds))), thread_name_prefix="poll") as tp:
                for res in tp.map(lambda f: poller.poll(f, force=force), feeds):
                    summary.feeds_polled += 1
                    outcomes.append(res.outcome)
                    if res.not_modified:
                        summary.feeds_not_modified += 1
                    if not res.outcome.ok:
                        summary.feeds_failed += 1
                    if res.outcome.status == "malformed_feed":
                        summary.feeds_malformed += 1
                    for entry in res.new_entries:
                        if not _in_window(entry, since, until):
                            continue
                        summary.new_entries += 1
                        groups.setdefault(canonical_url(entry.url), []).append(entry)
            log.info("polled feeds=%d new_entries=%d unique_urls=%d", summary.feeds_polled,
                     summary.new_entries, len(groups))
            publisher = _Publisher(bus, store, settings.extract.batch_size)
            if groups:
                _fetch_and_extract(config, groups, fetcher, publisher, summary, outcomes, replay, progress)
            summary.published = publisher.published
    finally:
        store.record_many(outcomes)
        summary.outcomes = dict(Counter(o.status for o in outcomes))
        store.record_run("ingest", summary.to_dict())
        if own_bus:
            bus.close()
    log.info("ingest done %s", {k: v for k, v in summary.to_dict().items() if k != "outcomes"})
    return summary


def ingest_urls(
    config: Config, urls: Iterable[str], *, bus: MessageBus | None = None, replay: bool = True
) -> IngestSummary:
    """Fetch and publish the given article URLs (a backfill); already-indexed ones change nothing."""
    entries: dict[str, list[FeedEntry]] = {}
    for u in urls:
        u = u.strip()
        if u:
            entries.setdefault(canonical_url(u), []).append(FeedEntry(feed_url="", url=u, guid=u))
    summary = IngestSummary(new_entries=sum(len(v) for v in entries.values()))
    outcomes: list[Outcome] = []
    own_bus = bus is None
    bus = bus if bus is not None else open_bus(config.settings)
    store = StateStore(config.settings.state_db)
    try:
        with SafeFetcher(config.settings.fetch) as fetcher:
            publisher = _Publisher(bus, store, config.settings.extract.batch_size)
            if entries:
                _fetch_and_extract(config, entries, fetcher, publisher, summary, outcomes, replay, None)
            summary.published = publisher.published
    finally:
        store.record_many(outcomes)
        summary.outcomes = dict(Counter(o.status for o in outcomes))
        store.record_run("backfill", summary.to_dict())
        if own_bus:
            bus.close()
    return summary


def drain(
    config: Config,
    *,
    bus: MessageBus | None = None,
    alert_on_replay: bool = False,
    stop: threading.Event | None = None,
    deliver_wait: float = 0.0,
) -> DrainSummary:
    """Run enrich, alert and index until their inputs are idle (embedded mode, or a one-off catch-up).

    ``deliver_wait`` > 0: after the alert stage, keep delivering pending alerts (including ones left
    from earlier runs) for up to that many seconds, waiting out Retry-After and backoff.
    """
    from .stages import AlertStage, build_stage, stage_counts
    from .worker import run_stage

    own_bus = bus is None
    bus = bus if bus is not None else open_bus(config.settings)
    summary = DrainSummary()
    stages = []
    try:
        for name in ("enrich", "alert", "index"):
            kwargs: dict[str, Any] = {"alert_on_replay": alert_on_replay} if name == "alert" else {}
            stage = build_stage(name, config, bus, **kwargs)
            stages.append(stage)
            stats = run_stage(bus, stage, until_idle=True, stop=stop, poll_timeout=0.2)
            summary.deadlettered += stats.deadlettered
            if isinstance(stage, AlertStage):
                summary.alerts = list(stage.raised)
                if deliver_wait > 0:
                    stage.finish(deliver_wait)
        counts = stage_counts(stages)
        summary.enriched = counts.get("enriched", 0)
        summary.indexed = counts.get("indexed", 0)
        summary.already_indexed = counts.get("already_indexed", 0)
        summary.alerts_raised = counts.get("alerts_raised", 0)
    finally:
        for st in stages:
            try:
                st.close()
            except PipelineError as exc:
                log.warning("closing stage %s: %s", st.name, exc)
        if own_bus:
            bus.close()
    return summary


def run_once(
    config: Config,
    feeds: Sequence[FeedConfig] | None = None,
    *,
    bus: MessageBus | None = None,
    progress: ProgressFn | None = None,
    deliver_wait: float = 0.0,
) -> RunSummary:
    """One pass of the main job: ingest the (given or configured) feeds, then drain the stages."""
    own_bus = bus is None
    bus = bus if bus is not None else open_bus(config.settings)
    try:
        ing = ingest(config, feeds, bus=bus, progress=progress)
        dr = drain(config, bus=bus, deliver_wait=deliver_wait)
    finally:
        if own_bus:
            bus.close()
    return RunSummary(ingest=ing, drain=dr)
