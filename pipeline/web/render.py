"""Jinja2 templates with autoescaping everywhere, and the few filters that build markup.

Feed text (titles, snippets, sources, errors) is untrusted: templates never mark it safe.
The filters here that return :class:`~markupsafe.Markup` escape every piece of text they
put into it first, and links to articles are only made for http(s) URLs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from .security import csrf_input, write_access

__all__ = ["templates", "highlight", "code_spans", "safe_href", "when", "duration", "ago", "age", "past", "link"]

TEMPLATES_DIR = Path(__file__).parent / "templates"
#: the menu of every page: (path, label)
NAV = (("/", "Search"), ("/topics", "Topics"), ("/map", "Map"), ("/alerts", "Alerts"), ("/feeds", "Feeds"),
       ("/api/docs", "API"))
#: how the analysts' judgements read on the page
JUDGEMENTS = {"false-hit": "False hit", "confirmed": "Confirmed", "missed": "Should have fired"}


def highlight(snippet: str, matches: list[tuple[int, int]] | list[list[int]]) -> Markup:
    """The snippet escaped, with each matched range wrapped in ``<mark>`` (ranges from ``split_snippet``)."""
    out = []
    pos = 0
    for start, end in sorted((int(a), int(b)) for a, b in matches):
        if start < pos or end <= start or end > len(snippet):
            continue
        out.append(escape(snippet[pos:start]))
        out.append(Markup("<mark>{}</mark>").format(snippet[start:end]))
        pos = end
    out.append(escape(snippet[pos:]))
    return Markup("").join(out)


def code_spans(text: str) -> Markup:
    """``text`` escaped, with each `backquoted` span set as ``<code>`` (the API's own descriptions)."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unpaired backquote: no spans
        return escape(text)
    return Markup("").join(Markup("<code>{}</code>").format(part) if i % 2 else escape(part)
                           for i, part in enumerate(parts))


def safe_href(url: str | None) -> str:
    """``url`` if it is an absolute http(s) URL, else "" (no ``javascript:``, ``data:`` or relative links)."""
    if not url:
        return ""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ""
    return url.strip() if parts.scheme.lower() in ("http", "https") and parts.netloc else ""


def when(value: str | None, with_time: bool = True) -> str:
    """An ISO time as ``2017-06-09 14:20 UTC`` (or its date); "undated" when absent."""
    if not value:
        return "undated"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value[:25]
    if not with_time or (parsed.hour, parsed.minute, parsed.second) == (0, 0, 0) and len(value) <= 10:
        return parsed.date().isoformat()
    offset = parsed.utcoffset()
    zone = "" if offset is None else (" UTC" if offset == timedelta(0) else parsed.strftime(" UTC%z"))
    return parsed.strftime("%Y-%m-%d %H:%M") + zone


def duration(seconds: float | None) -> str:
    """``45 s``, ``12 min``, ``6.0 h``, ``3.5 days``: a span as a person reads it ("" when unknown)."""
    if seconds is None:
        return ""
    seconds = abs(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _seconds_before(value: str | None, now: str) -> float | None:
    try:
        return (datetime.fromisoformat(now) - datetime.fromisoformat(value or "")).total_seconds()
    except (TypeError, ValueError):  # unreadable, or one time without a zone
        return None


def ago(value: str | None, now: str) -> str:
    """``value`` relative to ``now`` (both ISO times): ``12 min ago`` or ``in 4 min``; "" if either is unreadable."""
    seconds = _seconds_before(value, now)
    if seconds is None:
        return ""
    return "just now" if abs(seconds) < 1 else f"{duration(seconds)} ago" if seconds > 0 else f"in {duration(seconds)}"


def age(value: str | None, now: str) -> str:
    """How long before ``now`` the ISO time ``value`` was: ``6 s``, ``3.2 h`` ("" if unreadable)."""
    return duration(_seconds_before(value, now))


def past(value: str | None, now: str) -> bool:
    """Whether the ISO time ``value`` is at or before ``now``."""
    seconds = _seconds_before(value, now)
    return seconds is not None and seconds >= 0


def link(path: str, **params: Any) -> str:
    """``path?k=v...`` with the empty parameters left out (links that keep the current filters)."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "", False)})
    return f"{path}?{query}" if query else path


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.autoescape = True
templates.env.filters.update(highlight=highlight, safe_href=safe_href, when=when, code_spans=code_spans,
                             duration=duration, ago=ago, age=age, past=past)
templates.env.globals.update(link=link, csrf_input=csrf_input, write_access=write_access, nav=NAV,
                             judgements=JUDGEMENTS)
