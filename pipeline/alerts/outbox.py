"""Delivering the outbox: each (message, channel) row on its own, with exponential backoff.

One delivery step: claim the oldest due row (a lease, see :mod:`.store`), render it,
``send`` it, then mark it ``sent`` (with the recipients refused), ``pending`` again with a
later ``next_attempt_at`` (transient error), or ``failed`` (permanent error, or
``max_attempts`` used up). A transient error also pauses *that channel only* until the
row's next attempt time, so a Slack 429 storm never delays email and an SMTP outage
never delays Slack, and a throttled webhook is not hammered by the next rows.

Backoff after attempt ``n``: ``min(max_backoff, base * 2**(n-1))``, and at least the
peer's ``Retry-After`` (capped at ``MAX_RETRY_AFTER``). No jitter: alerts are few and
a deterministic schedule is easier to test and to explain in ``alerts --json``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..errors import PermanentNotifyError, PipelineError, TransientNotifyError
from .notifiers import Notifier
from .render import Rendered
from .store import AlertStore, OutboxRow

__all__ = ["DeliveryReport", "Backoff", "deliver", "LEASE_SECONDS", "MAX_RETRY_AFTER"]

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0  # longer than any single send (SMTP timeout 30 s, Slack 10 s)
MAX_RETRY_AFTER = 3600.0


@dataclass
class DeliveryReport:
    """Counts of one delivery run: rows sent, rows to retry later, rows failed for good."""

    sent: int = 0
    retry_later: int = 0
    failed: int = 0
    refused_recipients: int = 0

    def __iadd__(self, other: DeliveryReport) -> DeliveryReport:
        self.sent += other.sent
        self.retry_later += other.retry_later
        self.failed += other.failed
        self.refused_recipients += other.refused_recipients
        return self


@dataclass
class Backoff:
    base: float = 2.0
    maximum: float = 600.0
    max_attempts: int = 8

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        d = min(self.maximum, self.base * (2 ** max(0, attempts - 1)))
        if retry_after is not None:
            d = max(d, min(retry_after, MAX_RETRY_AFTER))
        return d


def _attempt(store: AlertStore, row: OutboxRow, notifier: Notifier, render: Callable[[OutboxRow], Rendered],
             backoff: Backoff, now: Callable[[], float], report: DeliveryReport) -> float | None:
    """Send one claimed row and record the outcome; returns the channel's pause-until time on a transient error."""
    where = f"{row.kind} {row.msg_id} channel={row.channel} attempt={row.attempts}"
    try:
        message = render(row)
        result = notifier.send(message, row.recipients)
    except TransientNotifyError as exc:
        t = now()
        if row.attempts >= backoff.max_attempts:
            store.mark_failed(row, f"gave up after {row.attempts} attempts: {exc}", t)
            report.failed += 1
            log.error("%s: gave up: %s", where, exc)
            return None
        next_at = t + backoff.delay(row.attempts, exc.retry_after)
        store.mark_retry(row, str(exc), next_at, t)
        report.retry_later += 1
        log.warning("%s: transient failure, retry in %.1fs: %s", where, next_at - t, exc)
        return next_at
    except PermanentNotifyError as exc:
        store.mark_failed(row, str(exc), now())
        report.failed += 1
        log.error("%s: failed permanently: %s", where, exc)
        return None
    except PipelineError as exc:  # cannot render (e.g. the alert row is gone): never sendable
        store.mark_failed(row, f"cannot render: {exc}", now())
        report.failed += 1
        log.error("%s: cannot render: %s", where, exc)
        return None
    store.mark_sent(row, result.refused, now())
    report.sent += 1
    report.refused_recipients += len(result.refused)
    if result.refused:
        log.warning("%s: sent, but refused %s", where, result.refused)
    else:
        log.info("%s: sent", where)
    return None


def deliver(
    store: AlertStore,
    notifiers: Mapping[str, Notifier],
    render: Callable[[OutboxRow], Rendered],
    backoff: Backoff,
    *,
    now: Callable[[], float],
    sleep: Callable[[float], None],
    max_seconds: float | None = None,
    paused: dict[str, float] | None = None,
) -> DeliveryReport:
    """Deliver due rows of the channels in ``notifiers``.

    ``max_seconds=None``: one pass over the rows due now, no waiting. Otherwise keep going,
    sleeping until the next row is due, until nothing is pending or the time is up.
    ``paused`` (channel -> time) is updated in place, so a caller that keeps it between calls
    does not knock on a channel that failed until its retry time, even in the next call.
    """
    report = DeliveryReport()
    start = now()
    deadline = None if max_seconds is None else start + max_seconds
    paused = {} if paused is None else paused
    while True:
        t = now()
        if deadline is not None and t >= deadline:
            break
        open_channels = sorted(c for c in notifiers if paused.get(c, 0.0) <= t)
        row = store.claim_next(open_channels, t, LEASE_SECONDS)
        if row is not None and row.attempts > backoff.max_attempts:  # earlier attempts died mid-send
            store.mark_failed(row, f"gave up after {row.attempts - 1} interrupted attempts", t)
            report.failed += 1
            log.error("%s %s channel=%s: gave up after %d interrupted attempts", row.kind, row.msg_id, row.channel,
                      row.attempts - 1)
            continue
        if row is not None:
            until = _attempt(store, row, notifiers[row.channel], render, backoff, now, report)
            if until is not None:
                paused[row.channel] = until
            continue
        if deadline is None:
            break
        wake = [max(paused.get(c, 0.0), due) for c in notifiers if (due := store.next_due([c])) is not None]
        if not wake or min(wake) >= deadline:
            break
        sleep(max(0.0, min(wake) - now()))
    log.info("outbox: sent=%d retry_later=%d failed=%d refused_recipients=%d", report.sent, report.retry_later,
             report.failed, report.refused_recipients)
    return report
