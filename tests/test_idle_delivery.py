"""Issue 13, item 4: a failed delivery is retried on its backoff schedule while nothing new arrives,
by ``worker alert`` and by the continuous ``run``, against a real SMTP server that is down, then up."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from test_alert_servers import SMTPServer, enriched, story_text

from pipeline.alerts.store import AlertStore
from pipeline.bus import TOPIC_ENRICHED, OutMessage, open_bus
from pipeline.config import load_config
from pipeline.stages import AlertStage
from pipeline.worker import run_stage


def _wait_for(check: Callable[[], bool], seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.1)
    return check()


@pytest.fixture
def short_backoff_config(tmp_path: Path, project_root: Path, env: dict[str, str],
                         monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project's config with retries after 0.3 s, 0.6 s, ... at most 1 s; email only."""
    cfg = tmp_path / "config"
    shutil.copytree(project_root / "config", cfg)
    settings = yaml.safe_load((cfg / "settings.yaml").read_text()) or {}
    settings.setdefault("alerts", {}).update({"base_backoff_seconds": 0.3, "max_backoff_seconds": 1.0,
                                              "max_attempts": 50})
    (cfg / "settings.yaml").write_text(yaml.safe_dump(settings))
    monkeypatch.setenv("PIPELINE_CONFIG_DIR", str(cfg))
    return cfg


def test_worker_alert_delivers_after_smtp_comes_back_without_new_articles(
    short_backoff_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp = SMTPServer()  # its port is reserved but nothing listens yet: connections are refused
    monkeypatch.setenv("SMTP_URL", smtp.url)
    config = load_config()
    bus = open_bus(config.settings)
    articles = [enriched(story_text(i), title=f"Report {i}", url=f"https://news.example/{i}") for i in range(5)]
    bus.publish(TOPIC_ENRICHED, [OutMessage(key=a.id, value=a.to_dict()) for a in articles])
    stage = AlertStage(config, bus)
    stop = threading.Event()
    worker = threading.Thread(target=run_stage, args=(bus, stage), name="worker-alert",
                              kwargs={"stop": stop, "poll_timeout": 0.2})
    store = AlertStore(config.settings.alerts_db)
    worker.start()
    try:
        assert _wait_for(lambda: any(r.last_error for r in store.outbox_rows()), 30), "a first attempt failed"
        rows = store.outbox_rows()
        assert len(rows) == 5 and not any(r.status == "sent" for r in rows)
        smtp.start()  # SMTP is back; no article arrives from now on
        assert _wait_for(lambda: len(smtp.handler.messages) >= 5, 30), (
            f"{len(smtp.handler.messages)} of 5 alerts delivered while the worker was idle")
        assert _wait_for(lambda: all(r.status == "sent" for r in store.outbox_rows()), 10)
        time.sleep(0.5)
        assert len(smtp.handler.messages) == 5, "each alert exactly once"
        assert len({m["Message-ID"] for m in smtp.handler.parsed()}) == 5
    finally:
        stop.set()
        worker.join(30)
        stage.close()
        bus.close()
        store.close()
        smtp.stop()
    assert not worker.is_alive()


@pytest.mark.slow
def test_continuous_run_delivers_between_passes(short_backoff_config: Path, tmp_path: Path,
                                                project_root: Path) -> None:
    from pipeline.newsroom import Newsroom

    smtp = SMTPServer()
    with Newsroom() as room:
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(yaml.safe_dump({"feeds": [f.model_dump(mode="json") for f in room.feeds_config()]}))
        child_env = {**os.environ, "PIPELINE_FEEDS": str(feeds), "PIPELINE_POLL_INTERVAL": "3600",
                     "SMTP_URL": smtp.url, "PYTHONPATH": str(project_root)}
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "--json"], env=child_env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tmp_path)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # the first pass is over; the next is an hour away
            summary = json.loads(line)
            raised = summary["drain"]["alerts_raised"]
            assert raised >= 5
            smtp.start()
            assert _wait_for(lambda: len(smtp.handler.messages) >= raised, 60), (
                f"{len(smtp.handler.messages)} of {raised} alerts delivered between passes")
            time.sleep(0.5)
            assert len(smtp.handler.messages) == raised
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                smtp.stop()
