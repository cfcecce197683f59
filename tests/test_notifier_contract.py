"""One contract, every notifier (file, SMTP, Slack): delivered on success, transient when the peer is away."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_alert_servers import FakeClock, SlackStandIn, SMTPServer

import pipeline.alerts as alerts
from pipeline.alerts.notifiers import Notifier, SendResult
from pipeline.alerts.notifiers.file import FileNotifier
from pipeline.alerts.notifiers.slack import SlackNotifier
from pipeline.alerts.notifiers.smtp import SMTPNotifier
from pipeline.alerts.render import Rendered
from pipeline.errors import TransientNotifyError


class Peer:
    """A destination: build the notifier, read back what arrived, make the destination unavailable."""

    def __init__(self, notifier: Notifier, arrived: Callable[[], list[str]], break_: Callable[[], None]) -> None:
        self.notifier, self.arrived, self.break_ = notifier, arrived, break_


@pytest.fixture(params=["file", "email", "slack"])
def peer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Peer]:
    if request.param == "file":
        path = tmp_path / "alerts.jsonl"

        def broken_file() -> None:
            path.unlink(missing_ok=True)
            path.mkdir()  # appending to a directory fails

        yield Peer(FileNotifier(path), lambda: [json.loads(x)["id"] for x in path.read_text().splitlines()],
                   broken_file)
    elif request.param == "email":
        smtp = SMTPServer()
        smtp.start()
        yield Peer(SMTPNotifier(smtp.url, sender="nw@example.com", timeout=2),
                   lambda: [m["X-Newswatch-Id"] for m in smtp.handler.parsed()], smtp.stop)
        smtp.stop()
    else:
        slack = SlackStandIn()
        slack.start()
        clock = FakeClock()
        yield Peer(SlackNotifier(slack.url, timeout=2, monotonic=clock.monotonic, sleep=clock.sleep),
                   lambda: [p["text"] for p in slack.script.delivered()],
                   lambda: slack.script.responses.append((503, {}, "service_unavailable")))
        slack.stop()


def _message() -> Rendered:
    return Rendered("m1", "subject", "text\n", "<p>html</p>", {"text": "m1", "blocks": []}, "2026-11-22T12:00:00+00:00")


def test_delivers_and_returns_a_result(peer: Peer) -> None:
    assert isinstance(peer.notifier, Notifier) and peer.notifier.channel in ("file", "email", "slack")
    result = peer.notifier.send(_message(), ["ops@example.com"])
    assert isinstance(result, SendResult) and result.refused == {}
    assert peer.arrived() == ["m1"]
    peer.notifier.close()


def test_unavailable_destination_is_transient(peer: Peer) -> None:
    peer.break_()
    with pytest.raises(TransientNotifyError):
        peer.notifier.send(_message(), ["ops@example.com"])
    peer.notifier.close()


def test_public_names() -> None:
    assert sorted(alerts.__all__) == sorted(n for n in alerts.__all__ if hasattr(alerts, n))
    assert {"AlertService", "DeliveryReport", "Notifier", "format_alert_line"} <= set(alerts.__all__)
