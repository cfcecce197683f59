"""End to end: alerts through the outbox to a real SMTP server and a local Slack stand-in,
through outages, 429 storms, permanent failures and a process killed between send and mark."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from test_alert_servers import (  # noqa: F401
    FakeClock,
    SlackStandIn,
    SMTPServer,
    enriched,
    settings_for,
    slack_server,
    smtp_server,
    story_text,
    watchlist,
)

from pipeline.alerts import AlertService
from pipeline.alerts.notifiers.slack import SlackNotifier
from pipeline.alerts.notifiers.smtp import SMTPNotifier
from pipeline.alerts.outbox import LEASE_SECONDS
from pipeline.config import load_settings

PROJECT = Path(__file__).resolve().parents[1]


def _service(tmp_path: Path, smtp: SMTPServer, slack: SlackStandIn, clock: FakeClock, **kw: object) -> AlertService:
    topic = {k: v for k, v in kw.items() if k in ("email", "slack", "digest", "max_alerts_per_hour")}
    settings = settings_for(tmp_path, **{k: v for k, v in kw.items() if k not in topic})
    notifiers = [SMTPNotifier(smtp.url, sender="nw@example.com", timeout=2),
                 SlackNotifier(slack.url, timeout=2, monotonic=clock.monotonic, sleep=clock.sleep)]
    return AlertService(settings, watchlist(**topic), notifiers=notifiers, clock=clock.now, sleep=clock.sleep)  # type: ignore[arg-type]


def _batch(n: int) -> list:
    return [enriched(story_text(i), title=f"Story {i}", url=f"https://a.example/{i}") for i in range(n)]


def _channels(svc: AlertService) -> list[dict]:
    return [a["channels"] for a in svc.list_alerts()]


def test_configured_from_env_each_alert_once_per_channel_and_rerun_sends_nothing(
        tmp_path: Path, smtp_server: SMTPServer, slack_server: SlackStandIn) -> None:  # noqa: F811
    settings = load_settings({"PIPELINE_DATA_DIR": str(tmp_path / "var"), "PIPELINE_CONFIG_DIR": str(tmp_path),
                              "SMTP_URL": smtp_server.url, "SLACK_WEBHOOK_URL": slack_server.url})
    wl = watchlist()
    with AlertService(settings, wl) as svc:
        assert sorted(svc.notifiers) == ["email", "slack"]
        new = svc.raise_alerts(_batch(2))
        report = svc.deliver_pending(max_seconds=30)
        assert (report.sent, report.retry_later, report.failed) == (4, 0, 0)
    with AlertService(settings, wl) as svc:  # the rerun
        assert svc.raise_alerts(_batch(2)) == []
        assert svc.deliver_pending(max_seconds=5).sent == 0
    assert sorted(m["X-Newswatch-Id"] for m in smtp_server.handler.parsed()) == sorted(r.id for r in new)
    assert len(slack_server.script.received) == 2


def test_smtp_down_then_up_while_slack_delivers(tmp_path: Path, slack_server: SlackStandIn) -> None:  # noqa: F811
    clock = FakeClock()
    smtp = SMTPServer()  # down: nothing listens on its port yet
    svc = _service(tmp_path, smtp, slack_server, clock)
    svc.raise_alerts(_batch(2))
    report = svc.deliver_pending()
    assert (report.sent, report.retry_later) == (2, 1)  # both Slack posts; email paused after one failure
    first, second = _channels(svc)
    assert first["slack"]["status"] == "sent" and second["slack"]["status"] == "sent"
    assert first["email"]["status"] == "pending" and first["email"]["attempts"] == 1
    assert "ConnectionRefusedError" in first["email"]["last_error"]
    assert second["email"]["attempts"] == 0
    clock.advance(0.5)  # t0 + 1.5 (the second Slack post waited 1 s)
    assert svc.deliver_pending().retry_later == 0  # backoff: no email attempt before t0 + 2
    clock.advance(1)
    assert svc.deliver_pending().retry_later == 1
    assert sum(c["email"]["attempts"] for c in _channels(svc)) == 2
    smtp.start()
    try:
        clock.advance(60)
        assert svc.deliver_pending().sent == 2
        assert [c["email"]["status"] for c in _channels(svc)] == ["sent", "sent"]
        assert len(smtp.handler.messages) == 2
        assert len(slack_server.script.received) == 2  # Slack was never repeated while email was retried
    finally:
        smtp.stop()
        svc.close()


def test_slack_429_storm_honours_retry_after_and_email_is_not_delayed(
        tmp_path: Path, smtp_server: SMTPServer, slack_server: SlackStandIn) -> None:  # noqa: F811
    clock = FakeClock()
    slack_server.script.responses.extend([(429, {"Retry-After": "5"}, "rate_limited")] * 6)
    svc = _service(tmp_path, smtp_server, slack_server, clock)
    new = svc.raise_alerts(_batch(3))
    start = clock.t
    first = svc.deliver_pending()
    assert (first.sent, first.retry_later) == (3, 1)  # every email went out during the storm
    report = svc.deliver_pending(max_seconds=600)
    assert (report.sent, report.failed) == (3, 0)
    assert clock.t - start >= 6 * 5  # six 429s, each waited out
    assert len(slack_server.script.received) == 9
    delivered = [p["blocks"][2]["elements"][0]["text"].split()[1] for p in slack_server.script.delivered()]
    assert sorted(delivered) == sorted(r.id for r in new)
    assert len(smtp_server.handler.messages) == 3
    assert max(c["slack"]["attempts"] for c in _channels(svc)) >= 2
    svc.close()


def test_permanent_failures_are_recorded_per_channel(
        tmp_path: Path, smtp_server: SMTPServer, slack_server: SlackStandIn) -> None:  # noqa: F811
    clock = FakeClock()
    smtp_server.handler.data_reply = "554 5.7.1 rejected by policy"
    slack_server.script.responses.append((404, {}, "no_service"))
    svc = _service(tmp_path, smtp_server, slack_server, clock)
    svc.raise_alerts(_batch(2))
    report = svc.deliver_pending()
    assert (report.sent, report.failed) == (1, 3)  # the second Slack post succeeded
    first, second = _channels(svc)
    assert first["email"] == {**first["email"], "status": "failed", "attempts": 1}
    assert "554 5.7.1 rejected by policy" in first["email"]["last_error"]
    assert first["slack"]["status"] == "failed" and "HTTP 404 no_service" in first["slack"]["last_error"]
    assert second["slack"]["status"] == "sent"
    clock.advance(3600)
    assert svc.deliver_pending().sent == 0  # failed rows are not retried
    svc.close()


def test_refused_recipient_recorded_and_others_served(
        tmp_path: Path, smtp_server: SMTPServer, slack_server: SlackStandIn) -> None:  # noqa: F811
    smtp_server.handler.refuse["gone@example.com"] = "550 5.1.1 no such user"
    svc = _service(tmp_path, smtp_server, slack_server, FakeClock(), email=["ops@example.com", "gone@example.com"])
    svc.raise_alerts(_batch(1))
    assert svc.deliver_pending().refused_recipients == 1
    email = _channels(svc)[0]["email"]
    assert email["status"] == "sent" and email["refused"] == {"gone@example.com": "550 5.1.1 no such user"}
    assert smtp_server.handler.messages[0][1] == ["ops@example.com"]
    svc.close()


def test_gives_up_after_max_attempts(tmp_path: Path, slack_server: SlackStandIn) -> None:  # noqa: F811
    clock = FakeClock()
    svc = _service(tmp_path, SMTPServer(), slack_server, clock, max_attempts=3)
    svc.raise_alerts(_batch(1))
    report = svc.deliver_pending(max_seconds=3600)
    assert (report.sent, report.retry_later, report.failed) == (1, 2, 1)
    assert _channels(svc)[0]["email"]["last_error"].startswith("gave up after 3 attempts")
    svc.close()


def test_hostile_title_is_harmless_in_both_channels(
        tmp_path: Path, smtp_server: SMTPServer, slack_server: SlackStandIn) -> None:  # noqa: F811
    title = "<!channel> al-Tanf <script>alert(1)</script>\r\nBcc: victim@evil.example"
    svc = _service(tmp_path, smtp_server, slack_server, FakeClock())
    svc.raise_alerts([enriched(story_text(1), title=title, url="https://a.example/h")])
    assert svc.deliver_pending().sent == 2
    raw = smtp_server.handler.messages[0][2].decode()
    head, body = raw.split("\r\n\r\n", 1)
    assert not any(line.startswith("Bcc:") for line in head.splitlines())
    assert smtp_server.handler.messages[0][1] == ["ops@example.com"]
    html = smtp_server.handler.parsed()[0].get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html and "&lt;script&gt;" in html
    payload = json.dumps(slack_server.script.received[0])
    assert "<!channel>" not in payload and "<script>" not in payload and "&lt;!channel&gt;" in payload
    svc.close()


_KILLER = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, sys.argv[3])
    from test_alert_servers import settings_for, watchlist
    from pathlib import Path
    from pipeline.alerts import AlertService
    from pipeline.alerts.notifiers.smtp import SMTPNotifier

    class KillAfterSend:
        channel = "email"
        def __init__(self, inner):
            self.inner = inner
        def send(self, message, recipients):
            self.inner.send(message, recipients)
            os.kill(os.getpid(), signal.SIGKILL)  # sent, not yet marked
        def close(self):
            pass

    svc = AlertService(settings_for(Path(sys.argv[1])), watchlist(slack=False),
                       notifiers=[KillAfterSend(SMTPNotifier(sys.argv[2], sender="nw@example.com"))])
    svc.deliver_pending()
    sys.exit(3)  # not reached
""")


