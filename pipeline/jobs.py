"""The main job, as plain functions the CLI, the DAGs and the benchmark call.

``ingest``  polls feeds, fetches new article pages (threads, per-host politeness),
            extracts them (worker processes), publishes articles to news.articles.raw
            in batches, then marks their feed entries seen and records every outcome.
``drain``   runs the enrich, alert and index stages until their input topics are idle
            (the embedded run; on Kafka the long-running workers do this).
``run_once`` = ingest + drain.

Crash safety: entries are marked seen only after their articles are published, and
stages commit only after their outputs are written, so a crash anywhere re-does work
that every later step absorbs (deterministic ids, create-if-absent writes). Outcomes are
written to the state store as they happen, so a run that is killed or hangs still leaves
what it did recorded: a poll's outcome goes in one transaction with its feed's new state, in
batches of up to ``POLL_BATCH`` polls at most ``TICK_S`` late (a poll that found new entries is
written before they are fetched); a killed run loses at most that batch, whose feeds are
polled again next time. The extraction processes start when the first feed with new entries
is parsed (a pass with nothing new starts none) and die with the run (:mod:`pipeline.procguard`).

Stopping (``stop`` set, e.g. by SIGTERM): no more feeds are polled and no more fetches
started; fetches and extractions in flight finish and are published and committed; entries
not fetched stay unseen for the next run (``IngestSummary.left_for_next_run``).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import metrics
from .bus import TOPIC_RAW, MessageBus, OutMessage, open_bus
from .config import Config, FeedConfig
from .errors import FetchError, PipelineError
from .extract import extract
from .feeds import FeedPoller, PollCrashed, PollQueue, PollResult, order_for_reuse
from .fetch import SafeFetcher
from .ids import canonical_url, doc_id
from .models import AlertRecord, Article, ExtractResult, FeedEntry, Outcome
from .procguard import exit_with_parent
from .progress import STALL_AFTER_S, PassState, ProgressFn
from .state import PollRecord, StateStore

if TYPE_CHECKING:
    from .session import RunSession

__all__ = ["IngestSummary", "DrainSummary", "RunSummary", "ExtractPool", "Drainer", "ingest", "ingest_urls", "drain",
           "run_once"]

log = logging.getLogger(__name__)

#: how often the ingest loop wakes without an event (to notice a stop, refresh progress, write polls)
TICK_S = 0.25
#: polls whose state and outcomes are written in one transaction (see the module docstring)
POLL_BATCH = 500
#: feeds polled at once (the GIL, not the network, bounds a pass of conditional GETs: more threads do not help)
POLL_THREADS = 8


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
    not_ok: dict[str, int] = field(default_factory=dict)  # "stage:status" -> count, e.g. "fetch:timeout"
    stopped: bool = False  # stopped early (a signal): took no new work after that
    feeds_not_polled: int = 0  # when stopped: feeds left for the next run
    left_for_next_run: int = 0  # when stopped: new entries not fetched, found again next run

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
    """Extraction processes. forkserver: never fork a process that has fetch threads running.
    Each worker exits as soon as this process is gone, however it died (see procguard)."""
    n = workers or os.cpu_count() or 1
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["pipeline.extract", "pipeline.procguard"])
    return cf.ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=exit_with_parent,
                                  initargs=(os.getpid(),))


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


class ExtractPool(cf.Executor):
    """The extraction processes, started by :meth:`start` or the first ``submit``: a pass whose feeds
    brought nothing new starts none (a forkserver and one process per core that import trafilatura)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool: cf.ProcessPoolExecutor | None = None

    def start(self) -> cf.ProcessPoolExecutor:
        """Start the processes now (in the background), so they are up by the time pages are fetched."""
        if self._pool is None:
            self._pool = _pool(self.workers)
            _warm(self._pool, self.workers)
        return self._pool

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        return self.start().submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def _warm(pool: cf.Executor, workers: int) -> threading.Thread:
    """Start the extraction processes in the background, so their start-up overlaps the feed polling.

    A short run (every feed blocked or unchanged) may be over, and the pool shut down, before this
    thread gets to it: then there is nothing left to warm up."""

    def start() -> None:
        try:
            for _ in range(workers):
                pool.submit(os.getpid)
        except RuntimeError:  # "cannot schedule new futures after shutdown": the run ended first, nothing to warm
            log.debug("extraction pool shut down before warm-up")

    thread = threading.Thread(target=start, name="extract-pool-start", daemon=True)
    thread.start()
    return thread


