"""The consume loop shared by long-running workers and the embedded drain.

:func:`run_stage` knows nothing about what a stage does; a stage
(``pipeline.stages.Stage``) knows nothing about where its messages come from.

Per batch (messages from ONE input topic):

1. ``stage.handle(batch)`` -> the messages that failed, each transient or permanent;
2. the transient ones (and only those) are handled again, up to ``retries`` times with
   exponential backoff;
3. whatever still fails (and every permanent failure) is published to
   ``news.deadletter`` with its original key and value and headers naming the error
   and where it came from;
4. only then the batch is committed. A crash anywhere before 4 redelivers the batch:
   at-least-once, made harmless by idempotent stages (deterministic ids, create-if-absent).

A long-running worker (not ``until_idle``) that finds every input empty calls the stage's
optional ``idle()`` once per round of polls (about every ``poll_timeout`` seconds): periodic
work that must not wait for the next message, such as retrying alert deliveries when their
backoff is over.

If ``handle`` raises a *transient* :class:`~pipeline.errors.PipelineError` (the index is
down, the bus did not acknowledge), nothing is committed and the same batch is tried
again after a growing pause: forever for a long-running worker (until ``stop`` is set),
at most ``retries`` times in ``until_idle`` (drain) mode, after which the error is raised.
Between two tries the consumer *holds* (``Consumer.hold``): a Kafka group member keeps polling
with its partitions paused, so that a rebalance (a replica restarted) goes through at once
instead of waiting for the outage to end; if the group did rebalance, the batch is rewound
(``Consumer.rewind``) and left uncommitted for whoever owns its partitions now.
A transient error while opening a consumer or polling (the broker is restarting) is waited
out the same way (:func:`retry_transient`): a worker never exits because its broker went
away for a while, and says in one line when it works again.
A :class:`~pipeline.errors.ConfigError` (credentials refused, unsupported server) stops the
run: no message is to blame. If it raises anything else, the batch is split and each message
handled alone, so one poison message is dead-lettered and the others go through.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from . import metrics
from .bus.base import TOPIC_DEADLETTER, Consumer, Message, MessageBus, OutMessage
from .errors import BusError, ConfigError, PipelineError

if TYPE_CHECKING:
    from .stages import MessageFailure, Stage

__all__ = ["StopRequested", "WorkerStats", "run_stage", "deadletter_message", "retry_transient"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class StopRequested(Exception):  # noqa: N818 - a signal, not an error
    """``stop`` was set while waiting out a transient failure."""


def retry_transient(what: str, call: Callable[[], T], *, stop: threading.Event, name: str,
                    attempts: int | None = None, backoff: float = 0.5, max_backoff: float = 30.0) -> T:
    """``call()`` until it returns; a transient :class:`~pipeline.errors.PipelineError` is logged and retried
    after a growing pause (forever, or ``attempts`` times and then raised), any other error raised at once.

    Each wait counts as progress for ``/livez`` (restarting the process would not help). Raises
    :class:`StopRequested` when ``stop`` is set while waiting. After failures, one line says it works again.
    """
    failures = 0
    first = 0.0
    while True:
        try:
            result = call()
        except PipelineError as exc:
            if not exc.transient or (attempts is not None and failures >= attempts):
                raise
            if not failures:
                first = time.monotonic()
            pause = min(backoff * (2 ** failures), max_backoff)
            failures += 1
            metrics.beat()
            log.warning("%s: %s failed (transient), retrying in %.1fs: %s", name, what, pause, exc)
            if stop.wait(pause):
                raise StopRequested(what) from None
            continue
        if failures:
            log.warning("%s: %s works again after %.1f s (%d transient failures)", name, what,
                        time.monotonic() - first, failures)
        return result


@dataclass
class WorkerStats:
    """Counters of one :func:`run_stage` call.

    ``batches``: batches committed; ``processed``: messages that succeeded (possibly after
    retries); ``failed``: per-message failures reported by the stage (every attempt);
    ``deadlettered``: messages published to ``news.deadletter``; ``retried``: messages
    handled again after a transient failure, plus whole-batch retries.
    """

    batches: int = 0
    processed: int = 0
    failed: int = 0
    deadlettered: int = 0
    retried: int = 0


def _where(m: Message) -> str:
    return f"{m.topic}[{m.partition}]@{m.offset} key={m.key}"


def _span(batch: Sequence[Message]) -> str:
    parts: dict[int, list[int]] = {}
    for m in batch:
        parts.setdefault(m.partition, []).append(m.offset)
    spans = ",".join(f"[{p}]@{min(o)}-{max(o)}" for p, o in sorted(parts.items()))
    return f"{batch[0].topic}{spans}"


def deadletter_message(m: Message, error: str, stage: str) -> OutMessage:
    """The dead-letter record of ``m``: original key and value, headers saying why and whence."""
    headers = dict(m.headers)
    headers.update(
        {
            "error": " ".join(error.split())[:1000],
            "source_topic": m.topic,
            "source_partition": str(m.partition),
            "source_offset": str(m.offset),
            "stage": stage,
            "failed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    )
    value = m.value if isinstance(m.value, dict) else {"_unparseable": repr(m.value)}
    return OutMessage(key=m.key, value=value, headers=headers)


class _Runner:
    def __init__(self, bus: MessageBus, stage: Stage, stop: threading.Event, until_idle: bool, retries: int,
                 backoff: float, max_backoff: float) -> None:
        self.bus = bus
        self.stage = stage
        self.stop = stop
        self.until_idle = until_idle
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stats = WorkerStats()

    def _pause(self, attempt: int) -> float:
        return min(self.backoff * (2 ** attempt), self.max_backoff)

    def _handle_isolating(self, batch: list[Message]) -> list[MessageFailure] | None:
        """``stage.handle(batch)``; None when the whole batch hit a transient error."""
        from .stages import MessageFailure

        first: Exception
        try:
            return self.stage.handle(batch)
        except ConfigError:
            raise  # the setup is wrong (credentials, server version): no message is to blame
        except PipelineError as exc:
            if exc.transient:
                raise
            first = exc
        except Exception as exc:  # a bug in the stage: isolate the message that triggers it
            log.exception("stage %s: handle failed on %s: %s; handling one by one", self.stage.name, _span(batch), exc)
            first = exc
        if len(batch) > 1:
            log.warning("stage %s: %s: %s; handling one by one", self.stage.name, _span(batch), first)
        failures: list[MessageFailure] = []
        for m in batch:
            try:
                failures.extend(self.stage.handle([m]))
            except ConfigError:
                raise
            except PipelineError as exc:
                if exc.transient:
                    raise
                failures.append(MessageFailure(m, f"{type(exc).__name__}: {exc}", transient=False))
            except Exception as exc:
                log.exception("stage %s: %s: %s", self.stage.name, _where(m), exc)
                failures.append(MessageFailure(m, f"{type(exc).__name__}: {exc}", transient=False))
        return failures

    def _process(self, batch: list[Message]) -> tuple[int, int]:
        """Handle, retry and dead-letter ``batch``; returns (succeeded, deadlettered)."""
        failures = self._handle_isolating(batch)
        final: list[MessageFailure] = []
        attempt = 0
        while failures:
            self.stats.failed += len(failures)
            metrics.messages_failed(self.stage.name, len(failures))
            for f in failures:
                log.warning("stage %s: %s failed (%s): %s", self.stage.name, _where(f.message),
                            "transient" if f.transient else "permanent", f.error)
            final.extend(f for f in failures if not f.transient)
            again = [f for f in failures if f.transient]
            if not again:
                break
            if attempt >= self.retries:
                final.extend(again)
                break
            time.sleep(self._pause(attempt))
            attempt += 1
            self.stats.retried += len(again)
            failures = self._handle_isolating([f.message for f in again])
        if final:
            self.bus.publish(TOPIC_DEADLETTER, [deadletter_message(f.message, f.error, self.stage.name)
                                                for f in final])
            for f in final:
                log.error("stage %s: %s dead-lettered: %s", self.stage.name, _where(f.message), f.error)
        return len(batch) - len(final), len(final)

    def run_batch(self, consumer: Consumer, batch: list[Message]) -> None:
        """Process ``batch`` until done (then commit), give up (raise, nothing committed), or hand it back
        uncommitted when the group rebalanced while it was being retried."""
        attempt = 0
        started = time.monotonic()
        while True:
            try:
                ok, dead = self._process(batch)
                break
            except PipelineError as exc:
                if not exc.transient:
                    raise
                if self.until_idle and attempt >= self.retries:
                    log.error("stage %s: %s: giving up after %d retries: %s", self.stage.name, _span(batch),
                              attempt, exc)
                    raise
                pause = self._pause(attempt)
                log.warning("stage %s: %s: transient failure, retrying the batch in %.1fs: %s", self.stage.name,
                            _span(batch), pause, exc)
                attempt += 1
                self.stats.retried += 1
                metrics.batch_retried(self.stage.name)
                still_ours = consumer.hold(pause, self.stop)  # a group member keeps taking part in rebalances
                if self.stop.is_set() and not self.until_idle:
                    log.warning("stage %s: %s: stopping; batch left uncommitted (will be redelivered)",
                                self.stage.name, _span(batch))
                    raise StopRequested(_span(batch)) from None
                if not still_ours:
                    consumer.rewind(batch)
                    log.warning("stage %s: %s: the group rebalanced while the batch was retried; left uncommitted "
                                "and rewound, for the partitions' owners to read again", self.stage.name, _span(batch))
                    return
        try:
            consumer.commit(batch)
        except BusError as exc:
            if not exc.transient:
                raise
            # The work is done and idempotent: redelivery after a failed commit is harmless.
            log.warning("stage %s: %s: commit failed, batch will be redelivered: %s", self.stage.name, _span(batch),
                        exc)
        self.stats.batches += 1
        self.stats.processed += ok
        self.stats.deadlettered += dead
        metrics.batch_done(self.stage.name, processed=ok, deadlettered=dead, seconds=time.monotonic() - started)
        log.info("stage %s: batch %s: %d messages, %d ok, %d dead-lettered, %.0f ms", self.stage.name, _span(batch),
                 len(batch), ok, dead, (time.monotonic() - started) * 1000)


def _idle(stage: Stage) -> None:
    """The stage's optional ``idle()`` hook; a transient failure in it is logged, never fatal."""
    hook = getattr(stage, "idle", None)
    if hook is None:
        return
    try:
        hook()
    except ConfigError:
        raise
    except PipelineError as exc:
        log.warning("stage %s: idle work failed: %s", stage.name, exc)


