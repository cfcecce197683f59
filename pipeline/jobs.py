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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
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


def _pool(workers: int) -> cf.ProcessPoolExecutor:
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


def _interleave_hosts(urls: Iterable[str]) -> list[str]:
    """Round-robin the URLs over their hosts, so the fetch threads are not all queued behind one host."""
    by_host: dict[str, list[str]] = {}
    for u in urls:
        by_host.setdefault(urlsplit(u).netloc, []).append(u)
    queues = list(by_host.values())
    out: list[str] = []
    for i in range(max((len(q) for q in queues), default=0)):
        out.extend(q[i] for q in queues if i < len(q))
    return out


def _warm(pool: cf.Executor, workers: int) -> threading.Thread:
    """Start the extraction processes in the background, so their start-up overlaps the feed polling."""

    def start() -> None:
        for _ in range(workers):
            pool.submit(os.getpid)

    thread = threading.Thread(target=start, name="extract-pool-start", daemon=True)
    thread.start()
    return thread


def _fetch_and_extract(
    config: Config,
    groups: dict[str, list[FeedEntry]],
    fetcher: SafeFetcher,
    publisher: _Publisher,
    summary: IngestSummary,
    outcomes: list[Outcome],
    replay: bool,
    progress: ProgressFn | None,
    pool: cf.Executor,
) -> None:
    """Fetch every grouped entry concurrently, extract in processes, hand articles to the publisher."""
    settings = config.settings
    transient_fail: list[str] = []
    total = len(groups)
    done = 0
    with cf.ThreadPoolExecutor(
        max_workers=max(1, min(settings.fetch.concurrency, total)), thread_name_prefix="fetch"
    ) as threads:
        fetches = {
            threads.submit(fetcher.fetch, url, robots=settings.fetch.respect_robots): url
            for url in _interleave_hosts(groups)
        }
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
            # submit pipeline.extract.extract itself: it is preloaded in the forkserver, so workers import nothing more
            ex = pool.submit(extract, resp.body, resp.final_url, min_text_chars=settings.extract.min_text_chars)
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


@contextmanager
def _recorded_run(
    config: Config, bus: MessageBus | None, kind: str, summary: IngestSummary
) -> Iterator[tuple[MessageBus, StateStore, list[Outcome]]]:
    """The bus (opened here unless given), the state store and an outcome list for one ingest run.

    On the way out, even after an error: every outcome is recorded, the summary's outcome counts are
    filled in and the run is recorded as ``kind``; a bus opened here is closed.
    """
    own_bus = bus is None
    bus = bus if bus is not None else open_bus(config.settings)
    store = StateStore(config.settings.state_db)
    outcomes: list[Outcome] = []
    try:
        yield bus, store, outcomes
    finally:
        store.record_many(outcomes)
        summary.outcomes = dict(Counter(o.status for o in outcomes))
        store.record_run(kind, summary.to_dict())
        if own_bus:
            bus.close()


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
    workers = settings.extract.workers or os.cpu_count() or 1
    with _recorded_run(config, bus, "ingest", summary) as (bus, store, outcomes), \
            SafeFetcher(settings.fetch) as fetcher, _pool(workers) as pool:
        warming = _warm(pool, workers)
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
        warming.join()
        if groups:
            _fetch_and_extract(config, groups, fetcher, publisher, summary, outcomes, replay, progress, pool)
        summary.published = publisher.published
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
    with _recorded_run(config, bus, "backfill", summary) as (bus, store, outcomes), \
            SafeFetcher(config.settings.fetch) as fetcher, _pool(config.settings.extract.workers) as pool:
        publisher = _Publisher(bus, store, config.settings.extract.batch_size)
        if entries:
            _fetch_and_extract(config, entries, fetcher, publisher, summary, outcomes, replay, None, pool)
        summary.published = publisher.published
    return summary


