"""CLI: ``alerts [--json]`` and ``watchlist test TOPIC FILE`` (the dry run sends nothing)."""

from __future__ import annotations

import json
from email import message_from_string, policy
from pathlib import Path

import pytest
from test_alert_servers import SlackStandIn, SMTPServer, enriched, slack_server, smtp_server, story_text  # noqa: F401

from pipeline.alerts import AlertService
from pipeline.cli import main
from pipeline.config import load_config

WATCHLIST = """\
topics:
  - id: al-tanf
    name: Al-Tanf garrison
    core: [al-tanf]
    email: [ops@example.com, "chief@example.com?digest=daily"]
    slack: true
"""


@pytest.fixture
def config_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SMTPServer,  # noqa: F811
               slack_server: SlackStandIn) -> Path:  # noqa: F811
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "watchlist.yaml").write_text(WATCHLIST)
    (cfg / "feeds.yaml").write_text("feeds: []\n")
    monkeypatch.setenv("PIPELINE_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SMTP_URL", smtp_server.url)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack_server.url)
    return tmp_path


def test_watchlist_test_fires_and_shows_the_exact_messages_without_sending(
        config_env: Path, capsys: pytest.CaptureFixture[str], smtp_server: SMTPServer,  # noqa: F811
        slack_server: SlackStandIn) -> None:  # noqa: F811
    article = config_env / "article.json"
    article.write_text(json.dumps({
        "title": "<!channel> <script>x</script> Strike\nBcc: evil@example.com",
        "text": "Coalition aircraft struck a convoy approaching the garrison at al-Tanf on Tuesday, officials said.",
        "url": "https://news.example/strike"}))
    assert main(["watchlist", "test", "al-tanf", str(article)]) == 0
    out = capsys.readouterr().out
    assert "topic al-tanf: FIRES" in out and "al-Tanf" in out
    assert "email now to ops@example.com" in out and "email in the daily digest of chief@example.com" in out
    email = message_from_string(out.split("===== email (not sent) =====\n", 1)[1].split("\n===== slack")[0],
                                policy=policy.default)
    assert email["Subject"] == "[newswatch] Al-Tanf garrison: <!channel> <script>x</script> Strike Bcc: evil@example.com"
    assert email["Bcc"] is None and "\nBcc:" not in out
    assert email["To"] == "ops@example.com, chief@example.com"
    html = email.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html and "<mark>al-Tanf</mark>" in html
    payload = json.loads(out.split("===== slack payload (not sent) =====\n", 1)[1])
    assert "<!channel>" not in json.dumps(payload) and "&lt;!channel&gt;" in payload["blocks"][1]["text"]["text"]
    assert smtp_server.handler.messages == [] and slack_server.script.received == []


def test_watchlist_test_does_not_fire(config_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    article = config_env / "article.txt"
    article.write_text("Weather report\nSunny skies over the coast of Norway today, with light winds.\n")
    assert main(["watchlist", "test", "al-tanf", str(article)]) == 1
    assert "does NOT fire" in capsys.readouterr().out


def test_watchlist_test_reads_html(config_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    article = config_env / "article.html"
    body = " ".join(["Coalition forces at the al-Tanf garrison trained local fighters this week."] * 4)
    article.write_text(f"<!doctype html><html><head><title>Training at al-Tanf</title></head>"
                       f"<body><article><h1>Training at al-Tanf</h1><p>{body}</p></article></body></html>")
    assert main(["watchlist", "test", "al-tanf", str(article)]) == 0
    assert "FIRES" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    (["watchlist", "test", "al-tanf", "missing.txt"], "file not found"),
    (["watchlist", "test", "palmyra", "article.txt"], "unknown topic 'palmyra'"),
    (["watchlist", "test", "al-tanf", "bad.json"], "invalid JSON"),
])
def test_watchlist_test_bad_input_is_one_line_and_exit_2(config_env: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch, args: list[str],
                                                         message: str) -> None:
    monkeypatch.chdir(config_env)
    (config_env / "article.txt").write_text("t\nal-Tanf\n")
    (config_env / "bad.json").write_text("{not json")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_alerts_json_and_table(config_env: Path, capsys: pytest.CaptureFixture[str],
                               smtp_server: SMTPServer) -> None:  # noqa: F811
    cfg = load_config()
    smtp_server.handler.data_reply = "451 4.3.0 try again later"
    with AlertService(cfg.settings, cfg.watchlist) as svc:
        svc.raise_alerts([enriched(story_text(1), title="First story", url="https://a.example/1")])
        svc.deliver_pending()
    assert main(["alerts", "--json"]) == 0
    alerts = json.loads(capsys.readouterr().out)
    assert len(alerts) == 1
    ch = alerts[0]["channels"]
    assert ch["slack"]["status"] == "sent" and ch["slack"]["attempts"] == 1
    assert ch["email"]["status"] == "pending" and "451 4.3.0 try again later" in ch["email"]["last_error"]
    assert alerts[0]["digests"][0]["recipient"] == "email:chief@example.com"
    assert main(["alerts"]) == 0
    table = capsys.readouterr().out
    assert "email:pending(1)" in table and "slack:sent(1)" in table and "First story" in table
    assert "451 4.3.0 try again later" in table
