"""``worker`` as a real process (SIGTERM finishes the batch) and ``status``, on the embedded backends."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import fixtures_kafka
import pytest

from pipeline.bus import TOPIC_DEADLETTER, TOPIC_ENRICHED, TOPIC_RAW, OutMessage
from pipeline.bus.sqlite import SQLiteBus
from pipeline.cli import main
from pipeline.models import Article

PROJECT = Path(__file__).resolve().parents[1]
kafka_cluster = fixtures_kafka.kafka_cluster


def _articles(n: int) -> list[OutMessage]:
    out = []
    for i in range(n):
        a = Article(id=f"doc{i}", url=f"https://example.org/{i}", title=f"Convoy near al-Tanf {i}",
                    text="US advisers at the al-Tanf garrison in Syria trained partner forces. " * 5,
                    fetched_at="2026-11-20T10:00:00+00:00", published="2017-05-12T08:00:00+00:00")
        out.append(OutMessage(a.id, a.to_dict()))
    return out


def _lag(bus: SQLiteBus, group: str, topic: str) -> int:
    return next(s for s in bus.stats([group]) if s.topic == topic).lag[group]


def test_worker_process_stops_on_sigterm_after_committing(env: dict[str, str]) -> None:
    bus = SQLiteBus(Path(env["PIPELINE_DATA_DIR"]) / "bus.sqlite3")
    bus.publish(TOPIC_RAW, _articles(3))
    bus.publish(TOPIC_RAW, [OutMessage("bad", {"schema_version": 99})])
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "worker", "enrich", "--poll-timeout", "0.2"],
                            cwd=PROJECT, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 30
        while _lag(bus, "newswatch-enrich", TOPIC_RAW) and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "worker enrich:" in out and "3 processed, 1 dead-lettered" in out
    assert "SIGTERM received" in err
    assert "stage enrich: batch news.articles.raw" in err  # one summary line per batch
    assert _lag(bus, "newswatch-enrich", TOPIC_RAW) == 0
    stats = {s.topic: s.messages for s in bus.stats()}
    assert stats[TOPIC_ENRICHED] == 3 and stats[TOPIC_DEADLETTER] == 1
    bus.close()


def test_worker_until_idle_and_status(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    bus = SQLiteBus(Path(env["PIPELINE_DATA_DIR"]) / "bus.sqlite3")
    bus.publish(TOPIC_RAW, _articles(2))
    bus.close()
    assert main(["worker", "enrich", "--until-idle", "--poll-timeout", "0.1"]) == 0
    assert main(["worker", "index", "--until-idle", "--poll-timeout", "0.1"]) == 0
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["topics"][TOPIC_RAW] == 2 and status["topics"][TOPIC_ENRICHED] == 2
    assert status["lag"]["enrich"] == {TOPIC_RAW: 0}
    assert status["lag"]["alert"] == {TOPIC_ENRICHED: 2}  # the alert worker has not run
    assert status["index"] == {"backend": "sqlite", "documents": 2}
    assert main(["status"]) == 0
    text = capsys.readouterr().out
    assert "alert         2" in text and "index (sqlite): 2 documents" in text


def test_worker_rejects_bad_arguments(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["worker", "enrich", "--max-records", "0"])
    assert info.value.code == 2
    assert "expected a positive integer" in capsys.readouterr().err



@pytest.mark.slow
@pytest.mark.parametrize("mode", ["--scale-out", "--all-partitions"])  # joins the group (the default) / assigns
def test_worker_on_kafka(mode: str, env: dict[str, str], kafka_cluster: str, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.bus.kafka import KafkaBus

    config_dir = tmp_path / "config"
    shutil.copytree(PROJECT / "config", config_dir)
    settings = config_dir / "settings.yaml"  # own topic prefix: the mock cluster is shared by the session
    settings.write_text(settings.read_text(encoding="utf-8").replace(
        "  client_id: newswatch", f"  client_id: newswatch\n  topic_prefix: cli{mode}."), encoding="utf-8")
    monkeypatch.setenv("PIPELINE_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("PIPELINE_BUS", "kafka")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_cluster)
    monkeypatch.setenv("KAFKA_API_VERSION", "2.0")
    bus = KafkaBus(fixtures_kafka.kafka_settings(kafka_cluster, prefix=f"cli{mode}."))
    try:
        bus.publish(TOPIC_RAW, _articles(2))
        assert main(["worker", "enrich", "--until-idle", mode, "--poll-timeout", "5"]) == 0
        assert "2 processed" in capsys.readouterr().out
        stats = {s.topic: s for s in bus.stats(["newswatch-enrich"])}
        assert stats[TOPIC_ENRICHED].messages == 2 and stats[TOPIC_RAW].lag["newswatch-enrich"] == 0
    finally:
        bus.close()