def run_stage(
    bus: MessageBus,
    stage: Stage,
    *,
    stop: threading.Event | None = None,
    until_idle: bool = False,
    max_records: int = 100,
    poll_timeout: float = 1.0,
    retries: int = 3,
    backoff: float = 0.5,
    max_backoff: float = 30.0,
) -> WorkerStats:
    """Consume ``stage.topics`` in group ``stage.group`` and feed batches to ``stage.handle``.

    Returns when ``stop`` is set (after finishing and committing the current batch) or, with
    ``until_idle``, when every input topic returned nothing in one poll. Raises the
    transient error of a batch that still fails after ``retries`` whole-batch retries in
    ``until_idle`` mode, and any non-transient :class:`~pipeline.errors.BusError`
    (dead-letter publish or commit refused). Consumers are closed on the way out.
    """
    stop = stop or threading.Event()
    runner = _Runner(bus, stage, stop, until_idle, retries, backoff, max_backoff)
    consumers: list[tuple[str, Consumer]] = []
    name = f"stage {stage.name}"
    patience = retries if until_idle else None  # a drain gives up; a worker waits for its broker
    log.info("stage %s: consuming %s as group %s%s", stage.name, ",".join(stage.topics), stage.group,
             " until idle" if until_idle else "")
    try:
        for topic in stage.topics:
            consumers.append((topic, retry_transient(
                f"opening a consumer of {topic}", functools.partial(bus.consumer, topic, stage.group),
                stop=stop, name=name, attempts=patience, backoff=backoff, max_backoff=max_backoff)))
        while not stop.is_set():
            idle = True
            for topic, consumer in consumers:
                if stop.is_set():
                    break
                batch = retry_transient(f"polling {topic}",
                                        functools.partial(consumer.poll, max_records=max_records,
                                                          timeout=poll_timeout),
                                        stop=stop, name=name, attempts=patience, backoff=backoff,
                                        max_backoff=max_backoff)
                metrics.beat()
                if not batch:
                    log.debug("stage %s: %s: nothing new", stage.name, topic)
                    continue
                idle = False
                runner.run_batch(consumer, batch)
            if idle and until_idle:
                break
            if idle and not stop.is_set():
                _idle(stage)
    except StopRequested:
        pass
    finally:
        for topic, consumer in consumers:
            try:
                consumer.close()
            except BusError as exc:
                log.warning("stage %s: closing consumer of %s: %s", stage.name, topic, exc)
    s = runner.stats
    log.info("stage %s: stopped: %d batches, %d processed, %d failed, %d dead-lettered, %d retried", stage.name,
             s.batches, s.processed, s.failed, s.deadlettered, s.retried)
    return s
