"""run_stage against both buses: dead-lettering, retries, whole-batch failures, stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import fixtures_kafka
import pytest

from pipeline.bus import TOPIC_DEADLETTER, TOPIC_ENRICHED, TOPIC_RAW, Message, MessageBus, OutMessage
from pipeline.errors import InputError, TransientIndexError
from pipeline.stages import MessageFailure
from pipeline.worker import run_stage

bus_factory = fixtures_kafka.bus_factory
kafka_cluster = fixtures_kafka.kafka_cluster
BusFactory = Callable[[], MessageBus]
FAST = {"poll_timeout": 0.3, "backoff": 0.01, "max_backoff": 0.05}


class RecordingStage:
    """A stage that copies messages to news.articles.enriched, failing on request.

    ``value["fail"]``: "permanent" | "transient-once" | "transient-always" | "crash"."""

    name = "test"
    topics = (TOPIC_RAW,)
    group = "newswatch-test"

    def __init__(self, bus: MessageBus, batch_errors: int = 0) -> None:
        self.bus = bus
        self.batch_errors = batch_errors
        self.calls: list[list[int]] = []
        self.seen_once: set[str] = set()

    def handle(self, messages: list[Message]) -> list[MessageFailure]:
        self.calls.append([m.value["n"] for m in messages])
        if self.batch_errors:
            self.batch_errors -= 1
            raise TransientIndexError("index unreachable: connection refused")
        failures, ok = [], []
        for m in messages:
            mode = m.value.get("fail")
            if mode == "crash":
                raise KeyError("boom")
            if mode == "permanent":
                failures.append(MessageFailure(m, "unknown schema_version 99", transient=False))
            elif mode == "transient-always" or (mode == "transient-once" and m.key not in self.seen_once):
                self.seen_once.add(m.key)
                failures.append(MessageFailure(m, "timeout talking to gazetteer", transient=True))
            else:
                ok.append(OutMessage(m.key, m.value))
        self.bus.publish(TOPIC_ENRICHED, ok)
        return failures

    def close(self) -> None:
        pass


def _publish(bus: MessageBus, fails: dict[int, str], n: int = 6) -> None:
    values = [{"schema_version": 1, "n": i, **({"fail": fails[i]} if i in fails else {})} for i in range(n)]
    bus.publish(TOPIC_RAW, [OutMessage(f"doc{v['n']}", v) for v in values])


def _read_all(bus: MessageBus, topic: str, expected: int) -> list[Message]:
    c = bus.consumer(topic, "reader")
    got: list[Message] = []
    deadline = time.monotonic() + 10
    while len(got) < expected and time.monotonic() < deadline:
        got.extend(c.poll(100, 0.3))
    c.close()
    return got


def _lag(bus: MessageBus, group: str) -> int:
    return next(s for s in bus.stats([group]) if s.topic == TOPIC_RAW).lag[group]


def test_poison_message_is_deadlettered_with_provenance_and_the_rest_go_on(bus_factory: BusFactory) -> None:
    bus = bus_factory()
    _publish(bus, {2: "permanent"})
    stats = run_stage(bus, RecordingStage(bus), until_idle=True, **FAST)
    assert (stats.processed, stats.deadlettered, stats.failed) == (5, 1, 1)
    dead = _read_all(bus, TOPIC_DEADLETTER, 1)
    assert len(dead) == 1
    d = dead[0]
    assert d.key == "doc2" and d.value == {"schema_version": 1, "n": 2, "fail": "permanent"}
    assert d.headers["error"] == "unknown schema_version 99"
    assert d.headers["source_topic"] == TOPIC_RAW
    assert d.headers["stage"] == "test"
    assert d.headers["failed_at"].endswith("+00:00")
    src = [m for m in _read_all(bus, TOPIC_RAW, 6) if m.key == "doc2"][0]
    assert (d.headers["source_partition"], d.headers["source_offset"]) == (str(src.partition), str(src.offset))
    assert sorted(m.value["n"] for m in _read_all(bus, TOPIC_ENRICHED, 5)) == [0, 1, 3, 4, 5]
    assert _lag(bus, "newswatch-test") == 0


def test_transient_failure_is_retried_alone_then_succeeds(bus_factory: BusFactory) -> None:
    bus = bus_factory()
    _publish(bus, {1: "transient-once"}, n=3)
    stage = RecordingStage(bus)
    stats = run_stage(bus, stage, until_idle=True, **FAST)
    assert (stats.processed, stats.deadlettered, stats.retried) == (3, 0, 1)
    assert [1] in stage.calls  # only the failed message was handled again
    assert sorted(m.value["n"] for m in _read_all(bus, TOPIC_ENRICHED, 3)) == [0, 1, 2]


def test_transient_failure_that_persists_is_deadlettered_after_retries(bus_factory: BusFactory) -> None:
    bus = bus_factory()
    _publish(bus, {0: "transient-always"}, n=2)
    stats = run_stage(bus, RecordingStage(bus), until_idle=True, retries=2, **FAST)
    assert (stats.processed, stats.deadlettered, stats.retried, stats.failed) == (1, 1, 2, 3)
    dead = _read_all(bus, TOPIC_DEADLETTER, 1)
    assert dead[0].headers["error"] == "timeout talking to gazetteer"


def test_a_crashing_message_is_isolated_and_deadlettered(bus_factory: BusFactory) -> None:
    bus = bus_factory()
    _publish(bus, {3: "crash"}, n=5)
    stats = run_stage(bus, RecordingStage(bus), until_idle=True, **FAST)
    assert (stats.processed, stats.deadlettered) == (4, 1)
    dead = _read_all(bus, TOPIC_DEADLETTER, 1)
    assert dead[0].key == "doc3" and dead[0].headers["error"] == "KeyError: 'boom'"


def test_whole_batch_transient_error_is_retried_without_commit(bus_factory: BusFactory) -> None:
    bus = bus_factory()
    _publish(bus, {}, n=3)
    stats = run_stage(bus, RecordingStage(bus, batch_errors=2), until_idle=True, **FAST)
    assert (stats.processed, stats.retried, stats.deadlettered) == (3, 2, 0)


def test_drain_gives_up_with_the_error_when_the_backend_stays_down(bus_factory: BusFactory) -> None:
    bus = bus_factory()
    _publish(bus, {}, n=3)
    with pytest.raises(TransientIndexError, match="connection refused"):
        run_stage(bus, RecordingStage(bus, batch_errors=100), until_idle=True, retries=2, **FAST)
    assert _lag(bus, "newswatch-test") == 3  # nothing committed: redelivered next time
    assert run_stage(bus, RecordingStage(bus), until_idle=True, **FAST).processed == 3


def test_stop_event_ends_a_long_running_worker_after_committing(bus_factory: BusFactory) -> None:
    bus = bus_factory()
    _publish(bus, {}, n=4)
    stop = threading.Event()
    result: dict[str, object] = {}
    thread = threading.Thread(target=lambda: result.setdefault("stats", run_stage(bus, RecordingStage(bus), stop=stop,
                                                                                 **FAST)))
    thread.start()
    deadline = time.monotonic() + 10
    while _lag(bus, "newswatch-test") and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert result["stats"].processed == 4  # type: ignore[attr-defined]
    assert _lag(bus, "newswatch-test") == 0


def test_non_transient_batch_error_is_isolated_per_message(bus_factory: BusFactory) -> None:
    bus = bus_factory()
    _publish(bus, {}, n=2)

    class Refusing(RecordingStage):
        def handle(self, messages: list[Message]) -> list[MessageFailure]:
            if any(m.value["n"] == 1 for m in messages):
                raise InputError("document has no url")
            return super().handle(messages)

    stats = run_stage(bus, Refusing(bus), until_idle=True, **FAST)
    assert (stats.processed, stats.deadlettered) == (1, 1)
    assert _read_all(bus, TOPIC_DEADLETTER, 1)[0].headers["error"] == "InputError: document has no url"


def test_a_config_error_stops_the_run_without_deadlettering(bus_factory: BusFactory) -> None:
    from pipeline.errors import ConfigError

    bus = bus_factory()
    _publish(bus, {}, n=2)

    class Misconfigured(RecordingStage):
        def handle(self, messages: list[Message]) -> list[MessageFailure]:
            raise ConfigError("environment variable ELASTICSEARCH_URL: HTTP 401: security_exception")

    with pytest.raises(ConfigError, match="401"):
        run_stage(bus, Misconfigured(bus), until_idle=True, **FAST)
    assert _lag(bus, "newswatch-test") == 2
    assert next(s for s in bus.stats() if s.topic == TOPIC_DEADLETTER).messages == 0
