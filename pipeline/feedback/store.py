"""Analysts' judgements of the tagger: the feedback store and the functions that record them.

A judgement says, for one document and one watch topic, what the right answer was:

* ``false-hit``: the topic fired and should not have (given an alert id or a document id);
  a labelled negative;
* ``confirmed``: the topic fired and was right to (given an alert id or a document id);
  a labelled positive;
* ``missed``: the topic should have fired and did not (given a document id or its URL);
  a labelled positive.

Each judgement keeps the document's title and text as indexed when it was recorded, so the
judgements form a labelled set on their own (``eval-tags`` scores them, see
:func:`feedback_docs`) even after the index has dropped the document. The store is one
SQLite file in the data directory (``feedback.sqlite3``); :meth:`FeedbackStore.export`
yields every judgement as a plain dict (the ``feedback export`` JSON lines).

A document and topic carry at most ONE judgement, the analyst's latest: recording a
judgement replaces any earlier one of the same document and topic, whatever its kind
("confirmed" after "false-hit" turns the label over; the note and time are the new ones).
Recording exactly the same judgement again (same kind and note) changes nothing, not even its
time, so a repeated click or a retried request is harmless.

The functions take the index and an alert lookup as arguments, so the CLI and a web page
share them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ..errors import InputError
from ..ids import doc_id as doc_id_of_url
from ..index.base import SearchIndex
from ..models import AlertRecord

__all__ = ["Judgement", "FeedbackStore", "record_false_hit", "record_confirmed", "record_missed", "KINDS",
           "POSITIVE_KINDS"]

KINDS = ("false-hit", "confirmed", "missed")
Kind = Literal["false-hit", "confirmed", "missed"]
#: the kinds that say the topic is right for the document (a labelled positive); the others are negatives
POSITIVE_KINDS = frozenset({"confirmed", "missed"})

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
# One judgement per (document, topic): stores written before the rule keep their latest one.
_ONE_PER_DOC_TOPIC = """
DELETE FROM judgements WHERE EXISTS (
    SELECT 1 FROM judgements j WHERE j.doc_id = judgements.doc_id AND j.topic = judgements.topic
    AND (j.created_at > judgements.created_at OR (j.created_at = judgements.created_at AND j.rowid > judgements.rowid)));
CREATE UNIQUE INDEX IF NOT EXISTS judgements_doc_topic ON judgements (doc_id, topic);
"""
_COLUMNS = "kind, doc_id, topic, url, alert_id, note, title, text, fired, created_at"


@dataclass
class Judgement:
    kind: str  # one of KINDS
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
        return self.kind in POSITIVE_KINDS

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Judgement:
        return cls(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], json.loads(row[8]), row[9])


class FeedbackStore:
    """The judgements in ``<data_dir>/feedback.sqlite3``. Thread-safe."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        if not self._conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'judgements_doc_topic'").fetchone():
            self._conn.executescript(f"BEGIN; {_ONE_PER_DOC_TOPIC} COMMIT;")

    def add(self, j: Judgement) -> Judgement:
        """Record ``j`` as THE judgement of its document and topic (see the module docstring) and
        return what is stored: ``j``, or the earlier judgement when ``j`` repeats it (same kind and note)."""
        if j.kind not in KINDS:
            raise InputError(f"feedback: unknown kind {j.kind!r} (use {', '.join(KINDS)})")
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM judgements WHERE doc_id = ? AND topic = ?",
                                     (j.doc_id, j.topic)).fetchone()
            if row is not None and (row[0], row[5]) == (j.kind, j.note):
                return Judgement.from_row(row)
            j.created_at = j.created_at or datetime.now(UTC).isoformat(timespec="seconds")
            self._conn.execute(  # REPLACE drops the earlier judgement of the document and topic (unique index)
                f"INSERT OR REPLACE INTO judgements ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (j.kind, j.doc_id, j.topic, j.url, j.alert_id, j.note, j.title, j.text,
                 json.dumps(j.fired or []), j.created_at))
        return j

    def get(self, doc_id: str, topic: str) -> Judgement | None:
        """The judgement of ``doc_id`` for ``topic``, if any."""
        found = self.of_documents([(doc_id, topic)])
        return found.get((doc_id, topic))

    def of_documents(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Judgement]:
        """The judgements of these (document id, topic) pairs, by pair (pairs without one are left out)."""
        wanted = set(keys)
        doc_ids = sorted({d for d, _ in wanted})
        out: dict[tuple[str, str], Judgement] = {}
        for start in range(0, len(doc_ids), 500):  # SQLite caps the number of parameters
            chunk = doc_ids[start:start + 500]
            with self._lock:
                rows = self._conn.execute(f"SELECT {_COLUMNS} FROM judgements WHERE doc_id IN "
                                          f"({','.join('?' * len(chunk))})", chunk).fetchall()
            for row in rows:
                if (row[1], row[2]) in wanted:
                    out[(row[1], row[2])] = Judgement.from_row(row)
        return out

    def all(self) -> list[Judgement]:
        with self._lock:
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM judgements ORDER BY created_at, doc_id, topic").fetchall()
        return [Judgement.from_row(r) for r in rows]

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


def _record_fired(kind: Kind, store: FeedbackStore, index: SearchIndex, target: str, topic: str | None, note: str,
                  get_alert: Callable[[str], AlertRecord | None] | None) -> Judgement:
    alert = get_alert(target) if get_alert is not None else None
    if alert is not None:
        if topic is not None and topic != alert.topic:
            raise InputError(f"feedback: alert {target} is about topic {alert.topic}, not {topic}")
        doc = _document(index, alert.doc_id, f"alert {target}")
        return store.add(_judgement(kind, doc, alert.topic, note, alert.id))
    doc = _document(index, target, kind)
    fired = list(doc.get("topics") or [])
    if topic is None:
        if len(fired) != 1:
            raise InputError(f"feedback: document {target} fired {', '.join(fired) or 'no topic'}: say which with "
                             "--topic")
        topic = fired[0]
    elif topic not in fired:
        raise InputError(f"feedback: document {target} did not fire {topic} (it fired "
                         f"{', '.join(fired) or 'no topic'}); a topic that should have fired is 'feedback missed'")
    return store.add(_judgement(kind, doc, topic, note, None))


def record_false_hit(store: FeedbackStore, index: SearchIndex, target: str, *, topic: str | None = None,
                     note: str = "", get_alert: Callable[[str], AlertRecord | None] | None = None) -> Judgement:
    """A topic fired on a document and should not have. ``target`` is an alert id (its document
    and topic are taken from the alert) or a document id (``topic`` defaults to the one topic the
    document fired; with several, ``topic`` must say which)."""
    return _record_fired("false-hit", store, index, target, topic, note, get_alert)


def record_confirmed(store: FeedbackStore, index: SearchIndex, target: str, *, topic: str | None = None,
                     note: str = "", get_alert: Callable[[str], AlertRecord | None] | None = None) -> Judgement:
    """A topic fired on a document and was right to: the alert is confirmed. ``target`` and
    ``topic`` as for :func:`record_false_hit`."""
    return _record_fired("confirmed", store, index, target, topic, note, get_alert)


def record_missed(store: FeedbackStore, index: SearchIndex, target: str, *, topic: str, note: str = "") -> Judgement:
    """``topic`` should have fired on the document ``target`` (a document id or the article's URL)."""
    doc_id = doc_id_of_url(target) if target.startswith(("http://", "https://")) else target
    doc = _document(index, doc_id, f"missed {target}")
    return store.add(_judgement("missed", doc, topic, note, None))
