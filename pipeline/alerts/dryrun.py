"""``watchlist test``: would this article fire this topic, why, and what exactly would be sent.

Pure apart from reading the file: builds the alert the service would build and renders
the exact email (headers, text and HTML) and Slack payload, without sending anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from .. import ids
from ..config import WatchTopic
from ..errors import InputError
from ..models import AlertRecord, Article, TagResult
from .render import build_email, make_snippet, render_alert
from .rules import route_for

__all__ = ["DryRun", "read_article_file", "dry_run"]


@dataclass
class DryRun:
    topic: str
    fires: bool
    record: AlertRecord | None = None
    email: EmailMessage | None = None
    slack: dict[str, Any] | None = None
    delivery: list[str] = field(default_factory=list)  # human lines: who would get it, how


def read_article_file(path: Path) -> tuple[str, str, str]:
    """(title, text, url) from a text, HTML or JSON ``{"title", "text", "url"}`` file; InputError if unusable."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read as UTF-8 text: {exc}") from None
    stripped = raw.lstrip()
    if path.suffix.lower() == ".json" or stripped.startswith("{"):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: invalid JSON: {exc.msg} at line {exc.lineno}") from None
        if not isinstance(data, dict) or not isinstance(data.get("text", ""), str) \
                or not isinstance(data.get("title", ""), str) or not isinstance(data.get("url", ""), str):
            raise InputError(f'{path}: expected a JSON object {{"title", "text", "url"}} of strings')
        title, text, url = data.get("title", ""), data.get("text", ""), data.get("url", "")
    elif path.suffix.lower() in (".html", ".htm") or stripped[:200].lower().startswith(("<!doctype html", "<html")):
        import trafilatura

        text = trafilatura.extract(raw, include_comments=False) or ""
        meta = trafilatura.extract_metadata(raw)
        title = (meta.title if meta is not None else "") or ""
        url = (meta.url if meta is not None else "") or ""
    else:
        lines = raw.strip().splitlines()
        title = lines[0].strip() if lines else ""
        text = "\n".join(lines[1:]).strip()
        url = ""
    if not (title.strip() or text.strip()):
        raise InputError(f"{path}: no title or text found")
    return title, text, url or f"file://{path.resolve()}"


def dry_run(topic: WatchTopic, title: str, text: str, url: str, tags: TagResult, *, sender: str,
            now: datetime | None = None) -> DryRun:
    """What the alert stage would do with this article for ``topic`` (never sends)."""
    hit = next((h for h in tags.topics if h.id == topic.id), None)
    if hit is None:
        return DryRun(topic.id, False)
    now = now or datetime.now(timezone.utc)
    doc = ids.doc_id(url)
    article = Article(id=doc, url=url, title=title, text=text, fetched_at=now.isoformat(timespec="seconds"))
    rec = AlertRecord(
        id=ids.alert_id(topic.id, doc), topic=topic.id, story_id=doc, doc_id=doc, url=url, title=title,
        source="(dry run)", published=None, created_at=now.isoformat(timespec="seconds"), reasons=list(hit.reasons),
        snippet=make_snippet(article, hit.reasons[0] if hit.reasons else None),
    )
    rendered = render_alert(rec, topic.name or topic.id)
    route = route_for(topic)
    delivery = [f"email now to {a}" for a in route.immediate_emails]
    delivery += [f"email in the {r.mode} digest of {r.address}" for r in route.digest_emails]
    if route.slack:
        delivery.append("slack now" if route.mode == "immediate" else f"slack in the {route.mode} digest")
    recipients = route.immediate_emails + [r.address for r in route.digest_emails]
    return DryRun(topic.id, True, rec, build_email(rendered, sender, recipients or ["undisclosed-recipients:;"]),
                  rendered.slack if route.slack else None, delivery or ["nobody: the topic has no email and slack: false"])
