"""Message bus: the interface, and a factory choosing the backend from settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import (
    ALL_TOPICS,
    TOPIC_ALERTS,
    TOPIC_DEADLETTER,
    TOPIC_ENRICHED,
    TOPIC_RAW,
    Consumer,
    Message,
    MessageBus,
    OutMessage,
    TopicStats,
)

if TYPE_CHECKING:
    from ..config import Settings

__all__ = [
    "ALL_TOPICS",
    "TOPIC_ALERTS",
    "TOPIC_DEADLETTER",
    "TOPIC_ENRICHED",
    "TOPIC_RAW",
    "Consumer",
    "Message",
    "MessageBus",
    "OutMessage",
    "TopicStats",
    "open_bus",
]


def open_bus(settings: Settings) -> MessageBus:
    """The bus named by ``settings.bus``: ``sqlite`` (embedded) or ``kafka``."""
    if settings.bus == "kafka":
        from .kafka import KafkaBus

        return KafkaBus(settings.kafka)
    from .sqlite import SQLiteBus

    return SQLiteBus(settings.bus_db)
