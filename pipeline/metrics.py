"""Prometheus metrics of newswatch processes, and the heartbeat behind the liveness endpoint.

Every metric lives in prometheus_client's default registry (so the process and GC collectors come
along) and is updated whether or not anything serves it: an update is one locked add, cheap enough
for every batch. :mod:`pipeline.metrics_server` serves them (``--metrics-port``).

The hooks other modules call are small on purpose (one line where the event happens):

* :func:`beat` -- the consume loop or the ingest loop came around: a poll returned, a batch or a
  retry of one finished, a fetch or an extraction completed, a ``run`` pass woke up. Liveness is
  "a beat within the last N seconds", so a process that is up but stuck (a request that never
  returns, a deadlock) is reported dead while one that is retrying against a down service is not.
* :func:`batch_done`, :func:`messages_failed`, :func:`batch_retried` -- the worker loop.
* :func:`count_outcomes` -- feed polls, page fetches and extractions, by status (``not_modified``,
  ``http_404``, ``timeout``, ``extracted``, ``not_article``, ...), as they are recorded.
* :func:`count_delivery` -- one alert or digest delivery attempt per channel: ``sent``, ``retry``
  (transient failure, tried again later) or ``failed`` (given up).
* :func:`set_lag` -- consumer lag per stage and input topic, sampled by the server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "MESSAGES_PROCESSED",
    "MESSAGES_FAILED",
    "MESSAGES_DEADLETTERED",
    "BATCH_RETRIES",
    "BATCH_DURATION",
    "CONSUMER_LAG",
    "LAG_SAMPLED",
    "FETCH_OUTCOMES",
    "ALERT_DELIVERIES",
    "LAST_PROGRESS",
    "Heartbeat",
    "HEARTBEAT",
    "beat",
    "declare_stages",
    "batch_done",
    "messages_failed",
    "batch_retried",
    "count_outcomes",
    "count_delivery",
    "set_lag",
]

MESSAGES_PROCESSED = Counter(
    "newswatch_messages_processed", "Messages a stage handled successfully (committed).", ["stage"])
MESSAGES_FAILED = Counter(
    "newswatch_messages_failed",
    "Per-message failures a stage reported, every attempt counted (a retried message may count more than once).",
    ["stage"])
MESSAGES_DEADLETTERED = Counter(
    "newswatch_messages_deadlettered", "Messages a stage published to news.deadletter.", ["stage"])
BATCH_RETRIES = Counter(
    "newswatch_batch_retries",
    "Whole batches retried after a transient error (index, bus or broker unavailable).", ["stage"])
BATCH_DURATION = Histogram(
    "newswatch_batch_duration_seconds", "Time from taking a batch to committing it, retries included.", ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0))
CONSUMER_LAG = Gauge(
    "newswatch_consumer_lag", "Messages on a stage's input topic not yet committed by its consumer group.",
    ["stage", "topic"])
LAG_SAMPLED = Gauge(
    "newswatch_consumer_lag_sampled_timestamp_seconds",
    "Unix time of the last successful consumer-lag sample (stale when the bus is unreachable).")
FETCH_OUTCOMES = Counter(
    "newswatch_fetch_outcomes",
    "Recorded outcomes of feed polls (stage=feed), failed page fetches (stage=fetch) and extractions "
    "(stage=extract), by status.", ["stage", "outcome"])
ALERT_DELIVERIES = Counter(
    "newswatch_alert_deliveries",
    "Alert and digest delivery attempts per channel and outcome (sent, retry, failed).", ["channel", "outcome"])
LAST_PROGRESS = Gauge(
    "newswatch_last_progress_timestamp_seconds", "Unix time the processing loop last made progress.")


class Heartbeat:
    """When the loop last came around (monotonic clock), and whether that is recent enough."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = time.monotonic()

    def beat(self) -> None:
        now = time.monotonic()
        with self._lock:
            self._last = now
        LAST_PROGRESS.set(time.time())

    def silence(self) -> float:
        """Seconds since the last beat."""
        with self._lock:
            return time.monotonic() - self._last


HEARTBEAT = Heartbeat()


def beat() -> None:
    """The loop made progress (see the module docstring)."""
    HEARTBEAT.beat()


def declare_stages(names: Iterable[str]) -> None:
    """Create the per-stage series at 0, so they are scraped (and ``rate()`` works) before the first batch."""
    for name in names:
        for counter in (MESSAGES_PROCESSED, MESSAGES_FAILED, MESSAGES_DEADLETTERED, BATCH_RETRIES):
            counter.labels(name)


def batch_done(stage: str, *, processed: int, deadlettered: int, seconds: float) -> None:
    """A batch was committed: ``processed`` succeeded, ``deadlettered`` went to the dead letter."""
    MESSAGES_PROCESSED.labels(stage).inc(processed)
    MESSAGES_DEADLETTERED.labels(stage).inc(deadlettered)
    BATCH_DURATION.labels(stage).observe(seconds)
    HEARTBEAT.beat()


def messages_failed(stage: str, n: int) -> None:
    MESSAGES_FAILED.labels(stage).inc(n)


def batch_retried(stage: str) -> None:
    """A whole batch failed transiently and will be tried again: counted, and the loop is alive."""
    BATCH_RETRIES.labels(stage).inc()
    HEARTBEAT.beat()


def count_outcomes(outcomes: Iterable[Any]) -> None:
    """Count recorded :class:`~pipeline.models.Outcome` objects by stage and status."""
    n = 0
    for o in outcomes:
        FETCH_OUTCOMES.labels(o.stage, o.status).inc()
        n += 1
    if n:
        HEARTBEAT.beat()


def count_delivery(channel: str, outcome: str) -> None:
    """One delivery attempt on ``channel`` ended as ``sent``, ``retry`` or ``failed``."""
    ALERT_DELIVERIES.labels(channel, outcome).inc()


def set_lag(stage: str, topic: str, lag: int) -> None:
    CONSUMER_LAG.labels(stage, topic).set(lag)
