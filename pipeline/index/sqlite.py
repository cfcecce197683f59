"""The embedded search index: SQLite with an FTS5 full-text table ranked by BM25."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import TransientIndexError
from .base import COUNT_BY, CountBy, EntityTerm, IndexReport, SearchHit, hit_entities

__all__ = ["SQLiteIndex", "fts_query"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    published TEXT,
    date TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS docs_date ON docs(date);
CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5(
    title, text, content='docs', content_rowid='seq', tokenize='unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS doc_topics (doc_id TEXT NOT NULL, topic TEXT NOT NULL, PRIMARY KEY (topic, doc_id));
CREATE TABLE IF NOT EXISTS doc_entities (doc_id TEXT NOT NULL, entity TEXT NOT NULL, PRIMARY KEY (entity, doc_id));
CREATE TABLE IF NOT EXISTS alerts (id TEXT PRIMARY KEY, topic TEXT, created_at TEXT, record TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS docs_ad AFTER DELETE ON docs BEGIN
    INSERT INTO docs_fts(docs_fts, rowid, title, text) VALUES ('delete', old.seq, old.title, old.text);
    DELETE FROM doc_topics WHERE doc_id = old.id;
    DELETE FROM doc_entities WHERE doc_id = old.id;
END;
"""

_TOKEN = re.compile(r'"([^"]*)"|(\S+)')


def fts_query(query: str) -> str:
    """Turn a user query into a safe FTS5 expression.

    Words and "quoted phrases" are ANDed; ``OR`` between terms is kept; a leading ``-``
    excludes a term. Every term is quoted, so no user input is FTS5 syntax.
    """
    parts: list[str] = []
    pending_not = False
    for m in _TOKEN.finditer(query):
        phrase, word = m.group(1), m.group(2)
        if word == "OR" and parts and parts[-1] not in ("OR",):
            parts.append("OR")
            continue
        negate = False
        term = phrase if phrase is not None else word
        if word is not None and word.startswith("-") and len(word) > 1:
            negate, term = True, word[1:]
        term = re.sub(r"[^\w\s'’-]", " ", term, flags=re.UNICODE).strip()
        tokens = [t for t in re.split(r"[\s'’-]+", term) if t]
        if not tokens:
            continue
        quoted = '"' + " ".join(tokens) + '"'
        if negate:
            pending_not = True
            parts.append(f"NOT {quoted}")
            continue
        parts.append(quoted)
    while parts and parts[-1] == "OR":
        parts.pop()
    # FTS5 needs a positive term before NOT
    positives = [p for p in parts if not p.startswith("NOT ") and p != "OR"]
    if pending_not and not positives:
        return ""
    expr = " ".join(p for p in parts if not p.startswith("NOT "))
    nots = " ".join(p for p in parts if p.startswith("NOT "))
    return f"({expr}) {nots}".strip() if nots else expr


def _tagged_expr(term: EntityTerm) -> tuple[str, list[Any]]:
    """SQL 0/1: the document is tagged with one of the term's entities or fired one of its topics."""
    parts = [f"d.id IN (SELECT doc_id FROM doc_entities WHERE entity IN ({','.join('?' * len(term.ids))}))"]
    params: list[Any] = list(term.ids)
    if term.topics:
        parts.append(f"d.id IN (SELECT doc_id FROM doc_topics WHERE topic IN ({','.join('?' * len(term.topics))}))")
        params += list(term.topics)
    return "(" + " OR ".join(parts) + ")", params


def _spellings_query(term: EntityTerm) -> str:
    """An FTS5 expression matching any spelling of the term as a phrase."""
    phrases = [fts_query(f'"{s}"') for s in dict.fromkeys((term.text, *term.spellings)) if s.strip()]
    return " OR ".join(p for p in phrases if p)