class _Flow:
    """One ingest run's work in flight at once: feed polls, page fetches, extractions, publishing.

    A feed's new entries are fetched as soon as that feed is parsed, not after every feed has been
    polled; a page goes to the extraction processes as soon as it is fetched, and an article to the
    publisher as soon as it is extracted. Everything completes into one queue, handled by the
    calling thread only, so the bookkeeping needs no locks.

    Fetches are handed to the thread pool per host, at most ``per_host_concurrency`` in flight for
    each host: a fetch thread never waits for a busy host while another host has work (the fetcher
    still enforces the delay between requests to a host). Entries of several feeds that point to
    the same canonical URL share one fetch; one that arrives after its URL was settled is marked
    seen at once if the article was published or failed for good.
    """

    def __init__(self, config: Config, fetcher: SafeFetcher, publisher: _Publisher, summary: IngestSummary,
                 outcomes: _OutcomeLog, replay: bool, progress: ProgressFn | None, pool: cf.Executor,
                 threads: cf.Executor, stop: threading.Event | None = None,
                 on_published: Callable[[], Any] | None = None) -> None:
        self.settings = config.settings
        self.on_published = on_published
        self.published_seen = 0
        self.fetcher = fetcher
        self.publisher = publisher
        self.summary = summary
        self.outcomes = outcomes
        self.replay = replay
        self.progress = progress
        self.pool = pool
        self.threads = threads
        self.groups: dict[str, list[FeedEntry]] = {}
        self.settled: dict[str, bool] = {}  # canonical URL -> its entries are to be marked seen
        self.queued: dict[str, deque[str]] = {}  # host -> URLs waiting for a fetch slot
        self.in_flight: Counter[str] = Counter()  # host -> fetches running
        self.per_host = max(1, self.settings.fetch.per_host_concurrency)
        self.done_queue: queue.SimpleQueue[tuple[str, Any, cf.Future[Any] | None]] = queue.SimpleQueue()
        self.outstanding = 0
        self.polls_left = 0
        self.extracted = 0
        self.transient_fail = 0
        self.stop = stop
        self.stopping = False
        self.fetch_futures: dict[str, cf.Future[Any]] = {}
        self.fetch_started: dict[str, float] = {}  # URL -> when its fetch thread began (written by that thread)
        self.state = PassState()

    def _track(self, fut: cf.Future[Any], kind: str, payload: Any) -> None:
        self.outstanding += 1
        fut.add_done_callback(lambda f: self.done_queue.put((kind, payload, f)))

    def add(self, entry: FeedEntry) -> None:
        url = canonical_url(entry.url)
        group = self.groups.get(url)
        if group is None:
            self.groups[url] = [entry]
            if self.stopping:  # found, but not fetched: not marked seen, so the next run finds it again
                self.summary.left_for_next_run += 1
                return
            self.state.fetches_total += 1
            self._schedule(url)
            return
        group.append(entry)
        if self.settled.get(url):  # published or failed for good before this entry was read
            self.publisher.store.mark_seen([entry])

    def _schedule(self, url: str) -> None:
        host = urlsplit(url).netloc
        if self.in_flight[host] < self.per_host:
            self.in_flight[host] += 1
            fut = self.threads.submit(self._fetch, url)
            self.fetch_futures[url] = fut
            self._track(fut, "fetch", url)
        else:
            self.queued.setdefault(host, deque()).append(url)

    def _fetch(self, url: str) -> Any:
        """In a fetch thread: note when the fetch began (for the progress's waiting host), then fetch."""
        self.fetch_started[url] = time.monotonic()
        try:
            return self.fetcher.fetch(url, robots=self.settings.fetch.respect_robots)
        finally:
            self.fetch_started.pop(url, None)

    def _release(self, url: str) -> None:
        host = urlsplit(url).netloc
        self.in_flight[host] -= 1
        self.fetch_futures.pop(url, None)
        waiting = self.queued.get(host)
        if waiting:
            self._schedule(waiting.popleft())

    def run(self, take_poll: Callable[[Any], Iterable[FeedEntry]], polls: PollQueue | None = None) -> None:
        """Handle completions until nothing is in flight; ``take_poll`` turns a poll result into entries.
        Polls' outcomes are written (``outcomes.flush``) on every tick and at the end."""
        if polls is not None:
            self.polls_left += polls.total
            self.state.feeds_total += polls.total
            self.outstanding += polls.total
            polls.start(lambda result: self.done_queue.put(("poll", result, None)))
        try:
            self._handle_completions(take_poll, polls)
        finally:
            if polls is not None:
                polls.close()  # after an error: the poll threads take no more feeds
        self.outcomes.flush()
        self.publisher.flush()
        if self.transient_fail:
            log.warning("%d article fetches failed transiently; they will be retried next poll", self.transient_fail)

    def _handle_completions(self, take_poll: Callable[[Any], Iterable[FeedEntry]], polls: PollQueue | None) -> None:
        while self.outstanding:
            if self.stop is not None and self.stop.is_set() and not self.stopping:
                self._stop_taking_work(polls)
            try:
                kind, payload, fut = self.done_queue.get(timeout=TICK_S)
            except queue.Empty:
                self.outcomes.flush()
                self._publish_while_idle()
                self._report("tick")
                continue
            self.outstanding -= 1
            metrics.beat()
            if kind == "poll":
                self.polls_left -= 1
                self.state.feeds_done += 1
                if isinstance(payload, PollCrashed):
                    raise payload.error
                for entry in take_poll(payload):
                    self.add(entry)
                self._report("feeds")
            elif kind == "fetch":
                assert fut is not None
                self._release(payload)
                if fut.cancelled():
                    self.summary.left_for_next_run += 1
                    continue
                self.state.fetches_done += 1
                self._fetched(payload, fut)
                self._report("fetch")
            else:
                assert fut is not None
                self._extracted(payload, fut)

    def _publish_while_idle(self) -> None:
        """Nothing happened for a tick: publish the articles waiting for a full batch and, with ``on_published``
        (a run session on the embedded bus), let the stages take them now rather than at the end of the pass."""
        self.publisher.flush()
        if self.on_published is not None and self.publisher.published > self.published_seen:
            self.published_seen = self.publisher.published
            self.on_published()

    def _stop_taking_work(self, polls: PollQueue | None) -> None:
        """Poll no more feeds, start no more fetches; what is in flight goes on to the end."""
        self.stopping = self.summary.stopped = self.state.stopping = True
        if polls is not None:
            left = polls.close()
            self.summary.feeds_not_polled += left
            self.outstanding -= left
            self.polls_left -= left
        for waiting in self.queued.values():
            self.summary.left_for_next_run += len(waiting)
            waiting.clear()
        for fut in list(self.fetch_futures.values()):
            fut.cancel()
        log.info("stopping: %d fetches and %d extractions in flight will finish",
                    sum(self.in_flight.values()), self.outstanding - sum(self.in_flight.values()) - self.polls_left)

    def _report(self, stage: str) -> None:
        if self.progress is None:
            return
        state = self.state
        state.stage = stage
        state.waiting_host, state.waiting_seconds = "", 0.0
        started = list(self.fetch_started.items())  # a copy: fetch threads change the dict
        if started:
            url, t0 = min(started, key=lambda item: item[1])
            waited = time.monotonic() - t0
            if waited >= STALL_AFTER_S:
                state.waiting_host, state.waiting_seconds = urlsplit(url).netloc, waited
        self.progress(state)

    def _fetched(self, url: str, fut: cf.Future[Any]) -> None:
        try:
            resp = fut.result()
        except FetchError as exc:
            self.summary.fetch_failed += 1
            self.outcomes.append(Outcome("fetch", url, exc.reason, str(exc), ok=False))
            if exc.transient:
                self.transient_fail += 1
                self.settled[url] = False  # try again next poll: not marked seen
            else:
                self.settled[url] = True
                self.publisher.store.mark_seen(self.groups[url])
            return
        self.summary.fetched += 1
        # submit pipeline.extract.extract itself: it is preloaded in the forkserver, so workers import nothing more
        ex = self.pool.submit(extract, resp.body, resp.final_url, min_text_chars=self.settings.extract.min_text_chars)
        self._track(ex, "extract", (url, resp.final_url))

    def _extracted(self, payload: tuple[str, str], fut: cf.Future[Any]) -> None:
        url, final_url = payload
        self.extracted += 1
        self.state.extracted = self.extracted
        self._report("extract")
        try:
            res = fut.result()
        except Exception as exc:  # noqa: BLE001 - a crashed worker process is an outcome, not a crash
            res = ExtractResult(ok=False, status="extract_error", reason=f"{type(exc).__name__}: {exc}")
        self.settled[url] = True
        if not res.ok:
            self.summary.not_extracted += 1
            self.outcomes.append(Outcome("extract", url, res.status, res.reason, ok=False))
            self.publisher.store.mark_seen(self.groups[url])
            return
        self.summary.extracted += 1
        article = _article(self.groups[url], final_url, res, self.replay)
        self.outcomes.append(Outcome("extract", url, "extracted", f"doc {article.id}"))
        self.publisher.add(article, self.groups[url])


