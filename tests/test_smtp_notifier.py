"""SMTPNotifier against a real SMTP server (aiosmtpd) in this process."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_alert_servers import SMTPServer, make_self_signed, smtp_server  # noqa: F401

from pipeline.alerts.notifiers.smtp import SMTPNotifier, parse_smtp_url
from pipeline.alerts.render import Rendered
from pipeline.errors import ConfigError, PermanentNotifyError, TransientNotifyError


def _msg(msg_id: str = "a1") -> Rendered:
    return Rendered(msg_id, "Subject line", "plain body\n", "<p>html body</p>", {}, "2026-11-22T12:00:00+00:00")


def test_parse_smtp_url() -> None:
    assert parse_smtp_url("smtp://mail.example:2525") == (False, "mail.example", 2525, None, None)
    assert parse_smtp_url("smtps://u%40x:p%3Ass@mail.example") == (True, "mail.example", 465, "u@x", "p:ss")
    assert parse_smtp_url("smtp://mail.example")[2] == 25
    with pytest.raises(ConfigError) as err:
        parse_smtp_url("http://user:hunter2@mail.example")
    assert "hunter2" not in str(err.value)


def test_repr_hides_password() -> None:
    n = SMTPNotifier("smtp://user:hunter2@127.0.0.1:25", sender="nw@example.com")
    assert "hunter2" not in repr(n)


def test_sends_multipart_plain_and_html(smtp_server: SMTPServer) -> None:  # noqa: F811
    n = SMTPNotifier(smtp_server.url, sender="nw@example.com", starttls="auto")
    result = n.send(_msg(), ["ops@example.com", "desk@example.com"])
    assert result.refused == {}
    mail_from, rcpts, _ = smtp_server.handler.messages[0]
    assert mail_from == "nw@example.com" and rcpts == ["ops@example.com", "desk@example.com"]
    msg = smtp_server.handler.parsed()[0]
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Message-ID"] == "<a1.email@example.com>"
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == "plain body\n"  # type: ignore[union-attr]
    assert msg.get_body(("html",)).get_content().strip() == "<p>html body</p>"  # type: ignore[union-attr]


def test_connection_refused_is_transient() -> None:
    server = SMTPServer()  # never started: the port refuses connections
    n = SMTPNotifier(server.url, sender="nw@example.com", timeout=2)
    with pytest.raises(TransientNotifyError, match="ConnectionRefusedError"):
        n.send(_msg(), ["ops@example.com"])


def test_4xx_is_transient_and_5xx_permanent(smtp_server: SMTPServer) -> None:  # noqa: F811
    n = SMTPNotifier(smtp_server.url, sender="nw@example.com")
    smtp_server.handler.data_reply = "451 4.3.0 mailbox busy, try later"
    with pytest.raises(TransientNotifyError, match="451"):
        n.send(_msg(), ["ops@example.com"])
    smtp_server.handler.data_reply = "554 5.7.1 message rejected"
    with pytest.raises(PermanentNotifyError, match="554 5.7.1 message rejected"):
        n.send(_msg(), ["ops@example.com"])
    assert smtp_server.handler.messages == []


def test_recipients_refused_individually_are_reported(smtp_server: SMTPServer) -> None:  # noqa: F811
    smtp_server.handler.refuse["gone@example.com"] = "550 5.1.1 no such user"
    n = SMTPNotifier(smtp_server.url, sender="nw@example.com")
    result = n.send(_msg(), ["ops@example.com", "gone@example.com"])
    assert result.refused == {"gone@example.com": "550 5.1.1 no such user"}
    assert smtp_server.handler.messages[0][1] == ["ops@example.com"]


def test_all_recipients_refused(smtp_server: SMTPServer) -> None:  # noqa: F811
    smtp_server.handler.refuse["gone@example.com"] = "550 5.1.1 no such user"
    smtp_server.handler.refuse["full@example.com"] = "452 4.2.2 mailbox full"
    n = SMTPNotifier(smtp_server.url, sender="nw@example.com")
    with pytest.raises(PermanentNotifyError, match="no such user"):
        n.send(_msg(), ["gone@example.com"])
    with pytest.raises(TransientNotifyError, match="mailbox full"):  # a 4xx among them: worth retrying
        n.send(_msg(), ["gone@example.com", "full@example.com"])


def test_starttls_used_when_offered_and_required(tmp_path: Path) -> None:
    cert = make_self_signed(tmp_path)
    server = SMTPServer(tls_context=cert.server_context(), require_starttls=True)
    server.start()
    try:
        n = SMTPNotifier(server.url, sender="nw@example.com", starttls="require", ssl_context=cert.client_context())
        n.send(_msg(), ["ops@example.com"])  # the server refuses MAIL before STARTTLS: it went over TLS
        assert len(server.handler.messages) == 1
        never = SMTPNotifier(server.url, sender="nw@example.com", starttls="never")
        with pytest.raises(PermanentNotifyError, match="530"):
            never.send(_msg(), ["ops@example.com"])
    finally:
        server.stop()


def test_starttls_required_but_not_offered(smtp_server: SMTPServer) -> None:  # noqa: F811
    n = SMTPNotifier(smtp_server.url, sender="nw@example.com", starttls="require")
    with pytest.raises(PermanentNotifyError, match="does not offer STARTTLS"):
        n.send(_msg(), ["ops@example.com"])
    assert smtp_server.handler.messages == []



def test_smtps_implicit_tls(tmp_path: Path) -> None:
    cert = make_self_signed(tmp_path)
    server = SMTPServer(implicit_tls=cert.server_context())
    server.start()
    try:
        SMTPNotifier(server.url, sender="nw@example.com", ssl_context=cert.client_context()).send(_msg(), ["o@example.com"])
        assert len(server.handler.messages) == 1
        with pytest.raises(TransientNotifyError, match="SSLCertVerificationError"):  # untrusted certificate
            SMTPNotifier(server.url, sender="nw@example.com").send(_msg(), ["ops@example.com"])
        assert len(server.handler.messages) == 1
    finally:
        server.stop()


def test_login_after_starttls(tmp_path: Path) -> None:
    cert = make_self_signed(tmp_path)
    server = SMTPServer(tls_context=cert.server_context(), login=("alerts", "s3cr:et"))
    server.start()
    try:
        url = f"smtp://alerts:s3cr%3Aet@127.0.0.1:{server.port}"
        SMTPNotifier(url, sender="nw@example.com", ssl_context=cert.client_context()).send(_msg(), ["ops@example.com"])
        assert len(server.handler.messages) == 1
        bad = f"smtp://alerts:wrong@127.0.0.1:{server.port}"
        with pytest.raises(PermanentNotifyError, match="535") as err:
            SMTPNotifier(bad, sender="nw@example.com", timeout=5, ssl_context=cert.client_context()).send(_msg(), ["ops@example.com"])
        assert "wrong" not in str(err.value)
    finally:
        server.stop()
