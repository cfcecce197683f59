"""KafkaBus specifics beyond the shared contract: settings, prefixes, errors, group management; on the mock
cluster and on the session's real Kafka 4 broker."""

from __future__ import annotations

import socket
import time

import fixtures_kafka
import pytest
from pydantic import SecretStr

from pipeline.bus import TOPIC_ALERTS, TOPIC_ENRICHED, TOPIC_RAW, Message, OutMessage
from pipeline.bus.kafka import KafkaBus, client_config, parse_api_version
from pipeline.config import KafkaSettings
from pipeline.errors import BusError, ConfigError, TransientBusError

kafka_cluster = fixtures_kafka.kafka_cluster


@pytest.fixture(params=["kafka-mock", pytest.param("kafka-broker", marks=pytest.mark.kafka)])
def settings(request: pytest.FixtureRequest) -> KafkaSettings:
    """Settings with a fresh topic prefix on the mock cluster or on the real broker (protocol negotiated)."""
    if request.param == "kafka-broker":
        return fixtures_kafka.kafka_settings(request.getfixturevalue("real_kafka").bootstrap_servers, negotiate=True)
    return fixtures_kafka.kafka_settings(request.getfixturevalue("kafka_cluster"))


def test_api_version_parsing() -> None:
    assert parse_api_version("2.0") == (2, 0)
    assert parse_api_version("3.7.1") == (3, 7, 1)
    assert parse_api_version(None) is None and parse_api_version("") is None
    with pytest.raises(ConfigError, match="KAFKA_API_VERSION"):
        parse_api_version("latest")


def test_client_config_passes_sasl_through_without_exposing_it() -> None:
    settings = KafkaSettings(bootstrap_servers="k1:9092, k2:9092", security_protocol="SASL_SSL",
                             sasl_mechanism="SCRAM-SHA-512", sasl_username="svc", sasl_password=SecretStr("s3cret"))
    config = client_config(settings, 5.0)
    assert config["bootstrap_servers"] == ["k1:9092", "k2:9092"]
    assert config["sasl_plain_password"] == "s3cret" and config["sasl_plain_username"] == "svc"
    assert config["security_protocol"] == "SASL_SSL" and "api_version" not in config  # negotiated
    assert "s3cret" not in repr(settings)


def test_unreachable_broker_is_a_transient_error_quickly() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(TransientBusError, match=f"127.0.0.1:{port}"):
        KafkaBus(KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}", api_version="2.0"), timeout=1.0)
    assert time.monotonic() - start < 10


def test_topic_prefix_is_applied_on_the_wire_and_hidden_from_callers(kafka_cluster: str) -> None:
    bus = KafkaBus(fixtures_kafka.kafka_settings(kafka_cluster, prefix="staging."))
    try:
        bus.publish(TOPIC_RAW, [OutMessage("k", {"schema_version": 1})])
        assert bus._partitions("staging.news.articles.raw")
        msgs = bus.consumer(TOPIC_RAW, "prefix-test").poll(10, 5)
        assert [(m.topic, m.key) for m in msgs] == [(TOPIC_RAW, "k")]
    finally:
        bus.close()


def test_a_publish_the_broker_refuses_raises(settings: KafkaSettings) -> None:
    bus = KafkaBus(settings)
    try:
        with pytest.raises(BusError, match="not acknowledged|MessageSizeTooLarge"):
            bus.publish(TOPIC_RAW, [OutMessage("big", {"schema_version": 1, "text": "x" * 2_000_000})])
    finally:
        bus.close()


@pytest.mark.slow
def test_group_management_mode_subscribes_and_resumes(settings: KafkaSettings) -> None:
    bus = KafkaBus(settings, group_management=True)
    try:
        bus.publish(TOPIC_RAW, [OutMessage(f"k{i}", {"schema_version": 1, "n": i}) for i in range(6)])
        consumer = bus.consumer(TOPIC_RAW, "grouped")
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 6 and time.monotonic() < deadline:
            got.extend(consumer.poll(100, 1.0))  # the first poll waits for the group to assign partitions
        assert sorted(m.value["n"] for m in got) == list(range(6))
        consumer.commit(got)
        consumer.close()
        lag = next(s for s in bus.stats(["grouped"]) if s.topic == TOPIC_RAW).lag["grouped"]
        assert lag == 0
    finally:
        bus.close()


@pytest.mark.kafka
def test_one_group_member_serves_every_topic_of_a_stage(real_kafka) -> None:  # type: ignore[no-untyped-def]
    """The index stage reads two topics in one group: both consumers share one member, so neither waits
    on the other's rejoin, and each gets only its own topic's messages."""
    settings = fixtures_kafka.kafka_settings(real_kafka.bootstrap_servers, negotiate=True)
    bus = KafkaBus(settings, group_management=True)
    try:
        bus.publish(TOPIC_ENRICHED, [OutMessage(f"e{i}", {"schema_version": 1, "n": i}) for i in range(9)])
        bus.publish(TOPIC_ALERTS, [OutMessage(f"a{i}", {"schema_version": 1, "n": i}) for i in range(4)])
        enriched, alerts = bus.consumer(TOPIC_ENRICHED, "stage"), bus.consumer(TOPIC_ALERTS, "stage")
        got: dict[str, list[Message]] = {TOPIC_ENRICHED: [], TOPIC_ALERTS: []}
        start = time.monotonic()
        while (len(got[TOPIC_ENRICHED]), len(got[TOPIC_ALERTS])) != (9, 4) and time.monotonic() - start < 60:
            for consumer in (enriched, alerts):
                batch = consumer.poll(100, 0.5)
                consumer.commit(batch)
                got[consumer.topic].extend(batch)  # type: ignore[attr-defined]
        assert sorted(m.key for m in got[TOPIC_ENRICHED]) == [f"e{i}" for i in range(9)]
        assert sorted(m.key for m in got[TOPIC_ALERTS]) == [f"a{i}" for i in range(4)]
        assert len(bus._members) == 1
        assert enriched.poll(100, 0.2) == [] and alerts.poll(100, 0.2) == []
        enriched.close()
        alerts.close()
        assert bus._members == {}
        lags = {s.topic: s.lag["stage"] for s in bus.stats(["stage"])}
        assert lags[TOPIC_ENRICHED] == 0 and lags[TOPIC_ALERTS] == 0
    finally:
        bus.close()
