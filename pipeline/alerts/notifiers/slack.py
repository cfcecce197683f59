"""Slack incoming webhooks (``SLACK_WEBHOOK_URL``): one JSON POST per message, Block Kit
with a plain-text fallback (see :func:`pipeline.alerts.render.render_alert`).

* At most one message per second per webhook (Slack's documented limit): ``send`` waits
  for the remainder of the second since the previous post of this notifier.
* 200 is success; 429 and 5xx are transient (``Retry-After`` passed on); 400, 403, 404,
  410 and other 4xx are permanent, with Slack's reason (e.g. ``invalid_payload``,
  ``no_service``); connection errors and timeouts are transient.
* The webhook URL is a secret: it never appears in a log line or an error message.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import urllib3

from ...errors import ConfigError, PermanentNotifyError, TransientNotifyError
from ..render import Rendered, one_line
from . import SendResult

__all__ = ["SlackNotifier", "parse_retry_after"]

log = logging.getLogger(__name__)

MIN_INTERVAL = 1.0


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class SlackNotifier:
    channel = "slack"

    def __init__(
        self,
        webhook_url: str,
        *,
        timeout: float = 10.0,
        min_interval: float = MIN_INTERVAL,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not webhook_url.lower().startswith(("https://", "http://")):
            raise ConfigError("SLACK_WEBHOOK_URL: must be an https:// URL")
        self._url = webhook_url
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False, headers={"User-Agent": "newswatch"}
        )
        self.min_interval = min_interval
        self._monotonic = monotonic
        self._sleep = sleep
        self._last_post: float | None = None

    def __repr__(self) -> str:  # the URL is a secret
        return "SlackNotifier(<webhook>)"

    def _pace(self) -> None:
        if self._last_post is not None:
            wait = self.min_interval - (self._monotonic() - self._last_post)
            if wait > 0:
                self._sleep(wait)
        self._last_post = self._monotonic()

    def send(self, message: Rendered, recipients: Sequence[str]) -> SendResult:
        body = json.dumps(message.slack, ensure_ascii=False).encode("utf-8")
        self._pace()
        try:
            resp = self._http.request("POST", self._url, body=body, redirect=False,
                                      headers={"Content-Type": "application/json; charset=utf-8"})
        except urllib3.exceptions.HTTPError as exc:
            # str(exc) may quote the webhook path: report only the kind of failure
            reason = getattr(exc, "reason", None)
            kind = type(reason).__name__ if reason is not None else type(exc).__name__
            raise TransientNotifyError(f"slack webhook: connection failed ({kind})") from None
        status = resp.status
        reason = one_line(resp.data[:200].decode("utf-8", "replace")) or "no body"
        if 200 <= status < 300:
            log.info("slack message %s posted", message.msg_id)
            return SendResult(detail=f"HTTP {status}")
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            raise TransientNotifyError(f"slack webhook: HTTP {status} {reason}", retry_after=retry_after)
        raise PermanentNotifyError(f"slack webhook: HTTP {status} {reason}")

    def close(self) -> None:
        self._http.clear()
