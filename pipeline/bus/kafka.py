"""The distributed message bus: Apache Kafka through kafka-python.

* Topics are ``news.articles.raw``, ``news.articles.enriched``, ``news.alerts`` and
  ``news.deadletter``, each prefixed by ``settings.topic_prefix``; they are created at
  start when missing (``partitions`` each). Message key = document id, so every
  message about one document lands on one partition, in order.
* The producer is idempotent with ``acks='all'``; :meth:`KafkaBus.publish` waits on the
  future of every send (``flush()`` alone says nothing about success) and raises
  :class:`~pipeline.errors.TransientBusError` / :class:`~pipeline.errors.BusError`.
* A consumer reads every partition of its topic (manual ``assign``) and uses its group
  only for committed offsets: no joins, no rebalances, the same semantics as the SQLite
  bus (run one consumer per group and topic). Consumers never auto-commit, start at
  ``earliest`` when the group has no position, and commit explicit offsets (highest + 1
  per partition) only from :meth:`commit`.
* ``group_management=True`` makes consumers ``subscribe`` instead, so several worker
  processes of one stage split the partitions (each join costs a rebalance of seconds); this is
  what ``worker STAGE`` uses. Every assignment and revocation is logged (INFO). A member that
  stops heartbeating (killed) leaves the group after ``SESSION_TIMEOUT_MS`` (10 s) and its
  partitions go to the others, from its last committed offsets.
  Then ``max_poll_interval_ms`` (300 s) bounds the time between two polls: a worker must
  finish a batch (``max_records`` <= ``max_poll_records`` = 500, retries and backoff
  included) within 5 minutes or the group evicts it; its commit then fails
  (TransientBusError) and the batch is redelivered to the new owner of the partition,
  which idempotent stages tolerate.
* ``settings.api_version`` (``KAFKA_API_VERSION``, e.g. ``"2.0"``) pins the protocol
  version; otherwise the client negotiates it with the broker.
"""

from __future__ import annotations

import json
import logging
import time
import weakref
from collections.abc import Sequence
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import CommitFailedError, KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata

from ..config import KafkaSettings
from ..errors import BusError, ConfigError, TransientBusError
from .base import ALL_TOPICS, Consumer, Message, OutMessage, TopicStats

__all__ = ["KafkaBus", "client_config", "parse_api_version"]

log = logging.getLogger(__name__)

MAX_POLL_RECORDS = 500
MAX_POLL_INTERVAL_MS = 300_000
SESSION_TIMEOUT_MS = 10_000
#: how long a first poll may wait for the group to assign partitions
JOIN_TIMEOUT = 30.0
#: how much longer than asked a poll may wait when the consumer is known to be behind
CATCH_UP_TIMEOUT = 10.0


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