class _Drainer:
    """The enrich, alert and index stages over one bus. ``pass_once`` runs each until its inputs are idle."""

    def __init__(self, config: Config, bus: MessageBus, *, alert_on_replay: bool = False,
                 stop: threading.Event | None = None) -> None:
        from .stages import build_stage

        self.bus = bus
        self.stop = stop
        # SQLite: everything published before a poll is readable, so an empty poll means idle.
        # Kafka: a fetch may still be in flight, so give an empty poll time before calling a topic idle.
        self.idle_wait = 0.0 if config.settings.bus == "sqlite" else 1.0
        self.deadlettered = 0
        self.stages: list[Any] = []
        try:
            for name in ("enrich", "alert", "index"):  # the order of the stage graph: one pass drains it
                kwargs: dict[str, Any] = {"alert_on_replay": alert_on_replay} if name == "alert" else {}
                self.stages.append(build_stage(name, config, bus, **kwargs))
        except BaseException:
            self.close()
            raise

    def pass_once(self) -> int:
        """Run every stage until idle, in graph order; returns how many messages were processed."""
        from .worker import run_stage

        processed = 0
        for stage in self.stages:
            stats = run_stage(self.bus, stage, until_idle=True, stop=self.stop, poll_timeout=self.idle_wait)
            processed += stats.processed + stats.deadlettered
            self.deadlettered += stats.deadlettered
        return processed

    def finish(self, deliver_wait: float) -> None:
        from .stages import AlertStage

        for stage in self.stages:
            if isinstance(stage, AlertStage) and deliver_wait > 0:
                stage.finish(deliver_wait)

    def summary(self) -> DrainSummary:
        from .stages import AlertStage, stage_counts

        counts = stage_counts(self.stages)
        alerts = next((list(st.raised) for st in self.stages if isinstance(st, AlertStage)), [])
        return DrainSummary(
            enriched=counts.get("enriched", 0),
            indexed=counts.get("indexed", 0),
            already_indexed=counts.get("already_indexed", 0),
            alerts_raised=counts.get("alerts_raised", 0),
            deadlettered=self.deadlettered,
            alerts=alerts,
        )

    def close(self) -> None:
        for st in self.stages:
            try:
                st.close()
            except PipelineError as exc:
                log.warning("closing stage %s: %s", st.name, exc)
        self.stages = []


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
    own_bus = bus is None
    bus = bus if bus is not None else open_bus(config.settings)
    try:
        drainer = _Drainer(config, bus, alert_on_replay=alert_on_replay, stop=stop)
        try:
            drainer.pass_once()
            drainer.finish(deliver_wait)
            return drainer.summary()
        finally:
            drainer.close()
    finally:
        if own_bus:
            bus.close()


def _ingest_while_draining(
    config: Config, feeds: Sequence[FeedConfig] | None, bus: MessageBus, progress: ProgressFn | None,
    deliver_wait: float,
) -> RunSummary:
    """Ingest in this thread while a second thread drains the stages as articles arrive.

    Tagging and indexing then fill the gaps that extraction leaves (start-up, the last pages), instead
    of starting only when ingest is over. A pass that begins after ingest has finished and finds nothing
    means everything published has been through every stage.
    """
    ingest_done = threading.Event()
    holder: list[_Drainer] = []
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            drainer = _Drainer(config, bus)
            holder.append(drainer)
            while True:
                finished = ingest_done.is_set()  # read before the pass: it then sees all that ingest published
                if drainer.pass_once() == 0:
                    if finished:
                        return
                    ingest_done.wait(0.05)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread below
            errors.append(exc)

    thread = threading.Thread(target=loop, name="drain", daemon=True)
    thread.start()
    try:
        ing = ingest(config, feeds, bus=bus, progress=progress)
    finally:
        ingest_done.set()
        thread.join()
    try:
        if errors:
            raise errors[0]
        drainer = holder[0]
        drainer.finish(deliver_wait)
        return RunSummary(ingest=ing, drain=drainer.summary())
    finally:
        for d in holder:
            d.close()


def run_once(
    config: Config,
    feeds: Sequence[FeedConfig] | None = None,
    *,
    bus: MessageBus | None = None,
    progress: ProgressFn | None = None,
    deliver_wait: float = 0.0,
) -> RunSummary:
    """One pass of the main job: ingest the (given or configured) feeds and drain the stages.

    On the embedded bus the stages drain concurrently with ingest; on Kafka they run after it (in
    production the long-running workers consume as articles arrive).
    """
    own_bus = bus is None
    bus = bus if bus is not None else open_bus(config.settings)
    try:
        if config.settings.bus == "sqlite":
            return _ingest_while_draining(config, feeds, bus, progress, deliver_wait)
        ing = ingest(config, feeds, bus=bus, progress=progress)
        dr = drain(config, bus=bus, deliver_wait=deliver_wait)
        return RunSummary(ingest=ing, drain=dr)
    finally:
        if own_bus:
            bus.close()
