"""Fixtures for tests that run against every message bus.

``kafka_cluster`` starts librdkafka's in-process mock Kafka cluster (one broker) through a
confluent-kafka Producer and yields its bootstrap address; dropping the Producer stops it.
``bus_factory`` opens a fresh, isolated bus of the parametrized kind: SQLite in tmp_path,
KafkaBus on the mock cluster (protocol pinned to 2.0, which the mock needs), or KafkaBus on
the session's real Kafka 4 broker (``real_kafka``, protocol negotiated), each Kafka one with a
unique topic prefix so tests never see each other's messages. Import the fixtures into a test module with
``from fixtures_kafka import bus_factory, kafka_cluster  # noqa: F401``.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.bus.base import MessageBus
from pipeline.config import KafkaSettings

BUS_KINDS = ["sqlite", "kafka-mock", pytest.param("kafka-broker", marks=pytest.mark.kafka)]


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[str]:
    confluent_kafka = pytest.importorskip("confluent_kafka", reason="confluent-kafka (mock cluster) not installed")
    producer = confluent_kafka.Producer({"test.mock.num.brokers": 1, "log_level": 3})
    brokers = producer.list_topics(timeout=5).brokers.values()
    address = ",".join(f"{b.host}:{b.port}" for b in brokers)
    yield address
    producer.flush(1)
    del producer
    gc.collect()


def kafka_settings(address: str, prefix: str | None = None, *, negotiate: bool = False) -> KafkaSettings:
    """Settings for the mock cluster (``api_version`` 2.0) or, with ``negotiate``, a real broker."""
    return KafkaSettings(bootstrap_servers=address, api_version=None if negotiate else "2.0",
                         topic_prefix=prefix if prefix is not None else f"t{uuid.uuid4().hex[:8]}.")


@pytest.fixture(params=BUS_KINDS)
def bus_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], MessageBus]]:
    """Call it to open a bus; every call opens the SAME topics (a second process, say)."""
    kind = request.param
    opened: list[MessageBus] = []
    if kind.startswith("kafka"):
        if kind == "kafka-broker":
            settings = kafka_settings(request.getfixturevalue("real_kafka").bootstrap_servers, negotiate=True)
        else:
            settings = kafka_settings(request.getfixturevalue("kafka_cluster"))

        def make() -> MessageBus:
            from pipeline.bus.kafka import KafkaBus

            bus = KafkaBus(settings)
            opened.append(bus)
            return bus
    else:

        def make() -> MessageBus:
            from pipeline.bus.sqlite import SQLiteBus

            bus = SQLiteBus(tmp_path / "bus.sqlite3")
            opened.append(bus)
            return bus

    yield make
    for bus in opened:
        bus.close()
