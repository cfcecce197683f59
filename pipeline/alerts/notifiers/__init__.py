"""Notifiers: one module per alert destination, behind one Protocol, in an explicit registry.

Contract of :meth:`Notifier.send`, called by the outbox once per (message, channel) row:

* returns a :class:`SendResult` when the message was accepted by the destination (for
  SMTP: by the server for at least one recipient; ``refused`` lists the others);
* raises :class:`~pipeline.errors.TransientNotifyError` when trying again later may
  succeed (connection errors, SMTP 4xx, Slack 429/5xx; ``retry_after`` when the peer
  said how long to wait);
* raises :class:`~pipeline.errors.PermanentNotifyError` when it never will (SMTP 5xx,
  Slack 400/403/404/410); the row is recorded as failed with the reason.

Error messages never contain secrets (SMTP password, webhook URL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ...config import Settings
from ..render import Rendered

__all__ = ["Notifier", "SendResult", "NOTIFIERS", "build_notifiers", "configured_channels"]


@dataclass
class SendResult:
    """What the destination accepted. ``refused``: recipient -> reason, for those it did not."""

    refused: dict[str, str] = field(default_factory=dict)
    detail: str = ""


@runtime_checkable
class Notifier(Protocol):
    #: the channel name used in the outbox: "email", "slack" or "file"
    channel: str

    def send(self, message: Rendered, recipients: Sequence[str]) -> SendResult:
        """Deliver ``message`` (to ``recipients`` where the channel has them); see the module docstring."""
        ...

    def close(self) -> None:
        """Release connections; the notifier may not be used afterwards."""
        ...


def _smtp(settings: Settings) -> Notifier:
    from .smtp import SMTPNotifier

    assert settings.alerts.smtp_url is not None
    return SMTPNotifier(settings.alerts.smtp_url.get_secret_value(), sender=settings.alerts.smtp_from,
                        starttls=settings.alerts.smtp_starttls)


def _slack(settings: Settings) -> Notifier:
    from .slack import SlackNotifier

    assert settings.alerts.slack_webhook_url is not None
    return SlackNotifier(settings.alerts.slack_webhook_url.get_secret_value())


def _file(settings: Settings) -> Notifier:
    from .file import FileNotifier

    return FileNotifier(settings.alerts_path)


#: channel name -> factory; the explicit registry of destinations
NOTIFIERS = {"email": _smtp, "slack": _slack, "file": _file}


def configured_channels(settings: Settings) -> list[str]:
    """``email`` if ``SMTP_URL`` is set, ``slack`` if ``SLACK_WEBHOOK_URL`` is set, else ``file``."""
    out: list[str] = []
    if settings.alerts.smtp_url is not None and settings.alerts.smtp_url.get_secret_value():
        out.append("email")
    if settings.alerts.slack_webhook_url is not None and settings.alerts.slack_webhook_url.get_secret_value():
        out.append("slack")
    return out or ["file"]


def build_notifiers(settings: Settings) -> list[Notifier]:
    """A notifier for each of :func:`configured_channels`."""
    return [NOTIFIERS[channel](settings) for channel in configured_channels(settings)]
