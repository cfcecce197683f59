"""pipeline.engines: the life cycle the suite, ``make kafka`` / ``make opensearch`` and failure drills rely on
(start, SIGKILL, restart on the same port and data, clean stop), and what happens without Java."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from engines_pool import skip_or_fail

from pipeline.bus import TOPIC_RAW, OutMessage
from pipeline.bus.kafka import KafkaBus
from pipeline.config import KafkaSettings
from pipeline.engines import KafkaEngine, find_java, free_port
from pipeline.engines.__main__ import main as engines_main
from pipeline.errors import EngineError, EngineUnavailableError

PROJECT = Path(__file__).resolve().parents[1]


def _own_engine_or_skip() -> None:
    """These tests start engines of their own (not the session's): they need what the session's need."""
    try:
        find_java()
    except EngineUnavailableError as exc:
        skip_or_fail(f"real engines unavailable: {exc}")


def _drain(bus: KafkaBus, n: int) -> list[str]:
    consumer = bus.consumer(TOPIC_RAW, "drill")
    got: list[str] = []
    deadline = time.monotonic() + 60
    while len(got) < n and time.monotonic() < deadline:
        got.extend(m.key for m in consumer.poll(100, 1.0))
    consumer.close()
    return sorted(got)


@pytest.mark.slow
def test_kafka_survives_sigkill_and_restarts_on_the_same_port_and_data(tmp_path: Path) -> None:
    _own_engine_or_skip()
    engine = KafkaEngine(tmp_path / "kafka", port=free_port())
    try:
        engine.start()
        port, pid = engine.port, engine.pid
        settings = KafkaSettings(bootstrap_servers=engine.bootstrap_servers, topic_prefix="drill.")
        bus = KafkaBus(settings)
        bus.publish(TOPIC_RAW, [OutMessage(f"k{i}", {"schema_version": 1, "n": i}) for i in range(5)])
        bus.close()
        assert engine.kill() == -signal.SIGKILL and not engine.running()

        engine.start()  # no new format: the acknowledged messages are still there
        assert engine.port == port and engine.pid != pid
        assert engine.log_file.read_text(encoding="utf-8").count("formatting storage") == 1
        bus = KafkaBus(settings)
        assert _drain(bus, 5) == [f"k{i}" for i in range(5)]
        bus.close()
        assert engine.stop() in (0, 143)  # SIGTERM: the broker's controlled shutdown
        assert KafkaEngine(tmp_path / "kafka").port == port, "the port is kept in engine.json"
    finally:
        engine.kill()


@pytest.mark.slow
def test_make_opensearch_prints_its_ready_line_and_stops_on_sigterm(tmp_path: Path) -> None:
    _own_engine_or_skip()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.engines", "opensearch", "--home", str(tmp_path / "os")],
                            cwd=PROJECT, env={**os.environ, "OPENSEARCH_PORT": str(port)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert re.match(rf"opensearch ready after [\d.]+ s: OPENSEARCH_URL=http://127.0.0.1:{port} ", lines[1]), lines
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, rest
    assert re.search(r"opensearch: stopped cleanly \(exit status (0|143)\)", rest)
    assert "closed" in (tmp_path / "os" / "opensearch.log").read_text(encoding="utf-8")  # the node closed its shards


def test_without_java_the_engines_say_so_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(EngineUnavailableError, match="no java in JAVA_HOME=.*Java 17"):
        KafkaEngine(tmp_path / "k", port=free_port()).start()
    assert engines_main(["kafka", "--home", str(tmp_path / "k"), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert err.startswith("engines: cannot run: no java in JAVA_HOME=") and err.count("\n") == 1


def test_a_bad_port_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KAFKA_PORT", "ninety")
    assert engines_main(["kafka"]) == 2
    assert capsys.readouterr().err.strip() == "engines: error: environment variable KAFKA_PORT: expected a TCP port, " \
                                              "got 'ninety'"


def test_a_suite_without_java_skips_the_engine_tests_and_ci_fails_them(tmp_path: Path) -> None:
    """The same selection run twice in a child pytest with no usable Java: skipped with one reason, or, with
    CI=true, failed."""
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "no-jdk")}
    env.pop("CI", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_kafka_bus.py",
           "-k", "kafka-broker and refuses"]
    local = subprocess.run(cmd, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    assert local.returncode == 0, local.stdout[-2000:]
    skipped = [line for line in local.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1 and "real kafka unavailable: no java in JAVA_HOME=" in skipped[0], local.stdout
    ci = subprocess.run(cmd, cwd=PROJECT, env={**env, "CI": "true"}, capture_output=True, text=True, timeout=120)
    assert ci.returncode == 1 and "1 error" in ci.stdout, ci.stdout[-2000:]  # failed in the fixture
    assert "CI=true: the real-engine tests must run" in ci.stdout


def test_an_engine_that_dies_at_start_reports_its_log(tmp_path: Path) -> None:
    _own_engine_or_skip()
    engine = KafkaEngine(tmp_path / "k", port=free_port(), heap="1k")  # the JVM refuses a 1 KB heap
    with pytest.raises(EngineError, match=r"kafka exited with status \d+ before it was ready; log .*kafka.log"):
        engine.start(timeout=60)
