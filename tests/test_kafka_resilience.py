"""KafkaBus and the workers when the broker goes away: regressions found by the failure benchmark
(``make chaos``). A broker SIGKILLed and restarted under a running worker and a blocked publish; a group
member retrying a batch while another joins; kafka-python's connection noise; clients that failed to
start leaking their IO thread."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import fixtures_kafka
import pytest
from engines_pool import config_dir_with, skip_or_fail
from test_kafka_scale_out import _wait

from pipeline.bus import TOPIC_ENRICHED, TOPIC_RAW, Message, OutMessage, kafka_health
from pipeline.bus.kafka import KafkaBus
from pipeline.bus.kafka_consumer import start_client
from pipeline.config import KafkaSettings
from pipeline.engines import KafkaEngine, die_with_parent, find_java, free_port
from pipeline.errors import EngineUnavailableError
from pipeline.models import Article

PROJECT = Path(__file__).resolve().parents[1]
kafka_cluster = fixtures_kafka.kafka_cluster


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _io_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("kafka-io")]


def test_a_client_that_cannot_start_leaves_no_io_thread_behind() -> None:
    """kafka-python starts its network thread before it bootstraps, and a failed constructor left it running:
    one more thread for every retry of a worker waiting for its broker."""
    from kafka import KafkaAdminClient, KafkaConsumer

    before = _io_threads()
    port = _dead_port()
    for factory in (KafkaConsumer, KafkaAdminClient):
        with pytest.raises(Exception, match="bootstrap"):
            start_client(factory, bootstrap_servers=[f"127.0.0.1:{port}"], bootstrap_timeout_ms=500,
                         request_timeout_ms=1000)
    deadline = time.monotonic() + 5
    while _io_threads() != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _io_threads() == before


def test_a_consumer_dropped_without_close_is_closed_with_its_bus(kafka_cluster: str) -> None:
    """The bus held its consumers weakly: one the caller dropped unclosed vanished from the set it closes, while
    its client's IO thread lived on, reconnecting forever once the broker was gone ('Metadata refresh failed
    ECONNREFUSED' after the test session)."""
    import gc

    before = _io_threads()
    bus = KafkaBus(fixtures_kafka.kafka_settings(kafka_cluster))
    try:
        bus.consumer(TOPIC_RAW, "dropped").poll(10, 0.5)  # never closed by the caller
        gc.collect()
    finally:
        bus.close()
    deadline = time.monotonic() + 5
    while _io_threads() != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _io_threads() == before


