"""The distributed message bus: Apache Kafka through kafka-python.

* Topics are ``news.articles.raw``, ``news.articles.enriched``, ``news.alerts`` and
  ``news.deadletter``, each prefixed by ``settings.topic_prefix``; they are created at
  start when missing (``partitions`` each). Message key = document id, so every
  message about one document lands on one partition, in order.
* The producer is idempotent with ``acks='all'``; :meth:`KafkaBus.publish` waits on the
  future of every send (``flush()`` alone says nothing about success) and raises
  :class:`~pipeline.errors.TransientBusError` / :class:`~pipeline.errors.BusError`. It waits as
  long as the producer itself keeps retrying (``delivery_timeout``, 120 s): a broker that
  restarts meanwhile costs a pause, not an error, and when publish does raise, no record of the
  call is left in the producer to be sent later, so a caller that publishes the batch again
  duplicates nothing on the topic.
* A broker that goes away is one episode in the log, not kafka-python's hundreds of lines
  (:mod:`pipeline.bus.kafka_health`).
* Consumers (:mod:`pipeline.bus.kafka_consumer`): by default each reads every partition
  of its topic (manual ``assign``) and uses its group only for committed offsets (no joins,
  no rebalances: the SQLite bus's semantics, one consumer per group and topic).
  ``group_management=True`` (what ``worker STAGE`` uses) makes them join their group
  instead, one member per group and process, so several worker processes of one stage
  split the partitions and take over a dead one's.
* ``settings.api_version`` (``KAFKA_API_VERSION``, e.g. ``"2.0"``) pins the protocol
  version; otherwise the client negotiates it with the broker.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from ..config import KafkaSettings
from ..errors import BusError, ConfigError, TransientBusError
from . import kafka_health
from .base import ALL_TOPICS, Consumer, OutMessage, TopicStats
from .kafka_consumer import GroupMember, KafkaTopicConsumer, start_client
from .kafka_consumer import translate as _translate

__all__ = ["KafkaBus", "client_config", "parse_api_version"]

log = logging.getLogger(__name__)

#: how long the producer retries a record (kafka-python's ``delivery_timeout_ms``) and publish waits for it
DELIVERY_TIMEOUT = 120.0


def parse_api_version(value: str | None) -> tuple[int, ...] | None:
    """``"2.0"`` -> ``(2, 0)``; None -> None (negotiate). Raises ConfigError."""
    if not value:
        return None
    try:
        parts = tuple(int(p) for p in value.strip().split("."))
    except ValueError:
        parts = ()
    if not 2 <= len(parts) <= 3:
        raise ConfigError(f"environment variable KAFKA_API_VERSION: kafka.api_version: expected like 2.0, "
                          f"got {value!r}")
    return parts


def client_config(settings: KafkaSettings, timeout: float) -> dict[str, Any]:
    """The kafka-python settings shared by producer, consumers and admin client.

    Holds the SASL password in clear (the client needs it): never log this dict."""
    config: dict[str, Any] = {
        "bootstrap_servers": [s.strip() for s in settings.bootstrap_servers.split(",") if s.strip()],
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
        "request_timeout_ms": int(timeout * 1000),
        "bootstrap_timeout_ms": int(timeout * 1000),
    }
    version = parse_api_version(settings.api_version)
    if version:
        config["api_version"] = version
    if settings.sasl_mechanism:
        config["sasl_mechanism"] = settings.sasl_mechanism
        config["sasl_plain_username"] = settings.sasl_username
        if settings.sasl_password is not None:
            config["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    return config


class KafkaBus:
    """``MessageBus`` on Kafka. One producer per bus; one KafkaConsumer per :meth:`consumer`."""

    def __init__(self, settings: KafkaSettings, *, partitions: int = 3, replication_factor: int = 1,
                 timeout: float = 15.0, create_topics: bool = True, group_management: bool = False,
                 delivery_timeout: float = DELIVERY_TIMEOUT) -> None:
        kafka_health.install()
        self.settings = settings
        self.group_management = group_management
        self.timeout = timeout
        self.delivery_timeout = max(delivery_timeout, timeout + 1.0)  # kafka-python: >= request timeout + linger
        self._client = client_config(settings, timeout)
        self._meta: KafkaConsumer | None = None
        # every consumer still open, closed with the bus: held strongly, since a consumer the caller dropped
        # without closing keeps its client's IO thread (and its reconnect attempts) alive all the same
        self._consumers: set[KafkaTopicConsumer] = set()
        self._members: dict[str, GroupMember] = {}  # group -> this bus's one member of it
        where = f"Kafka at {settings.bootstrap_servers}"
        try:
            self._producer = start_client(
                KafkaProducer,
                **self._client,
                enable_idempotence=True,
                acks="all",
                linger_ms=5,
                batch_size=256 * 1024,
                max_block_ms=int(timeout * 1000),
                delivery_timeout_ms=int(self.delivery_timeout * 1000),
            )
        except KafkaError as exc:
            raise _translate(exc, f"cannot connect producer to {where}") from None
        if create_topics:
            try:
                self._ensure_topics(partitions, replication_factor)
            except BusError:
                self._producer.close(timeout=1)
                raise
        log.info("kafka bus: connected to %s (api_version=%s, prefix=%r)", where,
                 settings.api_version or "negotiated", settings.topic_prefix)

    def topic_name(self, topic: str) -> str:
        """The Kafka topic for a logical topic name."""
        return f"{self.settings.topic_prefix}{topic}"

    def group_name(self, group: str) -> str:
        """The Kafka consumer group for a logical group: the topic prefix namespaces groups too, so two
        deployments sharing a cluster (``staging.``, ``prod.``) never join or commit in each other's groups."""
        return f"{self.settings.topic_prefix}{group}"

    def logical_topic(self, name: str) -> str:
        prefix = self.settings.topic_prefix
        return name[len(prefix):] if prefix and name.startswith(prefix) else name

    def _ensure_topics(self, partitions: int, replication_factor: int) -> None:
        """Create missing topics with the admin API; where that is refused (no controller, no
        ACL), fall back to the broker's auto-creation by asking the producer for their metadata."""
        names = [self.topic_name(t) for t in ALL_TOPICS]
        try:
            admin = start_client(KafkaAdminClient, **self._client)
            try:
                missing = [t for t in names if t not in set(admin.list_topics())]
                if missing:
                    admin.create_topics([NewTopic(t, partitions, replication_factor) for t in missing],
                                        timeout_ms=int(self.timeout * 1000), raise_errors=False)
                    log.info("kafka bus: created topics %s (%d partitions each)", ",".join(missing), partitions)
            finally:
                admin.close()
            return
        except TopicAlreadyExistsError:
            return
        except KafkaError as exc:
            translated = _translate(exc, f"cannot reach Kafka at {self.settings.bootstrap_servers}")
            if isinstance(translated, TransientBusError):
                raise translated from None
            log.warning("kafka bus: admin cannot create topics (%s: %s); relying on auto-creation",
                        type(exc).__name__, exc)
        try:
            for name in names:
                self._producer.partitions_for(name)
        except KafkaError as exc:
            raise _translate(exc, "topics missing and not auto-created") from None

    def publish(self, topic: str, messages: Sequence[OutMessage]) -> None:
        if not messages:
            return
        name = self.topic_name(topic)
        futures = []
        try:
            for m in messages:
                futures.append(self._producer.send(
                    name,
                    key=m.key.encode("utf-8"),
                    value=json.dumps(m.value, ensure_ascii=False).encode("utf-8"),
                    headers=[(k, str(v).encode("utf-8")) for k, v in m.headers.items()],
                ))
            # the producer retries each record until acknowledged or until the delivery timeout; wait that long
            self._producer.flush(timeout=self.delivery_timeout + self.timeout)
            for fut in futures:
                fut.get(timeout=self.timeout)  # raises the broker's error for this record
        except (TypeError, ValueError) as exc:
            self._settle(futures)
            raise BusError(f"publish to {name}: value not JSON-serialisable: {exc}") from None
        except KafkaError as exc:
            self._settle(futures)
            raise _translate(exc, f"publish of {len(messages)} messages to {name} not acknowledged") from None
        kafka_health.note_ok()
        log.debug("kafka bus: published %d messages to %s", len(messages), name)

    def _settle(self, futures: list[Any]) -> None:
        """After a failed publish: let the records already handed to the producer be sent or expire, so that
        none of them reaches the topic after the caller has published the batch again."""
        if futures and not all(f.is_done for f in futures):
            try:
                self._producer.flush(timeout=self.delivery_timeout + self.timeout)
            except KafkaError as exc:
                log.warning("kafka bus: records of a failed publish still pending: %s", exc)

    def consumer(self, topic: str, group: str) -> Consumer:
        consumer = KafkaTopicConsumer(self, topic, group)
        self._consumers.add(consumer)
        return consumer

    def _group_member(self, group: str) -> GroupMember:
        """The member of ``group`` that this bus's consumers share (group management)."""
        if group not in self._members:
            self._members[group] = GroupMember(self, group)
        return self._members[group]

    def _drop_group_member(self, group: str) -> None:
        self._members.pop(group, None)

    def _metadata_consumer(self) -> KafkaConsumer:
        if self._meta is None:
            try:
                self._meta = start_client(KafkaConsumer, **self._client, enable_auto_commit=False)
            except KafkaError as exc:
                raise _translate(exc, "cannot connect metadata consumer") from None
        return self._meta

    def _partitions(self, name: str) -> list[TopicPartition]:
        meta = self._metadata_consumer()
        parts = meta.partitions_for_topic(name) or set()
        return [TopicPartition(name, p) for p in sorted(parts)]

    def stats(self, groups: Sequence[str] = ()) -> list[TopicStats]:
        """Messages per topic (end - beginning offsets) and each group's lag (end - committed)."""
        out: list[TopicStats] = []
        group_clients: dict[str, KafkaConsumer] = {}
        try:
            meta = self._metadata_consumer()
            try:  # each client made inside the try: one that fails to start must not leave the others running
                for g in groups:
                    group_clients[g] = start_client(KafkaConsumer, **self._client, group_id=self.group_name(g),
                                                    enable_auto_commit=False)
                for topic in ALL_TOPICS:
                    tps = self._partitions(self.topic_name(topic))
                    ends = meta.end_offsets(tps) if tps else {}
                    begins = meta.beginning_offsets(tps) if tps else {}
                    lag: dict[str, int] = {}
                    for g, client in group_clients.items():
                        total = 0
                        for tp in tps:
                            committed = client.committed(tp)
                            start = committed if committed is not None else begins[tp]
                            total += max(ends[tp] - start, 0)
                        lag[g] = total
                    out.append(TopicStats(topic, sum(ends[tp] - begins[tp] for tp in tps), lag))
            finally:
                for client in group_clients.values():
                    client.close(autocommit=False)
        except KafkaError as exc:
            raise _translate(exc, "stats") from None
        kafka_health.note_ok()
        return out

    def close(self) -> None:
        """Close the producer, and every consumer of this bus still open (uncommitted work is redelivered)."""
        try:
            for consumer in list(self._consumers):
                try:
                    consumer.close()
                except BusError as exc:
                    log.warning("kafka bus: closing consumer %s: %s", consumer.group, exc)
            self._producer.close(timeout=self.timeout)
        finally:
            if self._meta is not None:
                self._meta.close(autocommit=False)
                self._meta = None
