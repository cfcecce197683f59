"""Rendering: snippets with the match highlighted, the why, and hostile feed text made harmless."""

from __future__ import annotations

import json

from test_alert_servers import enriched

from pipeline.alerts.render import (
    build_email,
    format_alert_line,
    header_safe,
    link_url,
    make_snippet,
    render_alert,
    render_digest,
    slack_escape,
    split_highlight,
)
from pipeline.models import AlertRecord

HOSTILE_TITLE = "Breaking <!channel> <script>alert(1)</script>\r\nBcc: victim@evil.example <https://evil.example|click>"


def _record(title: str = "Garrison report", text: str | None = None, url: str = "https://news.example/a") -> AlertRecord:
    text = text or ("Long preamble words " * 20) + "The garrison at al-Tanf was reinforced on Tuesday. " + ("More " * 40)
    ea = enriched(text, title=title, url=url)
    reason = ea.tags.topics[0].reasons[0]
    return AlertRecord(id="alert1", topic="al-tanf", story_id="story1", doc_id=ea.id, url=url, title=title,
                       source="Example <News>", published="2017-06-08T10:00:00Z", created_at="2026-11-22T12:00:00+00:00",
                       reasons=[reason], snippet=make_snippet(ea.article, reason))


def test_snippet_is_a_window_around_the_match() -> None:
    rec = _record()
    assert rec.snippet.startswith("…") and rec.snippet.endswith("…")
    before, match, after = split_highlight(rec.snippet, "al-Tanf")
    assert match == "al-Tanf" and before.endswith("garrison at ") and after.startswith(" was reinforced")
    assert len(rec.snippet) < 300


def test_snippet_from_the_title_when_the_match_is_there() -> None:
    ea = enriched("Body text without the name.", title="Strike near al-Tanf")
    reason = ea.tags.topics[0].reasons[0]
    assert reason.field == "title"
    assert make_snippet(ea.article, reason) == "Strike near al-Tanf"


def test_alert_shows_topic_title_source_time_link_snippet_and_why() -> None:
    r = render_alert(_record(), "Al-Tanf garrison")
    for part in ("Al-Tanf garrison", "Garrison report", "Example <News>", "2017-06-08 10:00 UTC",
                 "https://news.example/a", "[al-Tanf]", 'Al-Tanf (core): matched "al-Tanf" in the text via variant "al-tanf"'):
        assert part in r.text
    assert "<mark>al-Tanf</mark>" in r.html
    assert "Example &lt;News&gt;" in r.html
    slack = json.dumps(r.slack)
    assert "*al-Tanf*" in slack and "Example &amp;lt;News&amp;gt;" not in slack and "Example &lt;News&gt;" in slack


def test_hostile_title_is_harmless_in_email() -> None:
    rec = _record(title=HOSTILE_TITLE)
    msg = build_email(render_alert(rec, "Al-Tanf"), "nw@example.com", ["ops@example.com"])
    raw = msg.as_string()
    head = raw.split("\r\n\r\n", 1)[0]
    assert "\r\nBcc:" not in head and "\nBcc:" not in head  # no injected header
    assert msg["Bcc"] is None
    assert "Bcc: victim@evil.example" in msg["Subject"]  # kept as harmless text on the subject line
    html_part = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html_part and "&lt;script&gt;" in html_part


def test_hostile_title_is_harmless_in_slack() -> None:
    r = render_alert(_record(title=HOSTILE_TITLE), "Al-Tanf")
    texts = [r.slack["text"]] + [b["text"]["text"] for b in r.slack["blocks"] if "text" in b]
    for t in texts:
        assert "<!channel>" not in t and "<script>" not in t and "<https://evil.example|click>" not in t
    assert "&lt;!channel&gt;" in r.slack["blocks"][1]["text"]["text"]


def test_header_safe_strips_control_characters() -> None:
    assert header_safe("a\r\nb\nc\rd\x00e\u2028f") == "a b c d e f"
    assert len(header_safe("x" * 500)) == 200


def test_only_http_links() -> None:
    assert link_url("javascript:alert(1)") is None
    assert link_url("https://ex.example/a b|c>d") == "https://ex.example/a%20b%7Cc%3Ed"
    r = render_alert(_record(url="javascript:alert(1)"), "t")
    assert 'href="javascript' not in r.html and "<javascript" not in json.dumps(r.slack)


def test_slack_escape() -> None:
    assert slack_escape("a & <b> c") == "a &amp; &lt;b&gt; c"


def test_digest_groups_stories_by_topic() -> None:
    a, b = _record(), _record(title="Second")
    b.topic, b.other_sources = "deir-ez-zor", ["Wire (https://wire.example/x)"]
    r = render_digest("d1", "daily", "2026-11-22T12:00:00+00:00", [(a, "Al-Tanf"), (b, "Deir ez-Zor"), (a, "Al-Tanf")])
    assert r.text.index("== Al-Tanf (al-tanf) ==") < r.text.index("== Deir ez-Zor (deir-ez-zor) ==")
    assert r.text.count("Garrison report") == 2 and "Also reported by: Wire (https://wire.example/x)" in r.text
    assert "3 stories" in r.subject


def test_console_line() -> None:
    line = format_alert_line(_record(title="Two\nlines"))
    assert "\n" not in line and line.startswith("ALERT [al-tanf] Two lines | Example <News> | why: Al-Tanf (core)")
