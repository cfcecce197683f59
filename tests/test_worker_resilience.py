"""The consume loop under failures found by the failure benchmark (``make chaos``): a broker away while
polling or at start, a rebalance while a batch is being retried. On the SQLite bus with a consumer that
fails on purpose; the real-broker versions are in ``test_kafka_resilience.py``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from pipeline.bus import TOPIC_RAW, Message, OutMessage
from pipeline.bus.sqlite import SQLiteBus
from pipeline.errors import BusError, TransientBusError, TransientIndexError
from pipeline.stages import MessageFailure
from pipeline.worker import StopRequested, retry_transient, run_stage


class Flaky:
    """Wraps a consumer: its first ``poll_failures`` polls raise TransientBusError; ``hold`` answers
    ``rebalanced`` the first time (as a Kafka group member does after a rebalance), and, as kafka-python does
    for a partition the rebalance handed back, keeps its position past the batch in hand."""

    def __init__(self, inner, poll_failures: int = 0, rebalanced: bool = False) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.poll_failures = poll_failures
        self.rebalanced = rebalanced
        self.commits: list[list[int]] = []
        self.rewound: list[int] = []
        self.holds = 0

    def poll(self, max_records: int = 100, timeout: float = 1.0) -> list[Message]:
        if self.poll_failures:
            self.poll_failures -= 1
            raise TransientBusError("poll: KafkaConnectionError: 111 ECONNREFUSED")
        return self.inner.poll(max_records, timeout)

    def commit(self, messages: Sequence[Message]) -> None:
        self.commits.append([m.offset for m in messages])
        self.inner.commit(messages)

    def hold(self, seconds: float, stop: threading.Event) -> bool:
        self.holds += 1
        if self.rebalanced:
            self.rebalanced = False
            return False
        return self.inner.hold(seconds, stop)

    def rewind(self, messages: Sequence[Message]) -> None:
        self.rewound.extend(m.offset for m in messages)
        self.inner.rewind(messages)

    def close(self) -> None:
        self.inner.close()


class FlakyBus:
    def __init__(self, bus: SQLiteBus, **flaky: object) -> None:
        self.bus = bus
        self.flaky = flaky
        self.consumers: list[Flaky] = []
        self.consumer_failures = 0

    def consumer(self, topic: str, group: str) -> Flaky:
        if self.consumer_failures:
            self.consumer_failures -= 1
            raise TransientBusError("cannot start consumer: KafkaTimeoutError: Unable to bootstrap")
        c = Flaky(self.bus.consumer(topic, group), **self.flaky)  # type: ignore[arg-type]
        self.consumers.append(c)
        return c

    def publish(self, topic: str, messages: Sequence[OutMessage]) -> None:
        self.bus.publish(topic, messages)

    def stats(self, groups: Sequence[str] = ()):  # type: ignore[no-untyped-def]
        return self.bus.stats(groups)

    def close(self) -> None:
        self.bus.close()


class Recorder:
    """A stage that records what it handled; raises a transient error on its first ``fail`` batches."""

    name = "record"
    topics = (TOPIC_RAW,)
    group = "recorder"

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.handled: list[str] = []

    def handle(self, messages: list[Message]) -> list[MessageFailure]:
        if self.fail:
            self.fail -= 1
            raise TransientIndexError("index: ConnectionError: refused")
        self.handled.extend(m.key for m in messages)
        return []

    def close(self) -> None:
        pass


@pytest.fixture
def bus(tmp_path: Path):  # type: ignore[no-untyped-def]
    b = SQLiteBus(tmp_path / "bus.sqlite3")
    b.publish(TOPIC_RAW, [OutMessage(f"k{i}", {"schema_version": 1}) for i in range(5)])
    yield b
    b.close()


def _run_until(bus: FlakyBus, stage: Recorder, done, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    """A long-running worker (not ``until_idle``) stopped once ``done()``; its stats."""
    stop = threading.Event()
    result: list[object] = []

    def work() -> None:
        try:
            result.append(run_stage(bus, stage, stop=stop, poll_timeout=0.05, backoff=0.01, max_backoff=0.05))  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            result.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.02)
    stop.set()
    thread.join(10)
    assert result, "run_stage did not return"
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def test_retry_transient_waits_out_transient_errors_and_says_when_it_works_again(
        caplog: pytest.LogCaptureFixture) -> None:
    calls = {"n": 0}

    def connect() -> str:
        calls["n"] += 1
        if calls["n"] < 4:
            raise TransientBusError("cannot connect producer to Kafka at 127.0.0.1:9: KafkaTimeoutError")
        return "bus"

    with caplog.at_level(logging.WARNING, logger="pipeline.worker"):
        assert retry_transient("connecting", connect, stop=threading.Event(), name="worker enrich",
                               backoff=0.001) == "bus"
    lines = [r.getMessage() for r in caplog.records]
    assert sum("connecting failed (transient), retrying in" in ln for ln in lines) == 3
    assert lines[-1].startswith("worker enrich: connecting works again after") and "(3 transient failures)" in lines[-1]


def test_retry_transient_raises_what_is_not_transient_and_gives_up_after_its_attempts() -> None:
    def refused() -> None:
        raise BusError("publish: MessageSizeTooLarge")

    with pytest.raises(BusError, match="MessageSizeTooLarge"):
        retry_transient("x", refused, stop=threading.Event(), name="t", backoff=0.001)

    def down() -> None:
        raise TransientBusError("down")

    with pytest.raises(TransientBusError):
        retry_transient("x", down, stop=threading.Event(), name="t", attempts=2, backoff=0.001)
    stop = threading.Event()
    stop.set()
    with pytest.raises(StopRequested):
        retry_transient("x", down, stop=stop, name="t")


def test_a_worker_keeps_polling_through_transient_poll_errors(bus: SQLiteBus) -> None:
    """Before: a poll that failed while the broker restarted ended the worker with exit status 2."""
    flaky = FlakyBus(bus, poll_failures=3)
    stage = Recorder()
    stats = _run_until(flaky, stage, lambda: len(stage.handled) == 5)
    assert sorted(stage.handled) == [f"k{i}" for i in range(5)]
    assert stats.processed == 5  # type: ignore[attr-defined]


def test_a_worker_waits_for_its_consumer_when_the_broker_is_not_up_yet(bus: SQLiteBus) -> None:
    flaky = FlakyBus(bus)
    flaky.consumer_failures = 2
    stage = Recorder()
    _run_until(flaky, stage, lambda: len(stage.handled) == 5)
    assert sorted(stage.handled) == [f"k{i}" for i in range(5)]


def test_a_drain_still_gives_up_on_a_bus_that_stays_down(bus: SQLiteBus) -> None:
    flaky = FlakyBus(bus, poll_failures=100)
    with pytest.raises(TransientBusError):
        run_stage(flaky, Recorder(), until_idle=True, poll_timeout=0.01, backoff=0.001, retries=2)  # type: ignore[arg-type]


def test_a_rebalance_while_a_batch_is_retried_rewinds_the_batch_uncommitted(bus: SQLiteBus) -> None:
    """The batch in hand may belong to another member after a rebalance: it is given back uncommitted and
    rewound, so that a member that gets the partition back reads it again instead of passing over it (the
    benchmark lost 45 documents that way before ``rewind``)."""
    flaky = FlakyBus(bus, rebalanced=True)
    stage = Recorder(fail=1)
    _run_until(flaky, stage, lambda: len(stage.handled) == 5)
    c = flaky.consumers[0]
    assert c.holds == 1, "the retry waited in hold(), as a group member must"
    assert c.rewound == [0, 1, 2, 3, 4]
    assert c.commits == [[0, 1, 2, 3, 4]], "committed once, after the batch was read again"
    assert sorted(stage.handled) == [f"k{i}" for i in range(5)]
