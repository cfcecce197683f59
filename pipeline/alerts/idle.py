"""Delivering owed alerts while a long-running process has nothing else to do.

A failed delivery waits in the outbox for its retry time (exponential backoff). The alert stage
retries due rows after each batch, and a ``worker alert`` with no new articles retries them from
its idle hook (``AlertStage.idle``). :class:`IdleDelivery` does the same for the continuous
``run`` between two passes: it sleeps until the next row is due (or the wait is over), delivers,
and sleeps again, so an SMTP server that comes back gets its mail without waiting for news.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from ..errors import ConfigError, PipelineError

if TYPE_CHECKING:
    from ..config import Config
    from .service import AlertService

__all__ = ["IdleDelivery"]

log = logging.getLogger(__name__)

MIN_PAUSE = 0.05  # never spin, whatever the clock says


class IdleDelivery:
    """Waits like ``stop.wait(seconds)`` while delivering the outbox rows that come due meanwhile."""

    def __init__(self, config: Config, *, service: AlertService | None = None) -> None:
        from .service import AlertService

        self.service = service if service is not None else AlertService(config.settings, config.watchlist)
        self._own_service = service is None

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        """Return after ``seconds`` or as soon as ``stop`` is set (then True), delivering what is due."""
        end = time.monotonic() + seconds
        while not stop.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return False
            due = self.service.next_delivery_at()
            pause = left if due is None else min(left, max(MIN_PAUSE, due - time.time()))
            if stop.wait(pause):
                return True
            if due is not None and due <= time.time():
                try:
                    self.service.deliver_due()
                except ConfigError:
                    raise
                except PipelineError as exc:  # e.g. the alert store is locked by another process: try later
                    log.warning("idle delivery: %s", exc)
        return True

    def close(self) -> None:
        if self._own_service:
            self.service.close()
