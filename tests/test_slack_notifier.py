"""SlackNotifier against a local HTTP server standing in for the Slack webhook."""

from __future__ import annotations

import pytest
from test_alert_servers import FakeClock, SlackStandIn, slack_server  # noqa: F401

from pipeline.alerts.notifiers.slack import SlackNotifier, parse_retry_after
from pipeline.alerts.render import Rendered
from pipeline.errors import ConfigError, PermanentNotifyError, TransientNotifyError


def _msg(msg_id: str = "a1") -> Rendered:
    return Rendered(msg_id, "s", "t", "h", {"text": f"alert {msg_id}", "blocks": []}, "")


def _notifier(url: str, clock: FakeClock | None = None) -> SlackNotifier:
    clock = clock or FakeClock()
    return SlackNotifier(url, timeout=5, monotonic=clock.monotonic, sleep=clock.sleep)


def test_posts_the_payload(slack_server: SlackStandIn) -> None:  # noqa: F811
    result = _notifier(slack_server.url).send(_msg(), [])
    assert result.detail == "HTTP 200"
    assert slack_server.script.received == [{"text": "alert a1", "blocks": []}]


def test_429_is_transient_with_retry_after(slack_server: SlackStandIn) -> None:  # noqa: F811
    slack_server.script.responses.append((429, {"Retry-After": "7"}, "rate_limited"))
    with pytest.raises(TransientNotifyError) as err:
        _notifier(slack_server.url).send(_msg(), [])
    assert err.value.retry_after == 7.0 and "429" in str(err.value)


def test_500_is_transient(slack_server: SlackStandIn) -> None:  # noqa: F811
    slack_server.script.responses.append((500, {}, "internal_error"))
    with pytest.raises(TransientNotifyError, match="HTTP 500 internal_error") as err:
        _notifier(slack_server.url).send(_msg(), [])
    assert err.value.retry_after is None


@pytest.mark.parametrize(("status", "reason"), [(400, "invalid_payload"), (403, "action_prohibited"),
                                                (404, "no_service"), (410, "channel_is_archived")])
def test_client_errors_are_permanent_with_reason(slack_server: SlackStandIn, status: int, reason: str) -> None:  # noqa: F811
    slack_server.script.responses.append((status, {}, reason))
    with pytest.raises(PermanentNotifyError, match=f"HTTP {status} {reason}"):
        _notifier(slack_server.url).send(_msg(), [])


def test_connection_error_is_transient_and_hides_the_webhook() -> None:
    server = SlackStandIn()
    url = server.url
    server.server.server_close()  # bound port closed: connection refused
    with pytest.raises(TransientNotifyError) as err:
        _notifier(url).send(_msg(), [])
    assert "secret" not in str(err.value) and "/services/" not in str(err.value)
    assert "secret" not in repr(_notifier(url))


def test_at_most_one_message_per_second(slack_server: SlackStandIn) -> None:  # noqa: F811
    clock = FakeClock()
    n = _notifier(slack_server.url, clock)
    for i in range(3):
        n.send(_msg(f"m{i}"), [])
        clock.advance(0.25)
    assert clock.sleeps == [pytest.approx(0.75), pytest.approx(0.75)]
    assert len(slack_server.script.received) == 3


def test_parse_retry_after() -> None:
    import datetime as dt

    now = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after("Sun, 22 Nov 2026 12:00:45 GMT", now) == 45.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_rejects_non_http_webhook() -> None:
    with pytest.raises(ConfigError):
        SlackNotifier("ftp://example.com/hook")
