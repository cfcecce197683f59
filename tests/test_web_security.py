"""Writes need CSRF proof, and beyond loopback the token; login; the serve command."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from web_fixtures import csrf_of, open_test_context

from pipeline.web.app import create_app
from pipeline.web.security import WebSecurity, is_loopback, require_write

TOKEN = "correct-horse-battery-staple"


def _app(security: WebSecurity) -> Iterator[FastAPI]:
    ctx = open_test_context(security)
    app = create_app(ctx)

    @app.post("/test-write", dependencies=[Depends(require_write)])
    def write() -> dict[str, bool]:  # the dependency alone; the real feedback routes: test_web_feedback.py
        return {"ok": True}

    yield app
    ctx.close()


@pytest.fixture
def loopback_app(env: dict[str, str]) -> Iterator[FastAPI]:
    yield from _app(WebSecurity(bind_host="127.0.0.1"))


@pytest.fixture
def public_app(env: dict[str, str]) -> Iterator[FastAPI]:
    yield from _app(WebSecurity(bind_host="0.0.0.0", token=SecretStr(TOKEN)))  # noqa: S104 - the case under test


def test_loopback_writes_need_the_csrf_token_from_our_own_form(loopback_app: FastAPI) -> None:
    with TestClient(loopback_app, base_url="http://127.0.0.1") as client:
        assert client.post("/test-write").status_code == 403  # no cookie, no token
        csrf = csrf_of(client)
        assert client.post("/test-write", data={"csrf_token": "forged"}).status_code == 403
        assert client.post("/test-write", data={"csrf_token": csrf}).json() == {"ok": True}
        assert client.post("/test-write", headers={"X-CSRF-Token": csrf}).json() == {"ok": True}
        refused = client.post("/test-write", data={"csrf_token": csrf}, headers={"Origin": "https://evil.example"})
        assert refused.status_code == 403 and "cross-site" in refused.text
        assert client.post("/test-write", data={"csrf_token": csrf},
                           headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
        same = client.post("/test-write", data={"csrf_token": csrf}, headers={"Origin": "http://127.0.0.1"})
        assert same.status_code == 200


def test_beyond_loopback_writes_need_the_token(public_app: FastAPI) -> None:
    with TestClient(public_app, base_url="http://newswatch.example") as client:
        assert client.get("/").status_code == 200  # any Host: the server is meant to be reached by name
        csrf = csrf_of(client)
        denied = client.post("/test-write", data={"csrf_token": csrf})
        assert denied.status_code == 403 and "token is needed" in denied.text
        assert client.post("/test-write", headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code \
            == 403
        script = client.post("/test-write", headers={"Authorization": f"Bearer {TOKEN}"})
        assert script.json() == {"ok": True}  # a script with the token needs no CSRF token
        assert client.post("/login", data={"token": TOKEN, "csrf_token": "forged"}).status_code == 403
        wrong = client.post("/login", data={"token": "nope", "csrf_token": csrf})
        assert wrong.status_code == 403 and "wrong token" in wrong.text
        signed = client.post("/login", data={"token": TOKEN, "csrf_token": csrf, "next": "//evil.example/x"},
                             follow_redirects=False)
        assert signed.status_code == 303 and signed.headers["location"] == "/"  # no open redirect
        cookie = signed.headers["set-cookie"]
        assert "newswatch_auth=" in cookie and "HttpOnly" in cookie and TOKEN not in cookie
        assert client.post("/test-write", data={"csrf_token": csrf}).json() == {"ok": True}
        assert client.post("/test-write").status_code == 403  # the session cookie alone is not enough


def test_beyond_loopback_without_token_is_read_only(env: dict[str, str]) -> None:
    for app in _app(WebSecurity(bind_host="0.0.0.0")):  # noqa: S104 - the case under test
        with TestClient(app, base_url="http://newswatch.example") as client:
            csrf = csrf_of(client)
            r = client.post("/test-write", data={"csrf_token": csrf})
            assert r.status_code == 403 and "read-only" in r.text
            assert "read-only" in client.get("/login").text


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.1.2.3") and is_loopback("::1") and is_loopback("[::1]")
    assert is_loopback("localhost") and not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")  # noqa: S104
    assert not is_loopback("localhost.evil.example")


def _busy_port() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def test_serve_bad_usage_is_one_line_exit_2(env: dict[str, str]) -> None:
    with _busy_port() as busy:
        port = busy.getsockname()[1]
        for args, needle in ((["--port", str(port)], "cannot listen on 127.0.0.1"),
                             (["--host", "no-such-host.invalid"], "cannot resolve")):
            proc = subprocess.run([sys.executable, "-m", "pipeline", "serve", *args], capture_output=True, text=True,
                                  timeout=60, env=os.environ.copy())
            assert proc.returncode == 2, proc.stderr
            assert proc.stderr.count("\n") == 1 and needle in proc.stderr and "Traceback" not in proc.stderr


def test_serve_answers_and_stops_on_ctrl_c(env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert match, line
        with urllib.request.urlopen(match.group(0) + "api/health", timeout=30) as resp:  # noqa: S310 - loopback
            assert resp.status == 200 and b'"documents":0' in resp.read()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