class _OutcomeLog:
    """The outcomes of one run, each written to the state store the moment it is appended, so a run
    that is killed or hangs still leaves every outcome it reached recorded; a poll's outcome goes with
    its feed's new state, in batches (see the module docstring)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.items: list[Outcome] = []
        self._polls: list[PollRecord] = []
        self._poll_outcomes: list[Outcome] = []
        self._oldest = 0.0

    def append(self, outcome: Outcome) -> None:
        self.items.append(outcome)
        self.store.record(outcome)

    def add_poll(self, record: PollRecord | None, outcome: Outcome, *, now: bool = False) -> None:
        """A poll's new feed state and outcome, written with the batch (at once when ``now``)."""
        self.items.append(outcome)
        if not self._polls and not self._poll_outcomes:
            self._oldest = time.monotonic()
        if record is not None:
            self._polls.append(record)
        self._poll_outcomes.append(outcome)
        if now or len(self._poll_outcomes) >= POLL_BATCH or time.monotonic() - self._oldest >= TICK_S:
            self.flush()

    def flush(self) -> None:
        if self._poll_outcomes:
            records, outcomes = self._polls, self._poll_outcomes
            self._polls, self._poll_outcomes = [], []
            self.store.record_polls(records, outcomes)

    def counts(self) -> dict[str, int]:
        return dict(Counter(o.status for o in self.items))

    def not_ok_counts(self) -> dict[str, int]:
        """``"stage:status"`` -> count of the outcomes that are failures, e.g. ``"fetch:timeout"``."""
        return dict(Counter(f"{o.stage}:{o.status}" for o in self.items if not o.ok))


