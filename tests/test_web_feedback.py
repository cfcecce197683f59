"""The analysts' judgements of alerts on the web: buttons and JSON API, CSRF and token rules, one judgement per
article and topic (repeats change nothing), stored in issue 12's feedback store and shown on the alert."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from web_fixtures import csrf_of, served

from pipeline.models import AlertRecord, TopicReason
from pipeline.web.context import WebContext
from pipeline.web.security import WebSecurity

TOKEN = "correct-horse-battery-staple"
HOSTILE_NOTE = '<img src=x onerror=alert(1)> not the province'


@pytest.fixture
def app(env: dict[str, str]) -> Iterator[tuple[WebContext, TestClient]]:
    with served(raise_server_exceptions=False) as pair:
        yield pair


@pytest.fixture
def ctx(app: tuple[WebContext, TestClient]) -> WebContext:
    return app[0]


@pytest.fixture
def client(app: tuple[WebContext, TestClient]) -> TestClient:
    return app[1]


def _stored(ctx: WebContext) -> list[tuple[str, str, str, str | None, str]]:
    return [(j.kind, j.doc_id, j.topic, j.alert_id, j.note) for j in ctx.feedback.all()]


def test_api_records_once_and_updates_the_judgement(client: TestClient, ctx: WebContext) -> None:
    csrf = csrf_of(client)
    first = client.post("/api/alerts/a1/feedback", json={"judgement": "false-hit", "note": "a singer"},
                        headers={"X-CSRF-Token": csrf})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["changed"] is True and body["previous"] is None and body["alert_id"] == "a1"
    assert body["judgement"]["kind"] == "false-hit" and body["judgement"]["note"] == "a singer"
    assert _stored(ctx) == [("false-hit", "doc0001", "deir-ez-zor", "a1", "a singer")]
    (j,) = ctx.feedback.all()
    assert j.title == "Siege report 1" and "siege of Deir ez-Zor" in j.text and j.fired == ["deir-ez-zor"]

    again = client.post("/api/alerts/a1/feedback", json={"judgement": "false-hit", "note": "a singer"},
                        headers={"X-CSRF-Token": csrf}).json()
    assert again["changed"] is False and again["judgement"] == body["judgement"]  # same time: nothing written
    assert len(ctx.feedback.all()) == 1

    turned = client.post("/api/alerts/a1/feedback", json={"judgement": "confirmed"},
                         headers={"X-CSRF-Token": csrf}).json()
    assert turned["changed"] is True and turned["previous"]["kind"] == "false-hit"
    assert _stored(ctx) == [("confirmed", "doc0001", "deir-ez-zor", "a1", "")]  # one judgement: the latest
    shown = {a["id"]: a["judgement"] for a in client.get("/api/alerts").json()}
    assert shown["a1"]["kind"] == "confirmed" and shown["a2"] is None and shown["a3"] is None
    assert [a["id"] for a in client.get("/api/alerts", params={"judged": "confirmed"}).json()] == ["a1"]
    assert [a["id"] for a in client.get("/api/alerts", params={"judged": "none"}).json()] == ["a3", "a2"]
    assert client.get("/api/alerts", params={"judged": "maybe"}).status_code == 400
    topic = client.get("/api/topics/deir-ez-zor").json()
    assert {a["id"]: a["judgement"] and a["judgement"]["kind"] for a in topic["alerts"]} == {"a1": "confirmed",
                                                                                          "a3": None}


def test_api_refuses_writes_without_csrf_proof(client: TestClient, ctx: WebContext) -> None:
    payload = {"judgement": "false-hit"}
    refused = client.post("/api/alerts/a1/feedback", json=payload)
    assert refused.status_code == 403 and "reload the page" in refused.json()["error"]
    csrf = csrf_of(client)
    assert client.post("/api/alerts/a1/feedback", json=payload).status_code == 403  # the cookie alone is not proof
    assert client.post("/api/alerts/a1/feedback", json=payload, headers={"X-CSRF-Token": "forged"}).status_code == 403
    cross = client.post("/api/alerts/a1/feedback", json=payload,
                        headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"})
    assert cross.status_code == 403 and cross.json()["error"] == "cross-site request refused"
    assert ctx.feedback.all() == []


def test_api_bad_input_is_one_line(client: TestClient, ctx: WebContext) -> None:
    headers = {"X-CSRF-Token": csrf_of(client)}
    unknown = client.post("/api/alerts/nope/feedback", json={"judgement": "false-hit"}, headers=headers)
    assert unknown.status_code == 404 and unknown.json() == {"error": "no alert 'nope'", "status": 404}
    for payload, needle in (({"judgement": "maybe"}, "judgement"), ({}, "judgement"),
                            ({"judgement": "confirmed", "note": "x" * 501}, "note")):
        r = client.post("/api/alerts/a1/feedback", json=payload, headers=headers)
        assert r.status_code == 400 and needle in r.json()["error"], r.text
    # an alert whose article the index no longer holds: said so, nothing recorded
    reason = TopicReason("al-tanf", "al-Tanf", "core", "al tanf", "al-Tanf", 0, 7)
    ctx.alerts.store.insert_alert(AlertRecord("gone", "al-tanf", "s9", "doc9999", "https://x.example/9", "Gone",
                                              "X", None, "2026-11-20T10:03:00+00:00", [reason]), "immediate", 1.0)
    gone = client.post("/api/alerts/gone/feedback", json={"judgement": "confirmed"}, headers=headers)
    assert gone.status_code == 400 and "no indexed document with id doc9999" in gone.json()["error"]
    assert ctx.feedback.all() == []


def test_buttons_record_and_the_page_shows_the_judgement(client: TestClient, ctx: WebContext) -> None:
    page = client.get("/alerts")
    assert page.text.count('<form class="feedback" method="post" action="/alerts/') == 3
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf and csrf.group(1) == client.cookies.get("newswatch_csrf")
    done = client.post("/alerts/a3/feedback", data={"csrf_token": csrf.group(1), "judgement": "false-hit",
                                                    "note": HOSTILE_NOTE, "next": "/topics/deir-ez-zor?x=1#old"},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/topics/deir-ez-zor?x=1#alert-a3"
    assert _stored(ctx) == [("false-hit", "doc0101", "deir-ez-zor", "a3", HOSTILE_NOTE)]
    shown = client.get("/topics/deir-ez-zor").text
    assert '<span class="verdict">False hit</span>' in shown
    assert "&lt;img src=x onerror=alert(1)&gt; not the province" in shown and "<img" not in shown
    assert 'class="false-hit chosen"' in shown
    away = client.post("/alerts/a2/feedback", data={"csrf_token": csrf.group(1), "judgement": "confirmed",
                                                    "next": "//evil.example/x"}, follow_redirects=False)
    assert away.headers["location"] == "/#alert-a2"  # only our own paths
    assert client.post("/alerts/a2/feedback", data={"judgement": "confirmed"}).status_code == 403  # no CSRF token
    bad = client.post("/alerts/a2/feedback", data={"csrf_token": csrf.group(1), "judgement": "maybe"})
    assert bad.status_code == 400 and "<html" in bad.text and "Traceback" not in bad.text
    assert sorted((a or "", k) for k, _, _, a, _ in _stored(ctx)) == [("a2", "confirmed"), ("a3", "false-hit")]


def test_beyond_loopback_the_token_is_needed(env: dict[str, str]) -> None:
    security = WebSecurity(bind_host="0.0.0.0", token=SecretStr(TOKEN))  # noqa: S104 - the case under test
    with served(security, base_url="http://newswatch.example") as (context, client):
        csrf = csrf_of(client)
        page = client.get("/alerts").text
        assert 'class="feedback"' not in page and "sign in to judge" in page
        denied = client.post("/api/alerts/a1/feedback", json={"judgement": "confirmed"},
                             headers={"X-CSRF-Token": csrf})
        assert denied.status_code == 403 and "token is needed" in denied.json()["error"]
        assert client.post("/api/alerts/a1/feedback", json={"judgement": "confirmed"},
                           headers={"Authorization": "Bearer not-the-token-at-all"}).status_code == 403
        assert context.feedback.all() == []
        script = client.post("/api/alerts/a1/feedback", json={"judgement": "confirmed", "note": "by script"},
                             headers={"Authorization": f"Bearer {TOKEN}"})  # a script needs no CSRF token
        assert script.status_code == 200 and script.json()["judgement"]["note"] == "by script"
        assert client.post("/login", data={"token": TOKEN, "csrf_token": csrf}).status_code == 200
        assert client.get("/alerts").text.count('class="feedback"') == 3  # signed in: the buttons
        form = client.post("/alerts/a2/feedback", data={"csrf_token": csrf, "judgement": "false-hit"},
                           follow_redirects=False)
        assert form.status_code == 303
        assert sorted(j.alert_id or "" for j in context.feedback.all()) == ["a1", "a2"]


def test_beyond_loopback_without_a_token_nothing_is_recorded(env: dict[str, str]) -> None:
    with served(WebSecurity(bind_host="0.0.0.0"),  # noqa: S104 - the case under test
                base_url="http://newswatch.example") as (context, client):
        csrf = csrf_of(client)
        page = client.get("/alerts").text
        assert 'class="feedback"' not in page and "sign in" not in page and "not judged" in page
        r = client.post("/api/alerts/a1/feedback", json={"judgement": "false-hit"}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 403 and "read-only" in r.json()["error"]
        assert context.feedback.all() == []


def test_openapi_documents_the_feedback_endpoint(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    op = spec["paths"]["/api/alerts/{alert_id}/feedback"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/FeedbackRequest")
    assert set(op["responses"]) == {"200", "400", "403", "404"}  # what the handlers answer; no 422
    body = spec["components"]["schemas"]["FeedbackRequest"]
    assert body["properties"]["judgement"]["enum"] == ["false-hit", "confirmed"] and body["required"] == ["judgement"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    docs = client.get("/api/docs").text
    assert "/api/alerts/{alert_id}/feedback" in docs and "JSON body field" in docs
