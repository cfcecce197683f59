"""Rendering alerts and digests into the exact messages sent: email (text + HTML) and Slack.

Pure functions, no I/O. Everything that came from a feed is treated as hostile:

* email: HTML parts escape every feed string (``html.escape``); header values have CR,
  LF and other control characters replaced by spaces, so a title cannot add a header;
* Slack: ``&``, ``<`` and ``>`` are escaped in every feed string, so a title cannot
  ping ``<!channel>`` or forge a ``<url|link>``; links are only made for http(s) URLs.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote, urlsplit

from ..models import AlertRecord, Article, TopicReason

__all__ = [
    "Rendered",
    "make_snippet",
    "split_highlight",
    "header_safe",
    "slack_escape",
    "link_url",
    "format_time",
    "why_lines",
    "render_alert",
    "render_digest",
    "build_email",
    "format_alert_line",
]

SNIPPET_CONTEXT = 110  # characters of context on each side of the match
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+")
_SPACES = re.compile(r"\s+")
SLACK_MAX_STORIES = 40  # Block Kit allows 50 blocks per message


@dataclass
class Rendered:
    """One message, rendered for every channel; notifiers pick the part they send."""

    msg_id: str
    subject: str
    text: str
    html: str
    slack: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""


def header_safe(value: str, limit: int = 200) -> str:
    """``value`` fit for an email header: control characters (CR, LF, ...) become spaces."""
    clean = _SPACES.sub(" ", _CONTROL.sub(" ", value)).strip()
    return clean if len(clean) <= limit else clean[: limit - 1].rstrip() + "…"


def one_line(value: str) -> str:
    return _SPACES.sub(" ", _CONTROL.sub(" ", value)).strip()


def slack_escape(value: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control (``&``, ``<``, ``>``)."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link_url(url: str) -> str | None:
    """``url`` if it is an http(s) URL safe to put in a link, else None (shown as text only)."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return quote(url, safe=":/?#[]@!$&'()*+,;=%~-._")  # percent-encodes spaces, quotes, | < > and controls


def make_snippet(article: Article, reason: TopicReason | None, context: int = SNIPPET_CONTEXT) -> str:
    """A one-line window of the article around the reason's span (field/start/end)."""
    source = article.title if reason is not None and reason.field == "title" else article.text
    if reason is None or not (0 <= reason.start < reason.end <= len(source)):
        return one_line(source[: 2 * context]) + ("…" if len(source) > 2 * context else "")
    lo = max(0, reason.start - context)
    hi = min(len(source), reason.end + context)
    if lo > 0:  # start on a word boundary
        space = source.find(" ", lo, reason.start)
        lo = space + 1 if space != -1 else lo
    if hi < len(source):
        space = source.rfind(" ", reason.end, hi)
        hi = space if space != -1 else hi
    text = one_line(source[lo:hi])
    return ("…" if lo > 0 else "") + text + ("…" if hi < len(source) else "")


def split_highlight(snippet: str, match: str) -> tuple[str, str, str]:
    """(before, match, after): the first occurrence of ``match`` in ``snippet`` (case-insensitive)."""
    match = one_line(match)
    i = snippet.casefold().find(match.casefold()) if match else -1
    if i < 0:
        return snippet, "", ""
    return snippet[:i], snippet[i : i + len(match)], snippet[i + len(match) :]


def format_time(iso: str | None) -> str:
    if not iso:
        return "unknown"
    try:
        dt = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return one_line(iso)[:40]
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def why_lines(rec: AlertRecord) -> list[str]:
    """One plain line per reason: entity, relation, matched text, variant and field."""
    lines = []
    for r in rec.reasons:
        lines.append(
            f"{one_line(r.entity_name or r.entity_id)} ({r.relation}): matched \"{one_line(r.text)}\" "
            f"in the {r.field} via variant \"{one_line(r.variant)}\""
        )
    return lines or ["(no reason recorded)"]


def _match_text(rec: AlertRecord) -> str:
    return rec.reasons[0].text if rec.reasons else ""


def format_alert_line(rec: AlertRecord) -> str:
    """One console line: topic, title, source and why."""
    parts = dict.fromkeys(
        f"{r.entity_name or r.entity_id} ({r.relation}) as \"{one_line(r.text or r.variant)}\"" for r in rec.reasons
    )
    why = "; ".join(list(parts)[:3])
    title = one_line(rec.title)[:90]
    return f"ALERT [{rec.topic}] {title} | {one_line(rec.source)} | why: {why or 'n/a'}"


# -- one alert ---------------------------------------------------------------------------------


def _alert_text(rec: AlertRecord, topic_name: str) -> str:
    before, match, after = split_highlight(rec.snippet, _match_text(rec))
    snippet = f"{before}[{match}]{after}" if match else rec.snippet
    lines = [
        f"newswatch alert: {one_line(topic_name)} ({rec.topic})",
        "",
        one_line(rec.title),
        f"Source:    {one_line(rec.source)}",
        f"Published: {format_time(rec.published)}",
        f"Link:      {one_line(rec.url)}",
        "",
        snippet,
        "",
        "Why it fired:",
        *(f"- {w}" for w in why_lines(rec)),
    ]
    if rec.other_sources:
        lines += ["", "Also reported by: " + ", ".join(one_line(s) for s in rec.other_sources)]
    lines += ["", f"alert {rec.id} / story {rec.story_id}"]
    return "\n".join(lines) + "\n"


def _html_link(url: str, label: str) -> str:
    safe = link_url(url)
    if safe is None:
        return html.escape(label)
    return f'<a href="{html.escape(safe, quote=True)}">{html.escape(label)}</a>'