@contextmanager
def _recorded_run(
    config: Config, bus: MessageBus | None, kind: str, summary: IngestSummary
) -> Iterator[tuple[MessageBus, StateStore, _OutcomeLog]]:
    """The bus (opened here unless given), the state store and the outcome log of one ingest run.

    Outcomes are recorded as they happen; on the way out, even after an error, the summary's outcome
    counts are filled in and the run is recorded as ``kind``; a bus opened here is closed.
    """
    own_bus = bus is None
    store = StateStore(config.settings.state_db)
    try:
        bus = bus if bus is not None else open_bus(config.settings)
    except BaseException:
        store.close()
        raise
    outcomes = _OutcomeLog(store)
    try:
        yield bus, store, outcomes
    finally:
        try:
            outcomes.flush()
            summary.outcomes = outcomes.counts()
            summary.not_ok = outcomes.not_ok_counts()
            store.record_run(kind, summary.to_dict())
        finally:
            store.close()
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
    stop: threading.Event | None = None,
    session: RunSession | None = None,
) -> IngestSummary:
    """Poll ``feeds`` (default: the configured ones) and publish their new articles.

    ``force`` ignores conditional GET and seen-state (backfill); ``replay`` marks the
    articles as replayed (alerts silenced); ``since``/``until`` keep only entries
    published in that window (entries without a date are then skipped). ``progress`` gets a
    :class:`~pipeline.progress.PassState` on every event; once ``stop`` is set, no new work
    is started and what is in flight is finished (see the module docstring). With a
    ``session``, its fetcher and extraction processes are used (and left open).
    """
    settings = config.settings
    feeds = list(config.feeds if feeds is None else feeds)
    summary = IngestSummary()
    workers = settings.extract.workers or os.cpu_count() or 1
    with _recorded_run(config, bus, "ingest", summary) as (bus, store, outcomes), \
            (SafeFetcher(settings.fetch) if session is None else nullcontext(session.fetcher)) as fetcher, \
            (ExtractPool(workers) if session is None else nullcontext(session.extract_pool)) as pool, \
            cf.ThreadPoolExecutor(max_workers=max(1, min(POLL_THREADS, len(feeds))), thread_name_prefix="poll") as polls, \
            cf.ThreadPoolExecutor(max_workers=settings.fetch.concurrency, thread_name_prefix="fetch") as threads:
        poller = FeedPoller(fetcher, store, default_interval_s=settings.poll_interval_seconds,
                            min_interval_s=settings.feeds.min_interval_seconds)
        known = {} if force else store.poll_states([f.url for f in feeds])  # one read for the whole pass

        def take_poll(res: PollResult) -> Iterator[FeedEntry]:
            summary.feeds_polled += 1
            # new entries: their feed's pending validators are written before the entries are fetched
            outcomes.add_poll(res.record, res.outcome, now=bool(res.new_entries))
            if res.new_entries:
                pool.start()
            if res.not_modified:
                summary.feeds_not_modified += 1
            if not res.outcome.ok:
                summary.feeds_failed += 1
            if res.outcome.status == "malformed_feed":
                summary.feeds_malformed += 1
            for entry in res.new_entries:
                if _in_window(entry, since, until):
                    summary.new_entries += 1
                    yield entry

        publisher = _Publisher(bus, store, settings.extract.batch_size)
        flow = _Flow(config, fetcher, publisher, summary, outcomes, replay, progress, pool, threads, stop,
                     on_published=None if session is None else session.drain_published)
        flow.run(take_poll, PollQueue(order_for_reuse(feeds), lambda f: poller.check(f, known.get(f.url), force=force),
                                       polls, POLL_THREADS))
        summary.published = publisher.published
        log.info("polled feeds=%d new_entries=%d unique_urls=%d", summary.feeds_polled, summary.new_entries,
                 len(flow.groups))
    log.info("ingest done %s", {k: v for k, v in summary.to_dict().items() if k != "outcomes"})
    if summary.stopped:
        log.warning("ingest stopped early: %d feeds not polled, %d new entries left for the next run",
                    summary.feeds_not_polled, summary.left_for_next_run)
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
    settings = config.settings
    with _recorded_run(config, bus, "backfill", summary) as (bus, store, outcomes), \
            SafeFetcher(settings.fetch) as fetcher, _pool(settings.extract.workers) as pool, \
            cf.ThreadPoolExecutor(max_workers=settings.fetch.concurrency, thread_name_prefix="fetch") as threads:
        publisher = _Publisher(bus, store, settings.extract.batch_size)
        flow = _Flow(config, fetcher, publisher, summary, outcomes, replay, None, pool, threads)
        for group in entries.values():
            for entry in group:
                flow.add(entry)
        flow.run(lambda res: ())
        summary.published = publisher.published
    return summary


