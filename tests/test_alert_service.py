"""AlertService: one alert per (topic, story), idempotent reruns, replays, throttling, digests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_alert_servers import FakeClock, enriched, settings_for, story_text, watchlist

from pipeline import ids
from pipeline.alerts import AlertService
from pipeline.errors import ConfigError


def _service(tmp_path: Path, clock: FakeClock, **topic: object) -> AlertService:
    settings = settings_for(tmp_path)
    return AlertService(settings, watchlist(**topic), clock=clock.now, sleep=clock.sleep)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_file_notifier_is_the_default_and_reruns_change_nothing(tmp_path: Path) -> None:
    clock = FakeClock()
    svc = _service(tmp_path, clock)
    assert list(svc.notifiers) == ["file"]
    batch = [enriched(story_text(1), url="https://a.example/1"), enriched(story_text(2), url="https://a.example/2")]
    new = svc.raise_alerts(batch)
    assert [r.id for r in new] == [ids.alert_id("al-tanf", ids.doc_id(f"https://a.example/{i}")) for i in (1, 2)]
    assert svc.deliver_pending().sent == 2
    assert svc.raise_alerts(batch) == []
    assert svc.deliver_pending().sent == 0
    svc.close()
    svc = _service(tmp_path, clock)  # a fresh process: still nothing new
    assert svc.raise_alerts(batch) == [] and svc.deliver_pending().sent == 0
    lines = _lines(tmp_path / "var" / "alerts.jsonl")
    assert sorted(line["id"] for line in lines) == sorted(r.id for r in new)
    assert "[al-Tanf]" in lines[0]["text"]
    svc.close()


def test_syndicated_copy_collapses_into_the_first_alert(tmp_path: Path) -> None:
    clock = FakeClock()
    svc = _service(tmp_path, clock)
    first = enriched(story_text(3), url="https://a.example/story", source="Agency A")
    copy_text = "BEIRUT (Wire) - " + story_text(3) + " Additional reporting by the Wire desk."
    copy = enriched(copy_text, url="https://b.example/syndicated?id=9", source="Paper B")
    other = enriched(story_text(4), url="https://c.example/other", source="Paper C")
    new = svc.raise_alerts([first])
    assert len(new) == 1
    assert svc.raise_alerts([copy]) == []
    assert svc.raise_alerts([copy]) == []  # and again: still one other source
    assert len(svc.raise_alerts([other])) == 1  # a different story on the same topic alerts
    alerts = {a["id"]: a for a in svc.list_alerts()}
    assert alerts[new[0].id]["other_sources"] == ["Paper B (https://b.example/syndicated?id=9)"]
    assert len(alerts) == 2
    svc.close()


def test_exact_duplicate_text_on_another_url_collapses(tmp_path: Path) -> None:
    svc = _service(tmp_path, FakeClock())
    assert len(svc.raise_alerts([enriched(story_text(5), url="https://a.example/x")])) == 1
    assert svc.raise_alerts([enriched(story_text(5), url="https://mirror.example/x")]) == []
    svc.close()


def test_replays_raise_nothing_unless_asked(tmp_path: Path) -> None:
    svc = _service(tmp_path, FakeClock())
    art = enriched(story_text(6), replay=True)
    assert svc.raise_alerts([art]) == []
    assert svc.list_alerts() == []
    assert len(svc.raise_alerts([art], alert_on_replay=True)) == 1
    svc.close()


def test_topics_not_in_the_watchlist_are_ignored(tmp_path: Path) -> None:
    svc = _service(tmp_path, FakeClock())
    assert svc.raise_alerts([enriched(story_text(7), topic="palmyra")]) == []
    svc.close()


def test_hourly_cap_rolls_the_overflow_into_a_digest(tmp_path: Path) -> None:
    clock = FakeClock()
    svc = _service(tmp_path, clock, max_alerts_per_hour=2)
    arts = [enriched(story_text(n), url=f"https://a.example/{n}") for n in range(5)]
    new = svc.raise_alerts(arts)
    assert len(new) == 5
    assert svc.deliver_pending().sent == 2
    listed = svc.list_alerts()
    assert [a["delivery"] for a in listed] == ["immediate"] * 2 + ["throttled"] * 3
    assert listed[2]["digests"] == [{"recipient": "file", "period": "hourly", "digest_id": None, "status": "waiting"}]
    report = svc.send_digests("hourly")
    assert report.sent == 1
    digest = _lines(tmp_path / "var" / "alerts.jsonl")[-1]
    assert digest["text"].count("Why it fired:") == 3 and "hourly digest" in digest["subject"]
    assert svc.send_digests("hourly").sent == 0  # one digest per period
    clock.advance(3600)
    assert len(svc.raise_alerts([enriched(story_text(9), url="https://a.example/9")])) == 1
    assert [a["delivery"] for a in svc.list_alerts()][-1] == "immediate"  # the cap is per hour
    svc.close()


def test_per_recipient_digest_mode(tmp_path: Path) -> None:
    clock = FakeClock()
    sent: list[tuple[str, list[str], str]] = []

    class Mail:
        channel = "email"

        def send(self, message, recipients):  # type: ignore[no-untyped-def]
            from pipeline.alerts import SendResult

            sent.append((message.msg_id, list(recipients), message.subject))
            return SendResult()

        def close(self) -> None:
            return None

    svc = AlertService(settings_for(tmp_path),
                       watchlist(email=["now@example.com", "boss@example.com?digest=daily"], slack=False),
                       notifiers=[Mail()], clock=clock.now, sleep=clock.sleep)  # type: ignore[list-item]
    new = svc.raise_alerts([enriched(story_text(n), url=f"https://a.example/{n}") for n in range(3)])
    svc.deliver_pending()
    assert [s[1] for s in sent] == [["now@example.com"]] * 3
    assert svc.send_digests("hourly").sent == 0
    assert svc.send_digests("daily").sent == 1
    assert sent[-1][1] == ["boss@example.com"] and "daily digest: 3 stories" in sent[-1][2]
    assert svc.send_digests("daily").sent == 0
    assert {d["status"] for a in svc.list_alerts() for d in a["digests"]} == {"sent"}
    assert len(new) == 3
    svc.close()


def test_invalid_recipient_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"topics\.al-tanf\.email\.0"):
        AlertService(settings_for(tmp_path), watchlist(email=["ops@example.com\r\nBcc: x@evil.example"]))
    with pytest.raises(ConfigError, match="digest=immediate"):
        AlertService(settings_for(tmp_path), watchlist(email=["ops@example.com?digest=weekly"]))


def test_two_processes_sharing_the_store_collapse_copies(tmp_path: Path) -> None:
    clock = FakeClock()
    a, b = _service(tmp_path, clock), _service(tmp_path, clock)
    assert len(a.raise_alerts([enriched(story_text(1), url="https://a.example/1")])) == 1
    assert b.raise_alerts([enriched("Wire copy: " + story_text(1), url="https://b.example/1")]) == []
    assert a.list_alerts()[0]["other_sources"] == ["Example News (https://b.example/1)"]
    a.close()
    b.close()


def test_a_copy_after_the_story_window_alerts_again(tmp_path: Path) -> None:
    from pipeline.alerts.service import STORY_WINDOW_DAYS

    clock = FakeClock()
    svc = _service(tmp_path, clock)
    assert len(svc.raise_alerts([enriched(story_text(1), url="https://a.example/1")])) == 1
    clock.advance((STORY_WINDOW_DAYS + 1) * 86400)
    assert len(svc.raise_alerts([enriched(story_text(1), url="https://b.example/1")])) == 1
    svc.close()


def test_backoff_is_exponential_capped_and_honours_retry_after() -> None:
    from pipeline.alerts.outbox import MAX_RETRY_AFTER, Backoff

    b = Backoff(base=2, maximum=60, max_attempts=8)
    assert [b.delay(n) for n in range(1, 7)] == [2, 4, 8, 16, 32, 60]
    assert b.delay(1, retry_after=30) == 30 and b.delay(6, retry_after=5) == 60
    assert b.delay(1, retry_after=10**9) == MAX_RETRY_AFTER


def test_a_row_whose_sender_keeps_dying_is_given_up(tmp_path: Path) -> None:
    from pipeline.alerts.outbox import LEASE_SECONDS

    clock = FakeClock()
    svc = AlertService(settings_for(tmp_path, max_attempts=2), watchlist(), clock=clock.now, sleep=clock.sleep)
    svc.raise_alerts([enriched(story_text(1))])
    for _ in range(2):  # two senders claim the row and die before marking it
        assert svc.store.claim_next(["file"], clock.t, LEASE_SECONDS) is not None
        clock.advance(LEASE_SECONDS + 1)
    report = svc.deliver_pending()
    assert (report.sent, report.failed) == (0, 1)
    assert svc.list_alerts()[0]["channels"]["file"]["last_error"] == "gave up after 2 interrupted attempts"
    svc.close()
