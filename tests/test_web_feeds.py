"""The Feeds page and /api/feeds (issue 14 part 3): each feed's health from the library the `feeds` command
uses, problems first, filters by status, what ops were told, and a feeds file edited while serving."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from test_feed_health import _fail, _items, _ok
from web_fixtures import serving

from pipeline.alerts.ops import check_feeds
from pipeline.cli import main
from pipeline.config import Config, load_config
from pipeline.state import StateStore
from pipeline.web.render import duration

FEEDS = {name: f"https://{name}.example/rss" for name in ("steady", "down", "flaky", "quiet", "fresh", "back")}


def _history(store: StateStore, now: datetime) -> None:
    """steady: an item every 6 h for 10 days; down: failing for 7 h (ops are told); flaky: failing for 1 h
    (not yet); quiet: steady until 3 days ago, nothing since (silent); fresh: never polled; back: was
    down for 8 h, polled fine since 1 h ago (ops were told it recovered)."""
    def _ago(hours: float) -> datetime:
        return now - timedelta(hours=hours)

    backlog = [_ago(240)] * 20
    steady = [_ago(h) for h in range(234, 0, -6)]
    _items(store, FEEDS["steady"], backlog + steady)
    _ok(store, FEEDS["steady"], _ago(0.5), new_items=1)
    _items(store, FEEDS["quiet"], backlog + [t for t in steady if t < _ago(72)])
    _ok(store, FEEDS["quiet"], _ago(0.2))
    _ok(store, FEEDS["down"], _ago(30))
    for hours in (7, 5, 1):
        _fail(store, FEEDS["down"], _ago(hours))
    _ok(store, FEEDS["flaky"], _ago(2))
    _fail(store, FEEDS["flaky"], _ago(1), reason="timeout")
    _ok(store, FEEDS["back"], _ago(20))
    _fail(store, FEEDS["back"], _ago(10))


@pytest.fixture
def config(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    feeds_file = tmp_path / "feeds.yaml"
    names = {"steady": "Steady Times", "down": "Down Daily", "flaky": "Flaky Post", "quiet": "Quiet Gazette",
             "fresh": "Fresh Wire", "back": "Back Again"}
    feeds_file.write_text(yaml.safe_dump({"feeds": [{"url": FEEDS[k], "name": names[k]} for k in FEEDS]}))
    monkeypatch.setenv("PIPELINE_FEEDS", str(feeds_file))
    config = load_config()
    now = datetime.now(UTC)  # the pages judge at the time of the request: a history that ends now
    with StateStore(config.settings.state_db) as store:
        _history(store, now)
    raised = check_feeds(config, now=now - timedelta(hours=2))  # down has failed for 5 h only: not yet
    assert [(e["kind"], e["feed_url"]) for e in raised] == [("feed_down", FEEDS["quiet"]), ("feed_down", FEEDS["back"])]
    with StateStore(config.settings.state_db) as store:
        _ok(store, FEEDS["back"], now - timedelta(hours=1))
    assert [(e["kind"], e["feed_url"]) for e in check_feeds(config, now=now)] == [
        ("feed_down", FEEDS["down"]), ("feed_recovered", FEEDS["back"])]
    return config


@pytest.fixture
def client(config: Config) -> Iterator[TestClient]:
    with serving(config, raise_server_exceptions=False) as c:
        yield c


def _names(data: dict[str, Any]) -> list[str]:
    return [f["name"] for f in data["feeds"]]


def test_problems_first_with_what_ops_were_told(client: TestClient) -> None:
    data = client.get("/api/feeds").json()
    assert _names(data) == ["Down Daily", "Flaky Post", "Quiet Gazette", "Fresh Wire", "Back Again", "Steady Times"]
    assert [f["status"] for f in data["feeds"]] == ["failing", "failing", "silent", "new", "ok", "ok"]
    assert data["counts"] == {"configured": 6, "failing": 2, "silent": 1, "new": 1, "ok": 2, "alarm": 2,
                              "ops_alerted": 2}
    down, flaky, quiet, fresh, back, steady = data["feeds"]
    assert down["consecutive_failures"] == 3 and down["last_error_reason"] == "http_503"
    assert "HTTP 503" in down["last_error"] and down["alarm"] is True
    assert down["last_success"] < down["failing_since"] < down["last_error_at"] == down["last_polled"]
    assert down["next_poll"] > down["last_polled"]
    assert down["ops"]["alerted"] is True and down["ops"]["state"] == "down"
    assert down["ops"]["channels"]["file"]["status"] == "sent"  # the ops message went out (to alerts.jsonl)
    assert flaky["last_error_reason"] == "timeout" and flaky["alarm"] is False and flaky["ops"]["alerted"] is False
    assert quiet["ops"]["alerted"] is True and "usually one every" in quiet["problem"]
    assert fresh["last_polled"] is None and fresh["ops"] == {"alerted": False, "state": None, "event_id": None,
                                                             "since": None, "at": None, "channels": {}}
    assert back["ops"]["state"] == "ok" and back["ops"]["alerted"] is False
    assert back["last_error_reason"] == "http_503" and back["consecutive_failures"] == 0  # the error is kept
    assert steady["items_per_day"] == pytest.approx(4.0, rel=0.1) and steady["usual_gap_s"] == pytest.approx(
        6 * 3600, rel=0.1)


def test_the_same_records_as_the_feeds_command(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    """One library function behind both: the page cannot disagree with `feeds --json`."""
    api = {f["url"]: f for f in client.get("/api/feeds").json()["feeds"]}
    assert main(["feeds", "--json"]) == 0
    cli = {f["url"]: f for f in json.loads(capsys.readouterr().out)}
    assert set(api) == set(cli) == set(FEEDS.values())
    stable = ("name", "status", "alarm", "last_polled", "last_success", "last_error", "last_error_reason",
              "last_error_at", "consecutive_failures", "failing_since", "next_poll", "last_new_item")
    for url, record in cli.items():
        assert {k: api[url][k] for k in stable} == {k: record[k] for k in stable}, url
        assert (api[url]["ops"]["state"] or "ok") == record["ops"], url


@pytest.mark.parametrize(("status", "names"), [
    ("failing", ["Down Daily", "Flaky Post"]), ("silent", ["Quiet Gazette"]), ("new", ["Fresh Wire"]),
    ("ok", ["Back Again", "Steady Times"]), ("", ["Down Daily", "Flaky Post", "Quiet Gazette", "Fresh Wire",
                                                  "Back Again", "Steady Times"]),
])
def test_filter_by_status(client: TestClient, status: str, names: list[str]) -> None:
    data = client.get("/api/feeds", params={"status": status}).json()
    assert _names(data) == names and data["status"] == (status or None)
    assert data["counts"]["configured"] == 6, "the summary counts every feed, whatever the filter"
    page = client.get("/feeds", params={"status": status})
    assert page.status_code == 200 and page.text.count('<tr class="') == len(names)
    current = f'href="/feeds?status={status}" aria-current="page"' if status else 'href="/feeds" aria-current="page"'
    assert current in page.text


def test_bad_status_is_a_400_line(client: TestClient) -> None:
    r = client.get("/api/feeds", params={"status": "down"})
    assert r.status_code == 400
    assert r.json() == {"error": "status: must be one of failing, silent, new, ok, not 'down'", "status": 400}
    page = client.get("/feeds", params={"status": "down"})
    assert page.status_code == 400 and "must be one of failing" in page.text and "Traceback" not in page.text


def test_feeds_page(client: TestClient) -> None:
    page = client.get("/feeds")
    assert page.status_code == 200
    text = page.text
    assert '<a href="/feeds" aria-current="page">Feeds</a>' in text  # in the menu, as the current page
    assert '<a class="stat failing some" href="/feeds?status=failing"><b>2</b> failing</a>' in text
    assert '<span class="stat ops some"' in text and "<b>2</b> ops alerted" in text
    rows = text.split('<tr class="')[1:]
    assert [r.split('"', 1)[0] for r in rows] == ["failing", "failing", "silent", "new", "ok", "ok"]
    down, flaky, quiet, fresh, back, steady = rows
    assert "Down Daily" in down and '<code class="reason">http_503</code>' in down and "HTTP 503 from" in down
    assert '<span class="badge failed">alerted</span>' in down and "file: sent" in down
    assert "failing for 7.0 h" in down
    assert "not alerted" in flaky and '<code class="reason">timeout</code>' in flaky
    assert "usually one every" in quiet and "alerted" in quiet
    assert "never" in fresh and "not polled yet" not in fresh
    assert "told it recovered" in back and "before its latest successful poll" in back
    shown = client.get("/api/feeds", params={"status": "ok"}).json()["feeds"][1]
    assert shown["name"] == "Steady Times"
    assert (f'<td class="num">{shown["items_per_day"]:.1f}<div class="muted small nowrap">one every '
            f'{duration(shown["usual_gap_s"])}</div>') in steady


def test_an_alarm_ops_have_not_heard_of_yet_says_so(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """A feed down long enough whose alert is not raised yet (the check runs after a pass of `run`)."""
    with StateStore(config.settings.state_db) as store:
        _fail(store, FEEDS["flaky"], datetime.now(UTC))  # failing since 1 h; ops hear after 6 h ...
    monkeypatch.setattr(config.settings.ops, "feed_failing_minutes", 30.0)  # ... or, here, after 30 min
    with serving(config) as client:
        flaky = next(f for f in client.get("/api/feeds").json()["feeds"] if f["name"] == "Flaky Post")
        assert flaky["alarm"] is True and flaky["ops"]["alerted"] is False
        assert "told at the next health check" in client.get("/feeds", params={"status": "failing"}).text
        monkeypatch.setattr(config.settings.ops, "feed_alerts", False)
        assert "ops alerts are off" in client.get("/feeds", params={"status": "failing"}).text


def test_the_feeds_file_is_read_on_each_request(client: TestClient, config: Config) -> None:
    """An edit shows without a restart; a file that became invalid is a one-line 503 on the Feeds page
    only, and the other pages go on working."""
    feeds_file = Path(str(config.settings.feeds_file))
    listed = yaml.safe_load(feeds_file.read_text())
    listed["feeds"].append({"url": "https://added.example/rss", "name": "Added Later"})
    feeds_file.write_text(yaml.safe_dump(listed))
    data = client.get("/api/feeds").json()
    assert "Added Later" in _names(data) and data["counts"]["new"] == 2
    feeds_file.write_text("feeds:\n  - url: ftp://nope.example/rss\n")
    r = client.get("/api/feeds")
    assert r.status_code == 503 and r.json()["error"].startswith(f"configuration: {feeds_file}: feeds.0.url:")
    page = client.get("/feeds")
    assert page.status_code == 503 and "feeds.0.url" in page.text and "Traceback" not in page.text
    assert client.get("/alerts").status_code == 200 and client.get("/api/topics").status_code == 200


def test_no_feeds_configured(env: dict[str, str]) -> None:
    with serving(load_config()) as client:  # the project's config/feeds.yaml lists none
        data = client.get("/api/feeds").json()
        assert data["feeds"] == [] and data["counts"]["configured"] == 0
        assert data["feeds_file"].endswith("config/feeds.yaml")
        assert "No feeds configured in" in client.get("/feeds").text