class Drainer:
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

    def reset_counts(self) -> None:
        """Start counting anew (a session's next pass reports on itself only)."""
        from .stages import AlertStage, EnrichStage, IndexStage

        for st in self.stages:
            if isinstance(st, EnrichStage):
                st.count = 0
            elif isinstance(st, IndexStage):
                st.created = st.existing = 0
            elif isinstance(st, AlertStage):
                st.raised.clear()
        self.deadlettered = 0

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
        drainer = Drainer(config, bus, alert_on_replay=alert_on_replay, stop=stop)
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
    deliver_wait: float, stop: threading.Event | None = None,
) -> RunSummary:
    """Ingest in this thread while a second thread drains the stages as articles arrive.

    Tagging and indexing then fill the gaps that extraction leaves (start-up, the last pages), instead
    of starting only when ingest is over. A pass that begins after ingest has finished and finds nothing
    means everything published has been through every stage.
    """
    ingest_done = threading.Event()
    holder: list[Drainer] = []
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            drainer = Drainer(config, bus)
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
        ing = ingest(config, feeds, bus=bus, progress=progress, stop=stop)
    finally:
        ingest_done.set()
        thread.join()
    try:
        if errors:
            raise errors[0]
        drainer = holder[0]
        drainer.finish(0.0 if stop is not None and stop.is_set() else deliver_wait)
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
    stop: threading.Event | None = None,
) -> RunSummary:
    """One pass of the main job: ingest the (given or configured) feeds and drain the stages.

    On the embedded bus the stages drain concurrently with ingest; on Kafka they run after it (in
    production the long-running workers consume as articles arrive). Once ``stop`` is set, ingest
    starts nothing new; what it published is still drained, without waiting for delivery retries.
    """
    own_bus = bus is None
    bus = bus if bus is not None else open_bus(config.settings)
    try:
        if config.settings.bus == "sqlite":
            return _ingest_while_draining(config, feeds, bus, progress, deliver_wait, stop)
        ing = ingest(config, feeds, bus=bus, progress=progress, stop=stop)
        dr = drain(config, bus=bus, deliver_wait=0.0 if stop is not None and stop.is_set() else deliver_wait)
        return RunSummary(ingest=ing, drain=dr)
    finally:
        if own_bus:
            bus.close()
