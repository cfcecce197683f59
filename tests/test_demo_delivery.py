"""Issue 6's promise, end to end: the demo delivers each alert exactly once to each channel,
through an SMTP outage and a Slack 429 storm, and a rerun delivers nothing new."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
import yaml
from test_alert_servers import SlackStandIn, SMTPServer
from test_demo_e2e import _free_port_block

from pipeline.cli import main


@pytest.fixture
def delivery_config(tmp_path: Path, project_root: Path, monkeypatch: pytest.MonkeyPatch,
                    env: dict[str, str]) -> Path:
    """The project's config, with short retry backoff so the test does not wait for minutes."""
    cfg = tmp_path / "config"
    shutil.copytree(project_root / "config", cfg)
    settings = yaml.safe_load((cfg / "settings.yaml").read_text()) or {}
    settings.setdefault("alerts", {}).update({"base_backoff_seconds": 0.2, "max_backoff_seconds": 1.0})
    (cfg / "settings.yaml").write_text(yaml.safe_dump(settings))
    wl = yaml.safe_load((cfg / "watchlist.yaml").read_text())
    for topic in wl["topics"]:
        topic["email"] = ["analysts@example.org"]
        topic["slack"] = True
        topic["digest"] = "immediate"
    (cfg / "watchlist.yaml").write_text(yaml.safe_dump(wl))
    monkeypatch.setenv("PIPELINE_CONFIG_DIR", str(cfg))
    return cfg


@pytest.mark.slow
def test_demo_delivers_each_alert_once_through_outages(delivery_config: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    smtp = SMTPServer()  # not started yet: the first attempts meet a closed port
    slack = SlackStandIn()
    slack.script.responses = [(429, {"Retry-After": "1"}, "rate_limited")] * 4
    slack.start()
    monkeypatch.setenv("SMTP_URL", smtp.url)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
    port = str(_free_port_block())
    starter = threading.Timer(2.0, smtp.start)
    starter.start()
    try:
        assert main(["demo", "--json", "--port", port]) == 0
        first = json.loads(capsys.readouterr().out)
        alerts = first["drain"]["alerts"]
        assert {a["topic"] for a in alerts} == {"al-tanf", "deir-ez-zor"}
        starter.join()
        mails = smtp.handler.parsed()
        posts = slack.script.delivered()
        assert len(mails) == len(alerts), [m["Subject"] for m in mails]
        assert len({m["Message-ID"] for m in mails}) == len(mails)
        assert len(posts) == len(alerts)
        assert len({json.dumps(p, sort_keys=True) for p in posts}) == len(posts)
        assert slack.script.statuses.count(429) == 4

        assert main(["alerts", "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        assert len(listed) == len(alerts)

        assert main(["demo", "--json", "--port", port]) == 0
        second = json.loads(capsys.readouterr().out)
        assert second["drain"]["alerts_raised"] == 0
        assert len(smtp.handler.parsed()) == len(mails)
        assert len(slack.script.delivered()) == len(posts)
    finally:
        starter.cancel()
        smtp.stop()
        slack.stop()
