"""Analysts' judgements of the tagger: the feedback store and the functions that record them.

A judgement says, for one document and one watch topic, what the right answer was:

* ``false-hit``: the topic fired and should not have (given an alert id or a document id);
* ``missed``: the topic should have fired and did not (given a document id or its URL).

Each judgement keeps the document's title and text as indexed when it was recorded, so the
judgements form a labelled set on their own (``eval-tags`` scores them, see
:func:`feedback_docs`) even after the index has dropped the document. The store is one
SQLite file in the data directory (``feedback.sqlite3``); :meth:`FeedbackStore.export`
yields every judgement as a plain dict (the ``feedback export`` JSON lines). Recording the
same judgement twice (same kind, document and topic) keeps one row, updating its note.

The functions take the index and an alert lookup as arguments, so the CLI and a web page
share them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ..errors import InputError
from ..ids import doc_id as doc_id_of_url
from ..index.base import SearchIndex
from ..models import AlertRecord

__all__ = ["Judgement", "FeedbackStore", "record_false_hit", "record_missed", "KINDS"]

KINDS = ("false-hit", "missed")
Kind = Literal["false-hit", "missed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS judgements (
    kind TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    url TEXT NOT NULL DEFAULT '',
    alert_id TEXT,
    note TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL DEFAULT '',
    fired TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    PRIMARY KEY (kind, doc_id, topic)
);
"""


@dataclass
class Judgement:
    kind: str  # "false-hit" or "missed"
    doc_id: str
    topic: str
    url: str = ""
    alert_id: str | None = None
    note: str = ""
    title: str = ""
    text: str = ""
    fired: list[str] | None = None  # topics the document fired when it was indexed
    created_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def gold(self) -> bool:
        """Whether ``topic`` is right for the document."""
        return self.kind == "missed"


class FeedbackStore:
    """The judgements in ``<data_dir>/feedback.sqlite3``. Thread-safe."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)

    def add(self, j: Judgement) -> Judgement:
        """Record ``j`` (replacing an earlier judgement of the same kind, document and topic)."""
        if j.kind not in KINDS:
            raise InputError(f"feedback: unknown kind {j.kind!r} (use {' or '.join(KINDS)})")
        j.created_at = j.created_at or datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO judgements VALUES (?,?,?,?,?,?,?,?,?,?)",
                (j.kind, j.doc_id, j.topic, j.url, j.alert_id, j.note, j.title, j.text,
                 json.dumps(j.fired or []), j.created_at))
        return j

    def all(self) -> list[Judgement]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT kind, doc_id, topic, url, alert_id, note, title, text, fired, created_at FROM judgements "
                "ORDER BY created_at, doc_id, topic").fetchall()
        return [Judgement(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8]), r[9]) for r in rows]

    def export(self) -> Iterator[dict[str, Any]]:
        for j in self.all():
            yield j.to_dict()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _document(index: SearchIndex, doc_id: str, what: str) -> dict[str, Any]:
    doc = index.get(doc_id)
    if doc is None:
        raise InputError(f"feedback: {what}: no indexed document with id {doc_id}")
    return doc


def _judgement(kind: Kind, doc: dict[str, Any], topic: str, note: str, alert_id: str | None) -> Judgement:
    return Judgement(kind=kind, doc_id=str(doc["id"]), topic=topic, url=str(doc.get("url") or ""), alert_id=alert_id,
                     note=note, title=str(doc.get("title") or ""), text=str(doc.get("text") or ""),
                     fired=list(doc.get("topics") or []))


def record_false_hit(store: FeedbackStore, index: SearchIndex, target: str, *, topic: str | None = None,
                     note: str = "", get_alert: Callable[[str], AlertRecord | None] | None = None) -> Judgement:
    """A topic fired on a document and should not have. ``target`` is an alert id (its document
    and topic are taken from the alert) or a document id (``topic`` defaults to the one topic the
    document fired; with several, ``topic`` must say which)."""
    alert = get_alert(target) if get_alert is not None else None
    if alert is not None:
        if topic is not None and topic != alert.topic:
            raise InputError(f"feedback: alert {target} is about topic {alert.topic}, not {topic}")
        doc = _document(index, alert.doc_id, f"alert {target}")
        return store.add(_judgement("false-hit", doc, alert.topic, note, alert.id))
    doc = _document(index, target, "false-hit")
    fired = list(doc.get("topics") or [])
    if topic is None:
        if len(fired) != 1:
            raise InputError(f"feedback: document {target} fired {', '.join(fired) or 'no topic'}: say which with "
                             "--topic")
        topic = fired[0]
    elif topic not in fired:
        raise InputError(f"feedback: document {target} did not fire {topic} (it fired "
                         f"{', '.join(fired) or 'no topic'}); a topic that should have fired is 'feedback missed'")
    return store.add(_judgement("false-hit", doc, topic, note, None))


def record_missed(store: FeedbackStore, index: SearchIndex, target: str, *, topic: str, note: str = "") -> Judgement:
    """``topic`` should have fired on the document ``target`` (a document id or the article's URL)."""
    doc_id = doc_id_of_url(target) if target.startswith(("http://", "https://")) else target
    doc = _document(index, doc_id, f"missed {target}")
    return store.add(_judgement("missed", doc, topic, note, None))