def _translate(exc: Exception, what: str) -> BusError:
    """A kafka-python exception as one of ours (transient when Kafka says it is retriable)."""
    name = type(exc).__name__
    detail = str(exc) or name
    if isinstance(exc, CommitFailedError):
        return TransientBusError(f"{what}: group rebalanced before commit ({name})")
    if isinstance(exc, KafkaError) and (getattr(exc, "retriable", False) or "Timeout" in name
                                         or "NoBrokers" in name or "NodeNotReady" in name):
        return TransientBusError(f"{what}: {name}: {detail}")
    return BusError(f"{what}: {name}: {detail}")


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
                 timeout: float = 15.0, create_topics: bool = True, group_management: bool = False) -> None:
        self.settings = settings
        self.group_management = group_management
        self.timeout = timeout
        self._client = client_config(settings, timeout)
        self._meta: KafkaConsumer | None = None
        self._consumers: weakref.WeakSet[_KafkaConsumer] = weakref.WeakSet()  # closed with the bus
        where = f"Kafka at {settings.bootstrap_servers}"
        try:
            self._producer = KafkaProducer(
                **self._client,
                enable_idempotence=True,
                acks="all",
                linger_ms=5,
                batch_size=256 * 1024,
                max_block_ms=int(timeout * 1000),
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
            admin = KafkaAdminClient(**self._client)
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
        try:
            futures = [
                self._producer.send(
                    name,
                    key=m.key.encode("utf-8"),
                    value=json.dumps(m.value, ensure_ascii=False).encode("utf-8"),
                    headers=[(k, str(v).encode("utf-8")) for k, v in m.headers.items()],
                )
                for m in messages
            ]
            self._producer.flush(timeout=self.timeout)
            for fut in futures:
                fut.get(timeout=self.timeout)  # raises the broker's error for this record
        except (TypeError, ValueError) as exc:
            raise BusError(f"publish to {name}: value not JSON-serialisable: {exc}") from None
        except KafkaError as exc:
            raise _translate(exc, f"publish of {len(messages)} messages to {name} not acknowledged") from None
        log.debug("kafka bus: published %d messages to %s", len(messages), name)

    def consumer(self, topic: str, group: str) -> Consumer:
        consumer = _KafkaConsumer(self, topic, group)
        self._consumers.add(consumer)
        return consumer

    def _metadata_consumer(self) -> KafkaConsumer:
        if self._meta is None:
            try:
                self._meta = KafkaConsumer(**self._client, enable_auto_commit=False)
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
        try:
            meta = self._metadata_consumer()
            group_clients = {
                g: KafkaConsumer(**self._client, group_id=self.group_name(g), enable_auto_commit=False) for g in groups
            }
            try:
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


def _to_message(bus: KafkaBus, rec: Any) -> Message:
    raw = rec.value or b""
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        value = {"_unparseable": raw.decode("utf-8", errors="replace")}
    headers = {k: (v or b"").decode("utf-8", errors="replace") for k, v in (rec.headers or [])}
    key = rec.key.decode("utf-8", errors="replace") if rec.key is not None else ""
    return Message(bus.logical_topic(rec.topic), rec.partition, rec.offset, key, value, headers,
                   (rec.timestamp or 0) / 1000.0)


class _LogAssignments(ConsumerRebalanceListener):
    """One INFO line per rebalance, naming the partitions this member gives up or gets."""

    def __init__(self, group: str, topic: str) -> None:
        self.group = group
        self.topic = topic

    def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:
            log.info("kafka consumer %s on %s: revoked partitions %s", self.group, self.topic,
                     sorted(tp.partition for tp in revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("kafka consumer %s on %s: assigned partitions %s", self.group, self.topic,
                 sorted(tp.partition for tp in assigned))


class _KafkaConsumer:
    """One topic, one group. Poll returns [] only when caught up or out of time.

    With ``group_management`` the consumer ``subscribe``s and the group coordinator splits
    the partitions among members; otherwise it ``assign``s itself every partition and only
    uses the group for committed offsets (no joins, no rebalances).
    """

    def __init__(self, bus: KafkaBus, topic: str, group: str) -> None:
        self._bus = bus
        self.topic = topic
        self.group = group
        self._name = bus.topic_name(topic)
        self._closed = False
        try:
            self._c = KafkaConsumer(
                **bus._client,
                group_id=bus.group_name(group),
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=MAX_POLL_RECORDS,
                max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
                session_timeout_ms=SESSION_TIMEOUT_MS,
            )
            if bus.group_management:
                self._c.subscribe([self._name], listener=_LogAssignments(self.group, self._name))
            else:
                self._assign()
        except KafkaError as exc:
            raise _translate(exc, f"cannot start consumer {group} on {self._name}") from None

    def _assign(self) -> None:
        parts = self._c.partitions_for_topic(self._name) or set()
        if parts and len(parts) != len(self._c.assignment()):
            self._c.assign([TopicPartition(self._name, p) for p in sorted(parts)])

    def _behind(self) -> bool:
        tps = list(self._c.assignment())
        if not tps:
            return False
        ends = self._c.end_offsets(tps)
        return any(self._c.position(tp) < ends[tp] for tp in tps)

    def poll(self, max_records: int = 100, timeout: float = 1.0) -> list[Message]:
        start = time.monotonic()
        deadline = start + max(timeout, 0.0)
        join_deadline = start + max(timeout, JOIN_TIMEOUT)
        catch_up_deadline = deadline + CATCH_UP_TIMEOUT
        try:
            while True:
                remaining = max(deadline - time.monotonic(), 0.05)
                batches = self._c.poll(timeout_ms=int(min(remaining, 0.5) * 1000), max_records=max_records)
                records = [r for recs in batches.values() for r in recs]
                if records:
                    records.sort(key=lambda r: (r.partition, r.offset))
                    return [_to_message(self._bus, r) for r in records]
                now = time.monotonic()
                if not self._c.assignment():
                    if not self._bus.group_management:
                        self._assign()
                    if now < join_deadline:
                        continue
                    log.warning("kafka consumer %s on %s: no partitions assigned after %.0fs", self.group,
                                self._name, JOIN_TIMEOUT)
                    return []
                if now < deadline:
                    continue
                if now < catch_up_deadline and self._behind():
                    continue
                return []
        except KafkaError as exc:
            raise _translate(exc, f"poll {self.group} on {self._name}") from None

    def commit(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for m in messages:
            tp = TopicPartition(self._name, m.partition)
            if tp not in offsets or offsets[tp].offset < m.offset + 1:
                offsets[tp] = OffsetAndMetadata(m.offset + 1, "", -1)
        try:
            self._c.commit(offsets)
        except KafkaError as exc:
            where = ",".join(f"[{tp.partition}]@{o.offset}" for tp, o in sorted(offsets.items()))
            raise _translate(exc, f"commit {self.group} on {self._name}{where}") from None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._c.close(autocommit=False)
        except KafkaError as exc:
            raise _translate(exc, f"close consumer {self.group} on {self._name}") from None