def _record(name: str, level: int, msg: str, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except ConnectionResetError:
            exc_info = sys.exc_info()
    return logging.LogRecord(name, level, __file__, 1, msg, None, exc_info)


@pytest.fixture
def fresh_episode(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process-wide reachability state, new for this test (other tests' clients may have touched it)."""
    monkeypatch.setattr(kafka_health, "_STATE", kafka_health._Episode())


def test_an_unreachable_broker_is_one_episode_in_the_log(caplog: pytest.LogCaptureFixture, fresh_episode: None,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """kafka-python logs a broker restart as hundreds of ERROR lines and a traceback per reset socket."""
    noise = kafka_health.ConnectionNoise()
    flood = [_record("kafka.net.transport", logging.ERROR, "<KafkaTCPTransport>: Error receiving network data "
                                                            "closing socket", exc=True)]
    flood += [_record("kafka.net.manager", logging.ERROR, "Connection failed: KafkaConnectionError: 111 ECONNREFUSED")
              for _ in range(300)]
    flood += [_record("kafka.cluster", logging.WARNING, "No node available for metadata refresh - backoff/retry")
              for _ in range(300)]
    kept = [r for r in flood if noise.filter(r)]
    assert len(kept) == 1
    assert kept[0].levelno == logging.WARNING and kept[0].exc_info is None
    assert kept[0].getMessage().startswith("kafka: broker unreachable (") and "transient" in kept[0].getMessage()
    assert kafka_health.episode()[1] >= 601
    other = _record("kafka.coordinator", logging.WARNING, "Unknown member id in group x")
    assert noise.filter(other) and other.getMessage() == "Unknown member id in group x", "unrelated lines pass"
    with caplog.at_level(logging.WARNING, logger="pipeline.bus.kafka_health"):
        kafka_health.note_ok()
        kafka_health.note_ok()
    ends = [r.getMessage() for r in caplog.records if "reachable again" in r.getMessage()]
    assert len(ends) == 1 and ends[0].startswith("kafka: broker reachable again after")
    assert kafka_health.episode() == (None, 0)

    # a broker that has just come back refuses a metadata refresh or two: counted, not a new outage
    settling = _record("kafka.cluster", logging.WARNING, "No node available for metadata refresh - backoff/retry")
    assert not noise.filter(settling) and kafka_health.episode()[0] is None
    monkeypatch.setattr(kafka_health, "SETTLE", 0.0)  # an outage that outlasts the settling window is one
    again = _record("kafka.net.manager", logging.ERROR, "Connection failed: KafkaConnectionError: 111 ECONNREFUSED")
    assert noise.filter(again) and "broker unreachable" in again.getMessage()


def test_the_client_closed_socket_race_is_one_line_other_task_errors_keep_their_traceback(
        fresh_episode: None) -> None:
    noise = kafka_health.ConnectionNoise()

    def task_error(exc: BaseException) -> logging.LogRecord:
        try:
            raise exc
        except BaseException:
            info = sys.exc_info()
        return logging.LogRecord("kafka.net.selector", logging.ERROR, __file__, 1,
                                 "Unhandled exception in task %s:", ("<Task>",), info)

    race = task_error(ValueError("Invalid file descriptor: -1"))
    assert noise.filter(race) and race.exc_info is None and race.levelno == logging.WARNING
    assert "socket closed under it" in race.getMessage()
    bug = task_error(RuntimeError("something else"))
    assert noise.filter(bug) and bug.exc_info is not None and bug.levelno == logging.ERROR


def test_the_client_event_loop_warnings_are_rate_limited(fresh_episode: None) -> None:
    noise = kafka_health.ConnectionNoise()
    slow = [_record("kafka.net.selector", logging.WARNING, "Task <t> ran for 0.2s (>0.1s threshold). It is blocking "
                                                           "the event loop -- likely a tight sync loop")
            for _ in range(20)]
    assert sum(noise.filter(r) for r in slow) <= 1


def _article(i: int) -> dict[str, object]:
    return Article(id=f"rs{i:03d}", url=f"https://example.org/rs/{i}", title=f"Report {i} from Deir ez-Zor",
                   text="Fighting was reported near Deir ez-Zor on the Euphrates. " * 6,
                   fetched_at="2026-11-20T10:00:00+00:00").to_dict()


@pytest.mark.slow
def test_a_worker_and_a_publish_ride_out_a_broker_sigkill_and_restart(tmp_path: Path, env: dict[str, str]) -> None:
    """Before: the worker's next poll raised (exit status 2, a crash loop while the broker was down), a
    restarted worker could not start, and a publish gave up after 15 s leaving its records in the producer
    to be sent again. Now the worker logs one 'unreachable' and one 'reachable again' line and goes on,
    and the publish waits for the broker: every record once on the topic."""
    try:
        find_java()
    except EngineUnavailableError as exc:
        skip_or_fail(f"real engines unavailable: {exc}")
    engine = KafkaEngine(tmp_path / "kafka", port=free_port())
    engine.start()
    prefix = f"rs{uuid.uuid4().hex[:6]}."
    settings = KafkaSettings(bootstrap_servers=engine.bootstrap_servers, topic_prefix=prefix)
    worker_env = {**os.environ, **env, "PIPELINE_CONFIG_DIR": str(config_dir_with(tmp_path, topic_prefix=prefix)),
                  "PIPELINE_BUS": "kafka", "KAFKA_BOOTSTRAP_SERVERS": engine.bootstrap_servers,
                  "PIPELINE_LOG_LEVEL": "INFO"}
    log_path = tmp_path / "worker.log"
    bus: KafkaBus | None = None
    with log_path.open("w", encoding="utf-8") as log_file:
        worker = subprocess.Popen([sys.executable, "-m", "pipeline", "worker", "enrich", "--poll-timeout", "0.5"],
                                  cwd=PROJECT, env=worker_env, stdout=log_file, stderr=subprocess.STDOUT,
                                  preexec_fn=die_with_parent)
        try:
            bus = KafkaBus(settings)

            def counts() -> tuple[int, int]:
                stats = {s.topic: s for s in bus.stats(["newswatch-enrich"])}  # type: ignore[union-attr]
                return stats[TOPIC_ENRICHED].messages, stats[TOPIC_RAW].lag["newswatch-enrich"]

            bus.publish(TOPIC_RAW, [OutMessage(f"rs{i:03d}", _article(i)) for i in range(5)])
            _wait("the first 5 articles enriched", lambda: counts() == (5, 0))

            engine.kill()
            published: list[BaseException | None] = []

            def publish() -> None:
                try:
                    bus.publish(TOPIC_RAW, [OutMessage(f"rs{i:03d}", _article(i)) for i in range(5, 10)])  # type: ignore[union-attr]
                    published.append(None)
                except BaseException as exc:  # noqa: BLE001 - handed to the test
                    published.append(exc)

            thread = threading.Thread(target=publish)
            thread.start()
            time.sleep(3)  # the worker polls and the publish waits while nothing listens
            assert worker.poll() is None, "the worker is still running while the broker is down"
            engine.start()
            thread.join(150)
            assert published == [None], f"the publish waited for the broker: {published}"
            _wait("all 10 articles enriched after the restart", lambda: counts()[0] >= 10 and counts()[1] == 0)
            assert next(s for s in bus.stats() if s.topic == TOPIC_RAW).messages == 10, "every record once"
            assert worker.poll() is None, "the worker never exited"
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(60) == 0
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(30)
            if bus is not None:
                bus.close()
            engine.kill()
    text = log_path.read_text(encoding="utf-8")
    assert "Traceback" not in text, text[-3000:]
    assert text.count("kafka: broker unreachable (") >= 1
    assert "kafka: broker reachable again after" in text
    assert " ERROR kafka" not in text, "no kafka-python ERROR lines: the episode is told in our words"


@pytest.mark.kafka
def test_a_member_retrying_a_batch_lets_the_group_rebalance(real_kafka: KafkaEngine) -> None:
    """Before: a worker retrying a batch while the index was down slept between tries, and a worker joining its
    group (a restarted replica) waited for it until the index came back (70 s in the benchmark). Now the
    retrying member keeps polling with its partitions paused: the group rebalances at once, and the member
    learns that its batch may now be someone else's."""
    settings = fixtures_kafka.kafka_settings(real_kafka.bootstrap_servers, negotiate=True)
    a_bus = KafkaBus(settings, partitions=4, group_management=True)
    b_bus = KafkaBus(settings, create_topics=False, group_management=True)
    try:
        a_bus.publish(TOPIC_RAW, [OutMessage(f"k{i}", {"schema_version": 1, "n": i}) for i in range(40)])
        a = a_bus.consumer(TOPIC_RAW, "holding")
        batch: list[Message] = []
        deadline = time.monotonic() + 30
        while len({m.partition for m in batch}) < 4 and time.monotonic() < deadline:
            batch.extend(a.poll(100, 1.0))
        assert len({m.partition for m in batch}) == 4, "the first member got messages of every partition"
        b = b_bus.consumer(TOPIC_RAW, "holding")
        b_got: list[object] = []
        b_thread = threading.Thread(target=lambda: b_got.extend(b.poll(100, 25.0)))
        start = time.monotonic()
        b_thread.start()
        still_ours = a.hold(25.0, threading.Event())
        held = time.monotonic() - start
        b_thread.join(40)
        assert not still_ours and held < 20, f"the hold ended with the rebalance ({held:.1f} s)"
        assert b._mine(), "the new member got partitions while the other was still retrying"  # type: ignore[attr-defined]

        # kafka-python keeps its position on a partition a rebalance hands back: the dropped batch must be rewound,
        # or the next poll passes over it and the next commit loses it
        a.rewind(batch)
        kept = {tp.partition for tp in a._mine()}  # type: ignore[attr-defined]
        expected = {m.partition: min(x.offset for x in batch if x.partition == m.partition)
                    for m in batch if m.partition in kept}
        assert expected, "the first member kept some partitions of its batch"
        again: list[Message] = []
        deadline = time.monotonic() + 30
        while not set(expected) <= {m.partition for m in again} and time.monotonic() < deadline:
            again.extend(a.poll(100, 1.0))
        got = {p: min((m.offset for m in again if m.partition == p), default=None) for p in expected}
        assert got == expected, f"the dropped batch is read again from its first offsets: {got} != {expected}"
    finally:
        a_bus.close()
        b_bus.close()


@pytest.mark.slow
def test_a_worker_started_while_its_broker_is_down_waits_for_it_and_stops_cleanly(
        tmp_path: Path, env: dict[str, str]) -> None:
    """Before: `worker STAGE` with the broker away exited at once with status 2 ('cannot connect producer'), so
    a supervisor restarting it during a broker restart made a crash loop. Now it waits, says so, and a SIGTERM
    meanwhile ends it with status 0."""
    worker_env = {**os.environ, **env, "PIPELINE_BUS": "kafka", "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{_dead_port()}"}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "worker", "enrich"], cwd=PROJECT, env=worker_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
    try:
        assert proc.stderr is not None
        first = ""
        for _ in range(20):  # until the worker has tried once (kafka's own 'unreachable' line may come first)
            first += proc.stderr.readline()
            if "retrying in" in first or proc.poll() is not None:
                break
        assert "worker enrich: connecting to Kafka failed (transient), retrying in" in first, first
        assert proc.poll() is None, "still running, waiting for the broker"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped before the bus could be reached" in out
    assert "Traceback" not in first + err
