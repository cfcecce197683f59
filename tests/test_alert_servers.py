"""Real protocol peers for the alert tests (imported by the other test_alert*/test_smtp*/test_slack* files):
an aiosmtpd SMTP server in this process, a local HTTP server standing in for the Slack webhook,
a fake clock, and builders for enriched articles. The few tests here check the peers themselves."""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import smtplib
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from pipeline import ids
from pipeline.config import Settings, Watchlist, WatchTopic
from pipeline.models import Article, EnrichedArticle, TagResult, TopicHit, TopicReason

UTC = dt.timezone.utc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeClock:
    """Wall clock, monotonic clock and sleep in one: sleeping advances time instantly."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.t = (start or dt.datetime(2026, 11, 22, 12, 0, tzinfo=UTC)).timestamp()
        self.sleeps: list[float] = []

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.t, UTC)

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        self.t += seconds


# -- SMTP ------------------------------------------------------------------------------------


class MailRecorder:
    """aiosmtpd handler: records accepted messages; can refuse recipients or fail DATA."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.refuse: dict[str, str] = {}  # address -> reply, e.g. "550 no such user"
        self.data_reply: str | None = None  # e.g. "451 try later"
        self.lock = threading.Lock()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content)))
        return "250 Message accepted for delivery"

    def parsed(self) -> list[EmailMessage]:
        with self.lock:
            return [message_from_bytes(m[2], policy=policy.default) for m in self.messages]  # type: ignore[misc]


class SMTPServer:
    """A real SMTP server on 127.0.0.1 that can be stopped and started again on the same port."""

    def __init__(self, tls_context: ssl.SSLContext | None = None, require_starttls: bool = False,
                 implicit_tls: ssl.SSLContext | None = None, login: tuple[str, str] | None = None) -> None:
        self.port = free_port()
        self.handler = MailRecorder()
        self.tls_context = tls_context
        self.require_starttls = require_starttls
        self.implicit_tls = implicit_tls
        self.login = login
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"{'smtps' if self.implicit_tls else 'smtp'}://127.0.0.1:{self.port}"

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult

        ok = self.login is not None and (auth_data.login.decode(), auth_data.password.decode()) == self.login
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 535 itself

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if self.tls_context is not None:
            kwargs.update(tls_context=self.tls_context, require_starttls=self.require_starttls)
        if self.implicit_tls is not None:
            kwargs.update(ssl_context=self.implicit_tls, server_hostname="127.0.0.1")
        if self.login is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True,  # AUTH offered after STARTTLS only
                          auth_exclude_mechanism=["LOGIN"])
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    server = SMTPServer()
    server.start()
    yield server
    server.stop()


@dataclass
class SelfSigned:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


def make_self_signed(directory: Path) -> SelfSigned:
    """A certificate for 127.0.0.1 (cryptography, already a dependency of the test extras' tree)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return SelfSigned(cert_path, key_path)


# -- Slack stand-in ----------------------------------------------------------------------------


@dataclass
class SlackScript:
    """Responses to play, in order, before answering 200 ``ok``: (status, headers, body)."""

    responses: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)  # every request's JSON body
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered(self) -> list[dict[str, Any]]:
        """Payloads answered with 200."""
        with self.lock:
            return [p for p, s in zip(self.received, self.statuses, strict=True) if s == 200]


class SlackStandIn:
    """A local HTTP server playing a Slack incoming webhook at ``/services/T000/B000/secret``."""

    def __init__(self) -> None:
        self.script = SlackScript()
        script = self.script

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length).decode("utf-8"))
                with script.lock:
                    status, headers, text = script.responses.pop(0) if script.responses else (200, {}, "ok")
                    script.received.append(body)
                    script.statuses.append(status)
                data = text.encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/secret"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def slack_server() -> Iterator[SlackStandIn]:
    server = SlackStandIn()
    server.start()
    yield server
    server.stop()


# -- articles and config -----------------------------------------------------------------------


def settings_for(tmp_path: Path, **alerts: Any) -> Settings:
    base = {"base_backoff_seconds": 2.0, "max_backoff_seconds": 60.0, "max_attempts": 8}
    base.update(alerts)
    return Settings.model_validate({"data_dir": str(tmp_path / "var"), "alerts": base})


def watchlist(**topic: Any) -> Watchlist:
    spec = {"id": "al-tanf", "name": "Al-Tanf garrison", "core": ["al-tanf"], "email": ["ops@example.com"],
            "slack": True}
    spec.update(topic)
    return Watchlist(topics=[WatchTopic.model_validate(spec)])


def enriched(text: str, *, title: str = "Report", url: str = "https://news.example/a", source: str = "Example News",
             topic: str = "al-tanf", match: str = "al-Tanf", replay: bool = False,
             published: str | None = "2017-06-08T10:00:00Z") -> EnrichedArticle:
    """An enriched article whose topic fired on the first occurrence of ``match`` (title first)."""
    in_title = match in title
    start = (title if in_title else text).index(match)
    reason = TopicReason(entity_id="al-tanf", entity_name="Al-Tanf", relation="core", variant=match.lower(),
                         text=match, start=start, end=start + len(match), field="title" if in_title else "text")
    art = Article(id=ids.doc_id(url), url=url, title=title, text=text, fetched_at="2017-06-08T11:00:00Z",
                  source=source, published=published, replay=replay)
    return EnrichedArticle(article=art, tags=TagResult(topics=[TopicHit(id=topic, name=topic, reasons=[reason])]),
                           enriched_at="2017-06-08T11:00:01Z")


def story_text(n: int) -> str:
    """Distinct invented reports, each mentioning al-Tanf (written for these tests)."""
    subjects = ["convoy", "airstrike", "checkpoint", "supply drop", "patrol", "training course", "refugee camp",
                "drone sighting"]
    places = ["near the Jordanian border", "on the Damascus highway", "south of the Euphrates", "in the desert zone"]
    s, p = subjects[n % len(subjects)], places[(n // len(subjects)) % len(places)]
    return (
        f"Report number {n}. A {s} was observed {p} on day {n} of the month, officials said. "
        f"The garrison at al-Tanf, held by coalition forces, raised its alert level after the {s}. "
        f"Local monitors counted {n + 3} vehicles and said the situation remained tense for {n + 1} hours. "
        f"Analysts linked event {n} to wider manoeuvring in the region, while spokesmen declined to comment "
        f"on whether the {s} crossed the 55-kilometre deconfliction zone. Further details on case {n} were expected."
    )


# -- the peers work ----------------------------------------------------------------------------


def test_smtp_server_accepts_a_message(smtp_server: SMTPServer) -> None:
    with smtplib.SMTP("127.0.0.1", smtp_server.port, timeout=5) as smtp:
        smtp.sendmail("a@example.com", ["b@example.com"], b"Subject: hi\r\n\r\nbody\r\n")
    assert smtp_server.handler.parsed()[0]["Subject"] == "hi"


def test_slack_stand_in_plays_its_script(slack_server: SlackStandIn) -> None:
    import urllib.error
    import urllib.request

    slack_server.script.responses.append((429, {"Retry-After": "3"}, "rate_limited"))
    req = urllib.request.Request(slack_server.url, data=b'{"text": "x"}', headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 429 and err.value.headers["Retry-After"] == "3"
    err.value.close()
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200
    assert slack_server.script.statuses == [429, 200]