def test_process_killed_between_send_and_mark_repeats_at_most_that_message(
        tmp_path: Path, smtp_server: SMTPServer) -> None:  # noqa: F811
    settings = settings_for(tmp_path)
    wl = watchlist(slack=False)
    smtp = SMTPNotifier(smtp_server.url, sender="nw@example.com")
    with AlertService(settings, wl, notifiers=[smtp]) as svc:
        new = svc.raise_alerts(_batch(3))
    proc = subprocess.run([sys.executable, "-c", _KILLER, str(tmp_path), smtp_server.url, str(Path(__file__).parent)],
                          cwd=PROJECT, capture_output=True, timeout=60, env={**os.environ, "PYTHONPATH": str(PROJECT)})
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert len(smtp_server.handler.messages) == 1
    clock = FakeClock()
    from datetime import datetime, timezone
    clock.t = datetime.now(timezone.utc).timestamp() + LEASE_SECONDS + 1  # the dead sender's lease has run out
    with AlertService(settings, wl, notifiers=[smtp], clock=clock.now, sleep=clock.sleep) as svc:
        assert svc.deliver_pending().sent == 3
        assert all(c["email"]["status"] == "sent" for c in _channels(svc))
        assert svc.deliver_pending().sent == 0
    ids_sent = [m["X-Newswatch-Id"] for m in smtp_server.handler.parsed()]
    assert sorted(set(ids_sent)) == sorted(r.id for r in new)  # none lost
    repeats = [i for i in set(ids_sent) if ids_sent.count(i) > 1]
    assert len(ids_sent) == 4 and repeats == [ids_sent[0]]  # only the interrupted one repeated
    assert len({m["Message-ID"] for m in smtp_server.handler.parsed()}) == 3  # with the same Message-ID