def _html_story(rec: AlertRecord, heading: str = "h2") -> str:
    before, match, after = split_highlight(rec.snippet, _match_text(rec))
    snippet = html.escape(before) + (f"<mark>{html.escape(match)}</mark>" if match else "") + html.escape(after)
    why = "".join(f"<li>{html.escape(w)}</li>" for w in why_lines(rec))
    also = ""
    if rec.other_sources:
        also = "<p>Also reported by: " + html.escape(", ".join(one_line(s) for s in rec.other_sources)) + "</p>"
    return (
        f"<{heading}>{_html_link(rec.url, one_line(rec.title) or rec.url)}</{heading}>"
        f"<p>{html.escape(one_line(rec.source))} &middot; {html.escape(format_time(rec.published))}</p>"
        f"<blockquote>{snippet}</blockquote><p>Why it fired:</p><ul>{why}</ul>{also}"
    )


def _slack_link(url: str, label: str) -> str:
    safe = link_url(url)
    label = slack_escape(one_line(label)).replace("|", "¦")
    return f"<{slack_escape(safe)}|{label}>" if safe else label


def _slack_story(rec: AlertRecord) -> str:
    before, match, after = split_highlight(rec.snippet, _match_text(rec))
    quote_ = slack_escape(before) + (f"*{slack_escape(match).replace('*', '')}*" if match else "") + slack_escape(after)
    why = "; ".join(slack_escape(w) for w in why_lines(rec))
    text = (
        f"{_slack_link(rec.url, rec.title or rec.url)}\n"
        f"{slack_escape(one_line(rec.source))} · {format_time(rec.published)}\n"
        f">{quote_}\n_Why:_ {why}"
    )
    if rec.other_sources:
        text += "\n_Also reported by:_ " + slack_escape(", ".join(one_line(s) for s in rec.other_sources))
    return text[:2900]


def render_alert(rec: AlertRecord, topic_name: str = "") -> Rendered:
    """The messages for one alert."""
    name = topic_name or rec.topic
    subject = header_safe(f"[newswatch] {name}: {rec.title}")
    body = (
        f"<html><body><p>newswatch alert: <strong>{html.escape(one_line(name))}</strong> "
        f"({html.escape(rec.topic)})</p>{_html_story(rec)}"
        f"<p><small>alert {html.escape(rec.id)} / story {html.escape(rec.story_id)}</small></p></body></html>\n"
    )
    fallback = f"newswatch alert [{slack_escape(one_line(name))}]: {slack_escape(one_line(rec.title))}"
    slack = {
        "text": fallback,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*newswatch alert: {slack_escape(one_line(name))}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _slack_story(rec)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"alert {rec.id} · story {rec.story_id}"}]},
        ],
        "unfurl_links": False,
        "unfurl_media": False,
    }
    return Rendered(rec.id, subject, _alert_text(rec, name), body, slack, rec.created_at)


# -- digests -----------------------------------------------------------------------------------


def render_digest(
    msg_id: str, period: str, created_at: str, stories: Sequence[tuple[AlertRecord, str]]
) -> Rendered:
    """One digest: ``stories`` as (alert, topic name), grouped by topic in first-seen order."""
    groups: dict[str, list[AlertRecord]] = {}
    names: dict[str, str] = {}
    for rec, name in stories:
        groups.setdefault(rec.topic, []).append(rec)
        names[rec.topic] = name or rec.topic
    count = sum(len(v) for v in groups.values())
    subject = header_safe(f"[newswatch] {period} digest: {count} stor{'y' if count == 1 else 'ies'} on "
                          + ", ".join(names[t] for t in groups))
    text_lines = [f"newswatch {period} digest ({format_time(created_at)}): {count} stories", ""]
    html_parts = [f"<html><body><p>newswatch {html.escape(period)} digest: {count} stories</p>"]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*newswatch {period} digest*: {count} stories"}}
    ]
    shown = 0
    for topic, recs in groups.items():
        text_lines += [f"== {one_line(names[topic])} ({topic}) ==", ""]
        html_parts.append(f"<h2>{html.escape(one_line(names[topic]))} ({html.escape(topic)})</h2>")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*{slack_escape(one_line(names[topic]))}*"}})
        for rec in recs:
            text_lines += _alert_text(rec, names[topic]).splitlines()[2:] + [""]
            html_parts.append(_html_story(rec, "h3"))
            if shown < SLACK_MAX_STORIES:
                blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _slack_story(rec)}})
            shown += 1
    if shown > SLACK_MAX_STORIES:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"and {shown - SLACK_MAX_STORIES} more stories (see the email digest)"}]})
    html_parts.append("</body></html>\n")
    slack = {"text": slack_escape(subject), "blocks": blocks, "unfurl_links": False, "unfurl_media": False}
    return Rendered(msg_id, subject, "\n".join(text_lines), "".join(html_parts), slack, created_at)


# -- email -------------------------------------------------------------------------------------


def build_email(rendered: Rendered, sender: str, recipients: Sequence[str], channel: str = "email") -> EmailMessage:
    """The exact email for ``rendered``: multipart/alternative (text, HTML), CRLF line endings.

    The Message-ID is derived from the message id, so a message repeated after a crash
    carries the same Message-ID and mail clients can drop the duplicate.
    """
    msg = EmailMessage(policy=SMTP)
    domain = header_safe(sender).rpartition("@")[2] or "newswatch.invalid"
    msg["From"] = header_safe(sender)
    msg["To"] = ", ".join(header_safe(r) for r in recipients)
    msg["Subject"] = header_safe(rendered.subject)
    try:
        when = datetime.fromisoformat(rendered.created_at.replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
    except ValueError:
        when = datetime.now(timezone.utc)
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<{rendered.msg_id}.{channel}@{domain}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Newswatch-Id"] = rendered.msg_id
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg
