"""Issue 13, items 6 and 7: feed health as typed records, the ``feeds`` command and ``status``, and
ops alerts for a feed that is down (one) and recovers (one), never repeated, across restarts."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_alert_servers import SMTPServer, smtp_server  # noqa: F401 - fixture

from pipeline.alerts import AlertService
from pipeline.alerts.ops import check_feeds, raise_feed_events
from pipeline.cli import main
from pipeline.config import Config, load_config
from pipeline.feedhealth import FeedHealth, HealthRules, feed_health, health_of
from pipeline.models import FeedEntry, Outcome
from pipeline.state import StateStore

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
BASE = 300.0
OK_FEED, DOWN_FEED, QUIET_FEED, NEW_FEED = (f"https://{h}.example/rss" for h in ("ok", "down", "quiet", "new"))


def _ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def _items(store: StateStore, feed: str, times: list[datetime]) -> None:
    for i, t in enumerate(times):
        store.mark_seen([FeedEntry(feed_url=feed, url=f"{feed}/item/{t.timestamp():.0f}-{i}")], now=t)


def _fail(store: StateStore, feed: str, at: datetime, reason: str = "http_503") -> None:
    store.record_poll_failure(feed, f"HTTP 503 from {feed}", base_interval_s=BASE, now=at)
    store.record_many([Outcome("feeds", feed, reason, f"HTTP 503 from {feed}", ok=False)], at=at)


def _ok(store: StateStore, feed: str, at: datetime, new_items: int = 0) -> None:
    store.record_poll_ok(feed, etag=None, last_modified=None, body_hash="h", new_items=new_items,
                         base_interval_s=BASE, now=at)


@pytest.fixture
def config(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(yaml.safe_dump({"feeds": [{"url": OK_FEED, "name": "Fine Times"}, {"url": DOWN_FEED},
                                               {"url": QUIET_FEED}, {"url": NEW_FEED}]}))
    monkeypatch.setenv("PIPELINE_FEEDS", str(feeds))
    return load_config()


def _history(config: Config) -> None:
    """ok: a backlog 10 days ago, then an item every 6 h; down: failing for 7 h after a success;
    quiet: the same rhythm as ok until 3 days ago, nothing since; new: never polled."""
    with StateStore(config.settings.state_db) as store:
        backlog = [_ago(240)] * 20
        steady = [_ago(h) for h in range(234, 0, -6)]
        _items(store, OK_FEED, backlog + steady)
        _ok(store, OK_FEED, _ago(0.5), new_items=1)
        _items(store, QUIET_FEED, backlog + [t for t in steady if t < _ago(72)])
        _ok(store, QUIET_FEED, _ago(0.2))
        _ok(store, DOWN_FEED, _ago(30))
        _items(store, DOWN_FEED, [_ago(30)])
        for hours in (7, 5, 1):
            _fail(store, DOWN_FEED, _ago(hours))


def _by_url(health: list[FeedHealth]) -> dict[str, FeedHealth]:
    return {h.url: h for h in health}


def test_feed_health_records(config: Config) -> None:
    _history(config)
    health = health_of(config, now=NOW)
    assert [h.url for h in health] == [OK_FEED, DOWN_FEED, QUIET_FEED, NEW_FEED], "in configured order"
    h = _by_url(health)
    ok, down, quiet, new = h[OK_FEED], h[DOWN_FEED], h[QUIET_FEED], h[NEW_FEED]

    assert ok.status == "ok" and not ok.alarm and ok.name == "Fine Times"
    assert ok.items_per_day == pytest.approx(4.0, rel=0.1), "one item every 6 h, the backlog not counted"
    assert ok.usual_gap_s == pytest.approx(6 * 3600, rel=0.1)
    assert ok.last_success == _ago(0.5) and ok.consecutive_failures == 0 and ok.last_error is None
    assert ok.next_poll is not None and ok.next_poll > _ago(0.5)

    assert down.status == "failing" and down.alarm, "failing for 7 h > 6 h"
    assert down.consecutive_failures == 3 and down.failing_since == _ago(7)
    assert down.last_error_reason == "http_503" and "HTTP 503" in (down.last_error or "")
    assert down.last_error_at == _ago(1) and down.last_success == _ago(30)
    assert down.problem is not None and down.problem.startswith("failing for 7.0 h (3 failed polls): http_503")
    assert down.problem_since == _ago(7)

    assert quiet.status == "silent" and quiet.alarm, "3 days without an item, usually one every ~6 h"
    assert quiet.problem is not None and "usually one every" in quiet.problem
    assert quiet.problem_since == quiet.last_new_item

    assert new.status == "new" and new.last_polled is None and not new.alarm

    young = _by_url(health_of(config, now=_ago(5)))[DOWN_FEED]  # 2 h into the failure: not an alarm yet
    assert young.status == "failing" and not young.alarm
    as_json = json.loads(json.dumps(down.to_dict()))
    assert as_json["failing_since"] == "2026-11-22T05:00:00Z" and as_json["problem_since"] == as_json["failing_since"]


def test_a_feed_without_a_rhythm_is_never_silent(config: Config) -> None:
    with StateStore(config.settings.state_db) as store:
        _items(store, QUIET_FEED, [_ago(200)] * 30 + [_ago(150)])  # a backlog and one item: no rhythm yet
        _ok(store, QUIET_FEED, _ago(1))
        h = _by_url(feed_health(store, config.feeds, default_interval_s=BASE, now=NOW))[QUIET_FEED]
    assert h.status == "ok" and h.usual_gap_s is None and h.items_per_day is not None


def test_feeds_command_and_status(config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    _history(config)
    assert main(["feeds", "--json"]) == 0
    records = {r["url"]: r for r in json.loads(capsys.readouterr().out)}
    assert records[DOWN_FEED]["status"] == "failing" and records[DOWN_FEED]["last_error_reason"] == "http_503"
    assert records[NEW_FEED]["status"] == "new"
    assert set(records[OK_FEED]) >= {"last_success", "last_error", "last_error_reason", "consecutive_failures",
                                     "next_poll", "items_per_day", "ops"}
    assert main(["feeds"]) == 0
    out = capsys.readouterr().out
    assert "failing" in out and "http_503" in out and "Fine Times" in out
    assert "4 feeds:" in out and "never polled" in out
    assert main(["status", "--json"]) == 0
    feeds = json.loads(capsys.readouterr().out)["feeds"]
    assert feeds["configured"] == 4 and feeds["failing"] == 1 and feeds["new"] == 1
    assert any(p["url"] == DOWN_FEED and p["status"] == "failing" for p in feeds["problems"])
    assert main(["status"]) == 0
    assert "feeds: 4 configured:" in capsys.readouterr().out


# -- ops alerts ------------------------------------------------------------------------------------


def _ops_lines(config: Config) -> list[dict[str, Any]]:
    path = config.settings.alerts_path
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [x for x in lines if x["subject"].startswith("[newswatch ops]")]


def test_one_alert_down_one_on_recovery_never_repeated_across_restarts(config: Config) -> None:
    with StateStore(config.settings.state_db) as store:
        _ok(store, DOWN_FEED, _ago(30))
        _fail(store, DOWN_FEED, _ago(7))
    first = check_feeds(config, now=NOW)
    assert [e["kind"] for e in first] == ["feed_down"] and first[0]["feed_url"] == DOWN_FEED
    sent = _ops_lines(config)
    assert len(sent) == 1 and DOWN_FEED in sent[0]["text"] and "http_503" in sent[0]["text"]
    assert sent[0]["subject"].startswith("[newswatch ops] feed down:")

    # still failing, hours later, in new processes (a fresh service each time): nothing more
    with StateStore(config.settings.state_db) as store:
        _fail(store, DOWN_FEED, _ago(2))
    for later in (1, 5, 30):
        assert check_feeds(config, now=NOW + timedelta(hours=later)) == []
    assert len(_ops_lines(config)) == 1

    with StateStore(config.settings.state_db) as store:
        _ok(store, DOWN_FEED, NOW + timedelta(hours=31))
    back = check_feeds(config, now=NOW + timedelta(hours=31))
    assert [e["kind"] for e in back] == ["feed_recovered"]
    assert check_feeds(config, now=NOW + timedelta(hours=32)) == []
    sent = _ops_lines(config)
    assert [x["subject"].split(":")[0] for x in sent] == ["[newswatch ops] feed down", "[newswatch ops] feed recovered"]

    with StateStore(config.settings.state_db) as store:  # a new episode: it fails again for 7 h
        _fail(store, DOWN_FEED, NOW + timedelta(hours=40))
    assert [e["kind"] for e in check_feeds(config, now=NOW + timedelta(hours=47))] == ["feed_down"]
    assert len(_ops_lines(config)) == 3


def test_crash_before_the_commit_raises_the_same_event_once(config: Config,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.alerts.store import AlertStore

    with StateStore(config.settings.state_db) as store:
        _fail(store, DOWN_FEED, _ago(8))
    health = health_of(config, now=NOW)

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed mid-transaction")

    with AlertService(config.settings, config.watchlist) as service:
        monkeypatch.setattr(AlertStore, "set_ops_state", crash)
        with pytest.raises(RuntimeError):
            raise_feed_events(service, health, now=NOW.timestamp())
        monkeypatch.undo()
        assert service.store.outbox_rows() == [] and service.store.ops_states() == {}, "rolled back"
        # committed but not yet sent (a crash after the commit): the next check sends it, once
        assert len(raise_feed_events(service, health, now=NOW.timestamp())) == 1
    assert _ops_lines(config) == []
    assert check_feeds(config, now=NOW) == []
    with AlertService(config.settings, config.watchlist) as service:
        service.deliver_pending()
    assert len(_ops_lines(config)) == 1


def test_ops_alert_by_email_to_the_ops_recipient(config: Config, monkeypatch: pytest.MonkeyPatch,
                                                 smtp_server: SMTPServer) -> None:  # noqa: F811
    monkeypatch.setenv("SMTP_URL", smtp_server.url)
    monkeypatch.setenv("NEWSWATCH_OPS_EMAIL", "oncall@example.org, noc@example.org")
    cfg = load_config()
    assert cfg.settings.ops.email == ["oncall@example.org", "noc@example.org"]
    _history(cfg)
    raised = check_feeds(cfg, now=NOW)
    assert sorted((e["kind"], e["feed_url"]) for e in raised) == [("feed_down", DOWN_FEED), ("feed_down", QUIET_FEED)]
    assert check_feeds(cfg, now=NOW + timedelta(minutes=5)) == []
    msgs = smtp_server.handler.messages
    assert len(msgs) == 2
    assert all(rcpts == ["oncall@example.org", "noc@example.org"] for _, rcpts, _ in msgs), "ops only, not analysts"
    subjects = sorted(m["Subject"] for m in smtp_server.handler.parsed())
    assert subjects[0].startswith("[newswatch ops] feed down: ")


def test_ops_settings_are_validated(env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NEWSWATCH_OPS_EMAIL", "not-an-address")
    assert main(["feeds"]) == 2
    err = capsys.readouterr().err
    assert "NEWSWATCH_OPS_EMAIL" in err and err.count("\n") == 1


def test_rules_follow_settings(config: Config) -> None:
    s = config.settings.model_copy(deep=True)
    s.ops.feed_failing_minutes = 30
    s.ops.feed_silent_min_hours = 100
    rules = HealthRules.from_settings(s)
    assert rules.failing_after_s == 1800 and rules.silent_min_s == 100 * 3600


def test_run_once_tells_ops_once_when_a_feed_is_down_and_once_when_it_is_back(
    env: dict[str, str], tmp_path: Path, project_root: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import shutil

    from test_fetch_support import LocalServer
    from test_ingest import _article_html, _feed, _page

    cfg = tmp_path / "config"
    shutil.copytree(project_root / "config", cfg)
    settings = yaml.safe_load((cfg / "settings.yaml").read_text()) or {}
    settings["ops"] = {"feed_failing_minutes": 0.001}  # down for ops after 0.06 s of failing
    (cfg / "settings.yaml").write_text(yaml.safe_dump(settings))
    monkeypatch.setenv("PIPELINE_CONFIG_DIR", str(cfg))
    site = LocalServer()
    try:
        site.route("/a1", _page(_article_html("Story a1")))
        site.route("/feed.xml", _page(b"<html>maintenance</html>", status=500))
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(yaml.safe_dump({"feeds": [{"url": site.url("/feed.xml"), "name": "Flaky Feed"}]}))
        monkeypatch.setenv("PIPELINE_FEEDS", str(feeds))
        config = load_config()
        for _ in range(3):
            assert main(["run", "--once"]) == 3, "no feed could be read"
            time.sleep(0.07)  # a pass with nothing to extract takes a few ms: let "failing for 0.06 s" come true
        down = _ops_lines(config)
        assert len(down) == 1 and down[0]["subject"] == "[newswatch ops] feed down: Flaky Feed"
        assert "http_500" in down[0]["text"]
        site.route("/feed.xml", _feed(site, [site.url("/a1")]))
        for _ in range(2):
            assert main(["run", "--once"]) == 0
    finally:
        site.close()
    sent = _ops_lines(config)
    assert [x["subject"] for x in sent] == ["[newswatch ops] feed down: Flaky Feed",
                                            "[newswatch ops] feed recovered: Flaky Feed"]
    capsys.readouterr()
