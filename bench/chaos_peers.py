"""The alert peers of the failure benchmark: a real SMTP server (aiosmtpd) and a Slack stand-in.

Both run in the benchmark's process on 127.0.0.1, on a port that stays the same across
:meth:`down` / :meth:`up` (so the alert worker's ``SMTP_URL`` / ``SLACK_WEBHOOK_URL`` keep
working), and record what they actually received, with the time: duplicates are counted from
these records, not from what the pipeline believes it sent.

* SMTP: every accepted message's ``Message-ID`` and ``X-Newswatch-Id`` (the alert or digest id).
* Slack: a ``ThreadingHTTPServer`` answering a webhook POST as Slack does (``200``, body ``ok``,
  ``text/html``); the alert id is read from the message's context block (``alert <id> · story ...``).

While down, nothing listens on the port: connections are refused, as for a server that is off.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

__all__ = ["Received", "SMTPPeer", "SlackPeer", "alert_peers"]

_ALERT_ID = re.compile(r"\b(?:alert|digest) ([0-9a-f]{8,64})\b")


@dataclass(frozen=True)
class Received:
    """One message a peer accepted: when, which newswatch message (alert or digest id), its own id."""

    at: float
    msg_id: str
    peer_id: str  # SMTP Message-ID; Slack: the alert id again


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.down_periods: list[tuple[float, float | None]] = []

    def add(self, item: Received) -> None:
        with self.lock:
            self.received.append(item)

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.received)


class _SMTPHandler:
    def __init__(self, recorder: _Recorder) -> None:
        self.recorder = recorder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        msg = message_from_bytes(bytes(envelope.original_content), policy=policy.default)
        self.recorder.add(Received(time.time(), str(msg.get("X-Newswatch-Id", "")), str(msg.get("Message-ID", ""))))
        return "250 Message accepted for delivery"


class SMTPPeer:
    """aiosmtpd on 127.0.0.1:``port``; :meth:`down` stops it (connections refused), :meth:`up` starts it again."""

    channel = "email"

    def __init__(self) -> None:
        self.port = _free_port()
        self.recorder = _Recorder()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def up(self) -> None:
        if self._controller is None:
            self._controller = Controller(_SMTPHandler(self.recorder), hostname="127.0.0.1", port=self.port)
            self._controller.start()
            if self.recorder.down_periods and self.recorder.down_periods[-1][1] is None:
                self.recorder.down_periods[-1] = (self.recorder.down_periods[-1][0], time.time())

    def down(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
            self.recorder.down_periods.append((time.time(), None))


class _SlackHandler(BaseHTTPRequestHandler):
    server: _SlackServer

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length", "0") or 0)
        try:
            payload = json.loads(self.rfile.read(length).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self._answer(400, b"invalid_payload")
            return
        if self.path != self.server.path:
            self._answer(404, b"no_service")
            return
        found = _ALERT_ID.search(json.dumps(payload.get("blocks", []), ensure_ascii=False))
        msg_id = found.group(1) if found else ""
        self.server.recorder.add(Received(time.time(), msg_id, msg_id))
        self._answer(200, b"ok")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        return


class _SlackServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    recorder: _Recorder
    path: str


class SlackPeer:
    """A Slack incoming-webhook stand-in on 127.0.0.1:``port`` at ``/services/T000/B000/chaos``."""

    channel = "slack"
    path = "/services/T000/B000/chaos"

    def __init__(self) -> None:
        self.port = _free_port()
        self.recorder = _Recorder()
        self._server: _SlackServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def up(self) -> None:
        if self._server is not None:
            return
        server = _SlackServer(("127.0.0.1", self.port), _SlackHandler)
        server.recorder = self.recorder
        server.path = self.path
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="slack-peer", daemon=True)
        self._thread.start()
        if self.recorder.down_periods and self.recorder.down_periods[-1][1] is None:
            self.recorder.down_periods[-1] = (self.recorder.down_periods[-1][0], time.time())

    def down(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)
        self._server = None
        self.recorder.down_periods.append((time.time(), None))


@contextmanager
def alert_peers() -> Iterator[tuple[SMTPPeer, SlackPeer]]:
    """Both peers up for the block, down after it."""
    smtp, slack = SMTPPeer(), SlackPeer()
    smtp.up()
    slack.up()
    try:
        yield smtp, slack
    finally:
        smtp.down()
        slack.down()
