"""Alerts: one per (topic, story), delivered by email and Slack through an outbox, never lost.

See :class:`AlertService` for the stage contract, :mod:`.notifiers` for the channels and
:mod:`.render` for the exact messages.
"""

from __future__ import annotations

from .notifiers import Notifier, SendResult, build_notifiers
from .outbox import Backoff, DeliveryReport
from .render import Rendered, format_alert_line, render_alert
from .service import AlertService

__all__ = [
    "AlertService",
    "DeliveryReport",
    "Backoff",
    "Notifier",
    "SendResult",
    "Rendered",
    "build_notifiers",
    "format_alert_line",
    "render_alert",
]
