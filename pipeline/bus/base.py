"""The message-bus contract. Implementations: ``SQLiteBus`` (embedded) and ``KafkaBus``.

Semantics are Kafka's, so both implementations behave the same to callers:

* A *topic* is an append-only log of messages, each with a ``key`` (the document id),
  a JSON ``value`` (a dict carrying ``schema_version``) and string ``headers``.
* :meth:`MessageBus.publish` returns only once every message is durably stored
  (SQLite: committed; Kafka: acknowledged by all in-sync replicas). If it raises
  :class:`~pipeline.errors.BusError`, some of the messages may have been stored:
  publishing is at-least-once and consumers are idempotent on the key.
* A *consumer* belongs to a *group*. It starts at the group's committed position
  (the earliest message if the group never committed) and reads forward.
* :meth:`Consumer.commit` is called by the caller **after** the work for the given
  messages is done (outputs published, index written). A crash before the commit
  means the messages are delivered again: at-least-once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "TOPIC_RAW",
    "TOPIC_ENRICHED",
    "TOPIC_ALERTS",
    "TOPIC_DEADLETTER",
    "ALL_TOPICS",
    "OutMessage",
    "Message",
    "TopicStats",
    "Consumer",
    "MessageBus",
]

TOPIC_RAW = "news.articles.raw"
TOPIC_ENRICHED = "news.articles.enriched"
TOPIC_ALERTS = "news.alerts"
TOPIC_DEADLETTER = "news.deadletter"
ALL_TOPICS = (TOPIC_RAW, TOPIC_ENRICHED, TOPIC_ALERTS, TOPIC_DEADLETTER)


@dataclass
class OutMessage:
    """A message to publish."""

    key: str
    value: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Message:
    """A message read from a topic; (topic, partition, offset) identifies it."""

    topic: str
    partition: int
    offset: int
    key: str
    value: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    timestamp: float = 0.0


@dataclass
class TopicStats:
    """Counts for ``status``: messages in a topic and each group's lag behind its end."""

    topic: str
    messages: int
    lag: dict[str, int] = field(default_factory=dict)  # group -> messages not yet committed


@runtime_checkable
class Consumer(Protocol):
    def poll(self, max_records: int = 100, timeout: float = 1.0) -> list[Message]:
        """Up to ``max_records`` messages after the current position, waiting up to
        ``timeout`` seconds for the first one. Advances the in-memory position (not the
        committed one). An empty list means nothing new arrived in time."""
        ...

    def commit(self, messages: Sequence[Message]) -> None:
        """Durably commit the group's position past ``messages`` (per partition, the
        highest offset + 1). Call only after their work is done. Raises BusError."""
        ...

    def close(self) -> None:
        """Leave the group; uncommitted messages will be delivered again."""
        ...

    def hold(self, seconds: float, stop: threading.Event) -> bool:
        """Wait up to ``seconds`` (less once ``stop`` is set) without taking new messages, while staying a
        live member of the group: what a caller does between two tries of a batch that failed transiently,
        so that the group can rebalance meanwhile instead of waiting for it. True if the consumer still
        owns what it polled; False if the group rebalanced meanwhile: the caller then gives the batch in
        hand back with :meth:`rewind`, uncommitted, and polls again."""
        ...

    def rewind(self, messages: Sequence[Message]) -> None:
        """Deliver ``messages`` again: the next poll of each partition this consumer still owns starts at the
        first of them (a partition now owned by another member is read by it from the committed offset).
        Never skipping them matters after a rebalance: a consumer may keep its position on a partition that
        it gets back, which would then pass over an uncommitted batch."""
        ...


@runtime_checkable
class MessageBus(Protocol):
    def publish(self, topic: str, messages: Sequence[OutMessage]) -> None:
        """Store ``messages`` on ``topic``; return only when all are durable. Raises BusError."""
        ...

    def consumer(self, topic: str, group: str) -> Consumer:
        """A consumer of ``topic`` in consumer group ``group``."""
        ...

    def stats(self, groups: Sequence[str] = ()) -> list[TopicStats]:
        """Per-topic message counts and, for each of ``groups``, its lag."""
        ...

    def close(self) -> None:
        ...
