"""One contract suite for MessageBus, run against SQLiteBus and KafkaBus (librdkafka mock cluster)."""

from __future__ import annotations

import time
from collections.abc import Callable

import fixtures_kafka
import pytest

from pipeline.bus import ALL_TOPICS, TOPIC_ENRICHED, TOPIC_RAW, Message, MessageBus, OutMessage

bus_factory = fixtures_kafka.bus_factory
kafka_cluster = fixtures_kafka.kafka_cluster
BusFactory = Callable[[], MessageBus]


def _out(n: int, start: int = 0, keys: int = 4) -> list[OutMessage]:
    return [
        OutMessage(key=f"doc{i % keys}", value={"schema_version": 1, "n": i, "text": "ümlaut é"},
                   headers={"seq": str(i)})
        for i in range(start, start + n)
    ]


def _drain(consumer, expected: int, timeout: float = 10.0) -> list[Message]:
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        got.extend(consumer.poll(max_records=100, timeout=0.5))
    return got


def test_publish_consume_keys_values_headers_and_per_key_order(bus_factory: BusFactory) -> None:
    bus = bus_factory()
    bus.publish(TOPIC_RAW, _out(12))
    consumer = bus.consumer(TOPIC_RAW, "g1")
    got = _drain(consumer, 12)
    assert sorted(m.value["n"] for m in got) == list(range(12))
    for m in got:
        assert m.topic == TOPIC_RAW
        assert m.key == f"doc{m.value['n'] % 4}"
        assert m.headers == {"seq": str(m.value["n"])}
        assert m.value["text"] == "ümlaut é"
        assert m.timestamp > 0
    for key in {m.key for m in got}:  # one key = one partition: publish order kept
        ns = [m.value["n"] for m in sorted(got, key=lambda m: (m.partition, m.offset)) if m.key == key]
        assert ns == sorted(ns)
    assert len({(m.partition, m.offset) for m in got}) == 12
    assert consumer.poll(max_records=100, timeout=0.2) == []


def test_poll_respects_max_records(bus_factory: BusFactory) -> None:
    bus = bus_factory()
    bus.publish(TOPIC_RAW, _out(10, keys=1))
    consumer = bus.consumer(TOPIC_RAW, "g1")
    first = consumer.poll(max_records=3, timeout=5)
    assert 1 <= len(first) <= 3
    rest = _drain(consumer, 10 - len(first))
    assert sorted(m.value["n"] for m in first + rest) == list(range(10))


def test_commit_then_resume_from_committed_position(bus_factory: BusFactory) -> None:
    bus = bus_factory()
    bus.publish(TOPIC_RAW, _out(10))
    consumer = bus.consumer(TOPIC_RAW, "g1")
    got = sorted(_drain(consumer, 10), key=lambda m: (m.partition, m.offset))
    consumer.commit(got[:6])
    consumer.close()
    again = bus_factory().consumer(TOPIC_RAW, "g1")  # a restarted worker
    rest = _drain(again, 4)
    assert sorted(m.value["n"] for m in rest) == sorted(m.value["n"] for m in got[6:])
    assert again.poll(max_records=100, timeout=0.2) == []


def test_uncommitted_messages_are_delivered_again_at_least_once(bus_factory: BusFactory) -> None:
    bus = bus_factory()
    bus.publish(TOPIC_RAW, _out(5))
    consumer = bus.consumer(TOPIC_RAW, "g1")
    assert len(_drain(consumer, 5)) == 5
    consumer.close()  # crashed before commit
    again = bus.consumer(TOPIC_RAW, "g1")
    assert sorted(m.value["n"] for m in _drain(again, 5)) == list(range(5))


def test_two_groups_are_independent_and_topics_separate(bus_factory: BusFactory) -> None:
    bus = bus_factory()
    bus.publish(TOPIC_RAW, _out(4))
    bus.publish(TOPIC_ENRICHED, _out(2, start=100))
    a = bus.consumer(TOPIC_RAW, "group-a")
    batch = _drain(a, 4)
    a.commit(batch)
    b = bus.consumer(TOPIC_RAW, "group-b")
    assert sorted(m.value["n"] for m in _drain(b, 4)) == [0, 1, 2, 3]
    e = bus.consumer(TOPIC_ENRICHED, "group-a")
    assert sorted(m.value["n"] for m in _drain(e, 2)) == [100, 101]


def test_stats_count_messages_and_lag_per_group(bus_factory: BusFactory) -> None:
    bus = bus_factory()
    bus.publish(TOPIC_RAW, _out(7))
    consumer = bus.consumer(TOPIC_RAW, "g1")
    got = _drain(consumer, 7)
    consumer.commit(got)
    bus.publish(TOPIC_RAW, _out(2, start=7))
    stats = {s.topic: s for s in bus.stats(["g1", "never"])}
    assert set(ALL_TOPICS) <= set(stats)
    assert stats[TOPIC_RAW].messages == 9
    assert stats[TOPIC_RAW].lag == {"g1": 2, "never": 9}
    assert stats[TOPIC_ENRICHED].messages == 0


def test_publish_nothing_is_a_no_op_and_bad_value_is_a_bus_error(bus_factory: BusFactory) -> None:
    from pipeline.errors import BusError

    bus = bus_factory()
    bus.publish(TOPIC_RAW, [])
    with pytest.raises(BusError):
        bus.publish(TOPIC_RAW, [OutMessage("k", {"schema_version": 1, "bad": object()})])
