"""Consumers of :class:`~pipeline.bus.kafka.KafkaBus`: one topic and one group each, as the
``Consumer`` protocol says, in two modes.

* **Assign** (the default of a bus): the consumer ``assign``s itself every partition of its
  topic and uses its group only for committed offsets: no joins, no rebalances, the same
  semantics as the SQLite bus (one consumer per group and topic).
* **Group management** (``KafkaBus(group_management=True)``, what ``worker STAGE`` uses): the
  consumers of one group in one bus share ONE group member, a KafkaConsumer subscribed to all
  their topics (:class:`GroupMember`); each topic's consumer is a view that pauses the other
  topics' partitions while it polls. One member per process is what Kafka's group protocol
  expects: two members in one process, polled in turn, would each hold up the other's rejoin
  at every rebalance (the index stage reads two topics). Every assignment and revocation is
  logged (INFO). A member that stops heartbeating (a killed worker) leaves the group after
  ``SESSION_TIMEOUT_MS`` and its partitions go to the others, from its last committed
  offsets; ``MAX_POLL_INTERVAL_MS`` bounds the time between two polls of a member, after
  which the group evicts it, its commit fails (TransientBusError) and the batch is
  redelivered to the partition's new owner, which idempotent stages tolerate.

Consumers never auto-commit, start at ``earliest`` when the group has no position, and commit
explicit offsets (highest + 1 per partition) only from ``commit``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.net.compat import KafkaNetClient
from kafka.structs import OffsetAndMetadata

from ..errors import BusError, TransientBusError
from . import kafka_health
from .base import Message

if TYPE_CHECKING:
    from .kafka import KafkaBus

__all__ = ["GroupMember", "KafkaTopicConsumer", "start_client", "translate"]

log = logging.getLogger(__name__)

MAX_POLL_RECORDS = 500
MAX_POLL_INTERVAL_MS = 300_000
SESSION_TIMEOUT_MS = 10_000
#: how long a first poll may wait for the group to assign partitions
JOIN_TIMEOUT = 30.0
#: how much longer than asked a poll may wait when the consumer is known to be behind
CATCH_UP_TIMEOUT = 10.0


def translate(exc: Exception, what: str) -> BusError:
    """A kafka-python exception as one of ours (transient when Kafka says it is retriable)."""
    name = type(exc).__name__
    detail = str(exc) or name
    if isinstance(exc, CommitFailedError):
        return TransientBusError(f"{what}: group rebalanced before commit ({name})")
    if isinstance(exc, KafkaError) and (getattr(exc, "retriable", False) or "Timeout" in name
                                         or "NoBrokers" in name or "NodeNotReady" in name):
        return TransientBusError(f"{what}: {name}: {detail}")
    return BusError(f"{what}: {name}: {detail}")


def start_client(factory: Any, **config: Any) -> Any:
    """``factory(**config)`` (a KafkaConsumer, KafkaAdminClient, ...), and if that raises, close the network
    client it had already started: kafka-python leaves its IO thread running when a constructor fails
    (the broker cannot be reached), one more for every retry of a worker waiting for its broker."""
    started: list[KafkaNetClient] = []

    class Client(KafkaNetClient):  # type: ignore[misc]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            started.append(self)

    try:
        return factory(**config, kafka_client=Client)
    except BaseException:
        for client in started:
            try:
                client.close()
            except Exception as exc:  # noqa: BLE001 - closing what failed to start; the first error matters
                log.debug("closing a client that failed to start: %s", exc)
        raise


def _new_consumer(bus: KafkaBus, group: str) -> KafkaConsumer:
    return start_client(
        KafkaConsumer,
        **bus._client,
        group_id=bus.group_name(group),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=MAX_POLL_RECORDS,
        max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
        session_timeout_ms=SESSION_TIMEOUT_MS,
    )


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


def _by_topic(tps: Any) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for tp in tps:
        out.setdefault(tp.topic, []).append(tp.partition)
    return {t: sorted(p) for t, p in sorted(out.items())}


class _LogAssignments(ConsumerRebalanceListener):
    """One INFO line per rebalance, naming the partitions this member gives up or gets; counts rebalances."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.revocations = 0
        self.assignments = 0

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.revocations += 1
        if revoked:
            log.info("kafka consumer %s: revoked partitions %s", self.group, _by_topic(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.assignments += 1
        kafka_health.note_ok()
        log.info("kafka consumer %s: assigned partitions %s", self.group, _by_topic(assigned))


class GroupMember:
    """The one group member of ``group`` in a bus: a KafkaConsumer subscribed to every topic
    one of its :class:`KafkaTopicConsumer` views reads."""

    def __init__(self, bus: KafkaBus, group: str) -> None:
        self.group = group
        self.topics: set[str] = set()
        self.consumer = _new_consumer(bus, group)
        self._listener = _LogAssignments(group)

    @property
    def rebalances(self) -> tuple[int, int]:
        """(revocations, assignments) this member went through."""
        return self._listener.revocations, self._listener.assignments

    def add(self, topic: str) -> None:
        self.topics.add(topic)
        self.consumer.subscribe(sorted(self.topics), listener=self._listener)

    def remove(self, topic: str) -> bool:
        """Stop reading ``topic``; True when the member has no topic left (and was closed)."""
        self.topics.discard(topic)
        if self.topics:
            self.consumer.subscribe(sorted(self.topics), listener=self._listener)
            return False
        self.consumer.close(autocommit=False)
        return True


class KafkaTopicConsumer:
    """One topic, one group. Poll returns [] only when caught up or out of time."""

    def __init__(self, bus: KafkaBus, topic: str, group: str) -> None:
        self._bus = bus
        self.topic = topic
        self.group = group
        self._name = bus.topic_name(topic)
        self._closed = False
        self._member: GroupMember | None = None
        try:
            if bus.group_management:
                self._member = bus._group_member(group)
                self._member.add(self._name)
                self._c = self._member.consumer
            else:
                self._c = _new_consumer(bus, group)
                self._assign()
        except KafkaError as exc:
            raise translate(exc, f"cannot start consumer {group} on {self._name}") from None

    def _assign(self) -> None:
        parts = self._c.partitions_for_topic(self._name) or set()
        if parts and len(parts) != len(self._c.assignment()):
            self._c.assign([TopicPartition(self._name, p) for p in sorted(parts)])

    def _mine(self) -> list[TopicPartition]:
        return [tp for tp in self._c.assignment() if tp.topic == self._name]

    def _only_mine(self) -> None:
        """Shared member: fetch only this topic's partitions during this poll."""
        assigned = self._c.assignment()
        others = [tp for tp in assigned if tp.topic != self._name]
        if others:
            self._c.pause(*others)
        mine = [tp for tp in assigned if tp.topic == self._name]
        if mine:
            self._c.resume(*mine)

    def _behind(self) -> bool:
        """Whether the end offsets say there is more to read; False when they cannot be had (broker away):
        this only decides whether an empty poll waits a little longer."""
        tps = self._mine()
        if not tps:
            return False
        try:
            ends = self._c.end_offsets(tps, timeout_ms=5000)
            return any(self._c.position(tp, timeout_ms=5000) < ends[tp] for tp in tps)
        except KafkaError as exc:
            log.debug("kafka consumer %s on %s: end offsets unavailable: %s", self.group, self._name, exc)
            return False

    def _records(self, timeout: float, max_records: int) -> list[Any]:
        if self._member is not None:
            self._only_mine()
        batches = self._c.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        records = []
        for tp, recs in batches.items():
            if tp.topic == self._name:
                records.extend(recs)
            elif recs:  # a rebalance during the poll unpaused another topic: hand its records back
                self._c.seek(tp, min(r.offset for r in recs))
        return records

    def poll(self, max_records: int = 100, timeout: float = 1.0) -> list[Message]:
        start = time.monotonic()
        deadline = start + max(timeout, 0.0)
        join_deadline = start + max(timeout, JOIN_TIMEOUT)
        catch_up_deadline = deadline + CATCH_UP_TIMEOUT
        try:
            while True:
                remaining = max(deadline - time.monotonic(), 0.05)
                records = self._records(min(remaining, 0.5), max_records)
                if records:
                    kafka_health.note_ok()
                    records.sort(key=lambda r: (r.partition, r.offset))
                    return [_to_message(self._bus, r) for r in records]
                now = time.monotonic()
                if not self._mine():
                    if self._member is None:
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
            raise translate(exc, f"poll {self.group} on {self._name}") from None

    def hold(self, seconds: float, stop: threading.Event) -> bool:
        """Wait without taking records; in a group, keep polling with every partition paused, so that this
        member rejoins a rebalance at once instead of holding the whole group up until it polls again
        (a worker retrying a batch while the index is down could otherwise stall its group for as long as
        the outage lasts: ``max_poll_interval_ms``). False as soon as a rebalance happened."""
        if self._member is None:
            stop.wait(seconds)
            return True
        revoked_before, _ = self._member.rebalances
        deadline = time.monotonic() + seconds
        settle_by = 0.0
        while not stop.is_set():
            now = time.monotonic()
            revocations, assignments = self._member.rebalances
            if revocations != revoked_before:
                # a rebalance began; hold on until it has ended (the new assignment is known), so that the caller
                # rewinds its batch on the partitions it owns now
                settle_by = settle_by or now + JOIN_TIMEOUT
                if assignments >= revocations or now > settle_by:
                    log.info("kafka consumer %s on %s: the group rebalanced while a batch was being retried",
                             self.group, self._name)
                    return False
            elif now >= deadline:
                return True
            self._poll_paused(0.5)
        return self._member.rebalances[0] == revoked_before

    def _poll_paused(self, seconds: float) -> None:
        """One poll with every assigned partition paused: group duties (heartbeat, rejoin), no records."""
        try:
            assigned = self._c.assignment()
            if assigned:
                self._c.pause(*assigned)
            got = self._c.poll(timeout_ms=int(seconds * 1000), max_records=1)
            for tp, recs in got.items():  # partitions assigned during this poll are not paused yet
                if recs:
                    self._c.seek(tp, min(r.offset for r in recs))
        except KafkaError as exc:  # the broker is away: no rebalance can happen either
            log.debug("kafka consumer %s: poll while holding: %s", self.group, exc)
            time.sleep(seconds)

    def rewind(self, messages: Sequence[Message]) -> None:
        """Seek each partition of ``messages`` that is still assigned back to its first message. kafka-python
        keeps its position on a partition that a rebalance hands back to the same member: without this, a batch
        dropped during the rebalance was passed over, and the next commit skipped it (45 documents lost in the
        failure benchmark)."""
        first: dict[int, int] = {}
        for m in messages:
            first[m.partition] = min(first.get(m.partition, m.offset), m.offset)
        owned = set(self._c.assignment())
        for partition, offset in sorted(first.items()):
            tp = TopicPartition(self._name, partition)
            if tp in owned:
                self._c.seek(tp, offset)
                log.info("kafka consumer %s: %s[%d] rewound to %d", self.group, self._name, partition, offset)

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
            raise translate(exc, f"commit {self.group} on {self._name}{where}") from None
        kafka_health.note_ok()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._bus._consumers.discard(self)
        try:
            if self._member is None:
                self._c.close(autocommit=False)
            elif self._member.remove(self._name):
                self._bus._drop_group_member(self.group)
        except KafkaError as exc:
            raise translate(exc, f"close consumer {self.group} on {self._name}") from None
