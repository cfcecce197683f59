"""pipeline.maintenance.run_maintenance on the embedded backends (no Airflow needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.bus import TOPIC_DEADLETTER, OutMessage, open_bus
from pipeline.config import load_config
from pipeline.index import open_index
from pipeline.maintenance import problems, run_maintenance
from pipeline.state import StateStore

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
FEEDS = ["https://ok.example/rss", "https://down.example/rss"]


def _doc(n: int, published: str) -> dict[str, Any]:
    return {"id": f"doc{n}", "url": f"https://ok.example/a/{n}", "title": f"story {n}", "text": "garrison " * 40,
            "source": "ok.example", "feed_url": FEEDS[0], "authors": [], "published": published,
            "fetched_at": published, "language": "en", "entities": [], "topics": [], "topic_reasons": [],
            "enriched_at": published}


@pytest.fixture
def config(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n" + "".join(f"  - url: {u}\n" for u in FEEDS))
    monkeypatch.setenv("PIPELINE_FEEDS", str(feeds))
    return load_config()


def test_maintenance_prunes_reports_and_expires(config: Any) -> None:
    settings = config.settings
    long_ago = NOW - timedelta(days=settings.fetch_state_retention_days + 5)
    with StateStore(settings.state_db) as store:
        store.record_poll_ok(FEEDS[0], etag=None, last_modified=None, body_hash="h", new_items=0,
                             base_interval_s=300, now=NOW)
        store.record_poll_ok("https://gone.example/rss", etag=None, last_modified=None, body_hash="h",
                             new_items=0, base_interval_s=300, now=long_ago)
        for hours in (60, 30, 2):  # failing since 60 h ago, still failing
            store.record_poll_failure(FEEDS[1], "http_503", base_interval_s=300,
                                      now=datetime.now(UTC) - timedelta(hours=hours))
        store.record_run("ingest", {"published": 1})
    bus = open_bus(settings)
    try:
        bus.publish(TOPIC_DEADLETTER, [OutMessage(key=f"k{i}", value={"schema_version": 1, "error": "x"})
                                       for i in range(3)])
    finally:
        bus.close()
    index = open_index(settings)
    try:
        old = (NOW - timedelta(days=settings.retention_days + 1)).isoformat()
        recent = (NOW - timedelta(days=3)).isoformat()
        index.index_documents([_doc(1, old), _doc(2, recent), _doc(3, recent)])
    finally:
        index.close()

    report = run_maintenance(config, now=NOW)

    assert report["index_deleted"] == 1 and report["index_documents"] == 2
    assert report["index_cutoff"] == (NOW - timedelta(days=settings.retention_days)).date().isoformat()
    assert report["deadletter"] == {"messages": 3, "new": 3}
    assert [f["url"] for f in report["failing_feeds"]] == [FEEDS[1]]
    assert report["failing_feeds"][0]["consecutive_failures"] == 3
    assert report["state_rows_pruned"] >= 1, "state of a feed no longer configured is dropped"
    with StateStore(settings.state_db) as store:
        assert store.get_feed("https://gone.example/rss") is None
        assert store.get_feed(FEEDS[0]) is not None and store.get_feed(FEEDS[1]) is not None
        assert store.last_runs("maintenance", 1)[0]["summary"]["index_deleted"] == 1
    lines = problems(report)
    assert len(lines) == 2 and "3 new dead letters" in lines[0] and FEEDS[1] in lines[1]

    again = run_maintenance(config, now=NOW)
    assert again["index_deleted"] == 0 and again["index_documents"] == 2
    assert again["deadletter"] == {"messages": 3, "new": 0}, "dead letters already reported are not new"
    assert problems(again) == [lines[1]]


def test_maintenance_on_a_fresh_install_reports_nothing(config: Any) -> None:
    report = run_maintenance(config, now=NOW)
    assert report["deadletter"] == {"messages": 0, "new": 0}
    assert report["failing_feeds"] == [] and report["index_deleted"] == 0 and report["index_documents"] == 0
    assert problems(report) == []


def test_an_empty_feed_list_never_wipes_feed_state(config: Any, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with StateStore(config.settings.state_db) as store:
        store.record_poll_ok(FEEDS[0], etag=None, last_modified=None, body_hash="h", new_items=1,
                             base_interval_s=300)
    empty = tmp_path / "none.yaml"
    empty.write_text("feeds: []\n")
    monkeypatch.setenv("PIPELINE_FEEDS", str(empty))
    run_maintenance(load_config(), now=NOW)
    with StateStore(config.settings.state_db) as store:
        assert store.get_feed(FEEDS[0]) is not None