class SQLiteIndex:
    """``SearchIndex`` on SQLite FTS5. Thread-safe; one writer at a time across processes."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise TransientIndexError(f"cannot open index {self.path}: {exc}") from None

    @contextmanager
    def _write(self, what: str) -> Iterator[None]:
        """One write transaction under the lock; any SQLite error rolls back and becomes TransientIndexError."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                yield
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise TransientIndexError(f"{what} failed: {exc}") from None
            except BaseException:
                self._rollback()  # never leave the shared connection inside an open transaction
                raise

    def _rollback(self) -> None:
        try:
            self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def index_documents(self, docs: Sequence[dict[str, Any]]) -> IndexReport:
        report = IndexReport()
        if not docs:
            return report
        with self._write("index write"):
            for doc in docs:
                doc_id = doc.get("id")
                if not doc_id or not doc.get("url"):
                    report.failed.append((str(doc_id or ""), "document has no id or url"))
                    continue
                cur = self._conn.execute(
                    "INSERT INTO docs(id, url, title, text, source, published, date, doc) VALUES (?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(id) DO NOTHING",
                    (
                        doc_id,
                        doc["url"],
                        doc.get("title") or "",
                        doc.get("text") or "",
                        doc.get("source") or "",
                        doc.get("published"),
                        (doc.get("published") or doc.get("fetched_at") or "")[:25] or None,
                        json.dumps(doc, ensure_ascii=False),
                    ),
                )
                if cur.rowcount == 0:
                    report.existing += 1
                    continue
                seq = cur.lastrowid
                self._conn.execute(
                    "INSERT INTO docs_fts(rowid, title, text) VALUES (?,?,?)",
                    (seq, doc.get("title") or "", doc.get("text") or ""),
                )
                self._conn.executemany(
                    "INSERT OR IGNORE INTO doc_topics(doc_id, topic) VALUES (?,?)",
                    [(doc_id, t) for t in doc.get("topics") or []],
                )
                self._conn.executemany(
                    "INSERT OR IGNORE INTO doc_entities(doc_id, entity) VALUES (?,?)",
                    [(doc_id, e["id"]) for e in doc.get("entities") or [] if e.get("id")],
                )
                report.created += 1
        return report

    def index_alerts(self, alerts: Sequence[dict[str, Any]]) -> IndexReport:
        report = IndexReport()
        with self._write("alert index write"):
            for a in alerts:
                cur = self._conn.execute(
                    "INSERT INTO alerts(id, topic, created_at, record) VALUES (?,?,?,?) ON CONFLICT(id) DO NOTHING",
                    (a["id"], a.get("topic"), a.get("created_at"), json.dumps(a, ensure_ascii=False)),
                )
                if cur.rowcount:
                    report.created += 1
                else:
                    report.existing += 1
        return report

    @staticmethod
    def _filters(topic: str | None, entity: str | None, source: str | None, since: str | None,
                 until: str | None) -> tuple[list[str], list[Any]]:
        """SQL conditions on ``docs d`` for the contract's filters, and their parameters."""
        where: list[str] = []
        params: list[Any] = []
        if topic:
            where.append("d.id IN (SELECT doc_id FROM doc_topics WHERE topic=?)")
            params.append(topic)
        if entity:
            where.append("d.id IN (SELECT doc_id FROM doc_entities WHERE entity=?)")
            params.append(entity)
        if source:
            where.append("d.source = ?")
            params.append(source)
        if since:
            where.append("d.date >= ?")
            params.append(since)
        if until:
            where.append("d.date < ?")
            params.append(until)
        return where, params

    def _read(self, sql: str, params: Sequence[Any], what: str) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                raise TransientIndexError(f"{what} failed: {exc}") from None

    def search(
        self,
        query: str,
        *,
        topic: str | None = None,
        entity: str | None = None,
        source: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 20,
        offset: int = 0,
        highlight: tuple[str, str] = ("[", "]"),
        entity_terms: Sequence[EntityTerm] = (),
    ) -> list[SearchHit]:
        match = fts_query(query) if query.strip() else ""
        if query.strip() and not match:
            return []
        where, params = self._filters(topic, entity, source, since, until)
        if match:
            where.append("d.seq IN (SELECT rowid FROM docs_fts WHERE docs_fts MATCH ?)")
            params.append(match)
        tagged: list[str] = []  # one 0/1 expression per entity term: the document is tagged with it
        tagged_params: list[Any] = []
        for term in entity_terms:
            expr, term_params = _tagged_expr(term)
            tagged.append(expr)
            tagged_params += term_params
            spelled = _spellings_query(term)
            if spelled:
                where.append(f"({expr} OR d.seq IN (SELECT rowid FROM docs_fts WHERE docs_fts MATCH ?))")
                params += [*term_params, spelled]
            else:
                where.append(expr)
                params += term_params
        rank_expr = " OR ".join(p for p in [match and f"({match})", *(_spellings_query(t) for t in entity_terms)] if p)
        tagged_sum = " + ".join(tagged) or "0"
        if rank_expr:
            sql = (
                f"SELECT d.doc, COALESCE(m.rank, 0.0), COALESCE(m.snip, substr(d.text, 1, 200)), {tagged_sum} AS tags "
                "FROM docs d LEFT JOIN (SELECT rowid, bm25(docs_fts, 5.0, 1.0) AS rank, "
                "snippet(docs_fts, 1, ?, ?, ' … ', 16) AS snip FROM docs_fts WHERE docs_fts MATCH ?) m "
                "ON m.rowid = d.seq"
            )
            all_params = [*tagged_params, highlight[0], highlight[1], rank_expr, *params]
            order = " ORDER BY tags DESC, COALESCE(m.rank, 0.0), d.date DESC LIMIT ? OFFSET ?"
        else:
            sql = f"SELECT d.doc, 0.0, substr(d.text, 1, 200), {tagged_sum} AS tags FROM docs d"
            all_params = [*tagged_params, *params]
            order = " ORDER BY d.date DESC, d.seq DESC LIMIT ? OFFSET ?"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += order
        all_params += [limit, max(0, offset)]
        hits = []
        for doc_json, rank, snippet, tags in self._read(sql, all_params, "search"):
            doc = json.loads(doc_json)
            hits.append(
                SearchHit(
                    id=doc["id"],
                    url=doc["url"],
                    title=doc.get("title", ""),
                    score=round(10.0 * float(tags) - float(rank), 4),
                    source=doc.get("source", ""),
                    published=doc.get("published"),
                    snippet=" ".join((snippet or "").split()),
                    topics=list(doc.get("topics") or []),
                    entities=hit_entities(doc),
                )
            )
        return hits

    def counts(
        self,
        by: CountBy,
        *,
        topic: str | None = None,
        entity: str | None = None,
        source: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 1000,
    ) -> list[tuple[str, int]]:
        where, params = self._filters(topic, entity, source, since, until)
        if by == "entity":
            key, sql = "e.entity", "SELECT e.entity, COUNT(*) FROM doc_entities e JOIN docs d ON d.id = e.doc_id"
        elif by == "topic":
            key, sql = "t.topic", "SELECT t.topic, COUNT(*) FROM doc_topics t JOIN docs d ON d.id = t.doc_id"
        elif by == "source":
            key, sql = "d.source", "SELECT d.source, COUNT(*) FROM docs d"
            where.append("d.source != ''")
        elif by == "day":
            key, sql = "substr(d.date, 1, 10)", "SELECT substr(d.date, 1, 10), COUNT(*) FROM docs d"
            where.append("d.date IS NOT NULL")
        else:
            raise ValueError(f"counts: cannot count by {by!r} (one of {', '.join(COUNT_BY)})")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" GROUP BY {key} ORDER BY " + ("1 DESC" if by == "day" else "2 DESC, 1") + " LIMIT ?"
        rows = [(str(k), int(n)) for k, n in self._read(sql, [*params, limit], "counts")]
        return rows[::-1] if by == "day" else rows

    def get(self, doc_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT doc FROM docs WHERE id=?", (doc_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def export(self) -> Iterator[dict[str, Any]]:
        last = 0
        while True:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT seq, doc FROM docs WHERE seq > ? ORDER BY seq LIMIT 500", (last,)
                ).fetchall()
            if not rows:
                return
            for seq, doc in rows:
                last = seq
                yield json.loads(doc)

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM docs").fetchone()[0])

    def alerts(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute("SELECT record FROM alerts ORDER BY created_at, id").fetchall()
        return [json.loads(r[0]) for r in rows]

    def delete_older_than(self, cutoff: str) -> int:
        with self._lock:
            try:
                cur = self._conn.execute("DELETE FROM docs WHERE date IS NOT NULL AND date < ?", (cutoff,))
            except sqlite3.Error as exc:
                raise TransientIndexError(f"retention delete failed: {exc}") from None
            return cur.rowcount

    def close(self) -> None:
        with self._lock:
            self._conn.close()
