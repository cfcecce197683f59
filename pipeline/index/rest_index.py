"""``SearchIndex`` over an Elasticsearch-style REST API: everything the Elasticsearch and
OpenSearch adapters share.

:class:`RestSearchIndex` implements the whole contract (create-if-absent bulk writes,
per-item outcomes, search, export, retention) on top of one seam, :meth:`RestSearchIndex._send`
(one HTTP request through the engine's own client, its exceptions translated) and
:meth:`RestSearchIndex._connect` (check the server once, before the first request). The
adapters (:mod:`.elasticsearch`, :mod:`.opensearch`) implement only those two.

* Layout and mappings: :mod:`pipeline.index.es_mapping` (monthly indices behind the read
  alias ``<prefix>-articles``); request bodies: :mod:`pipeline.index.es_query`.
* Writes are raw ``_bulk`` ``create`` actions with ``_id`` = document id into the index of
  the document's own month: 201 = created, 409 = already there (``existing``). Since a
  document's date is part of the document, a replay routes to the same month and the 409
  holds; to also cover a re-fetch whose date changed, ids already present in *any* month are
  looked up first and skipped.
* Per bulk item: 429 / 5xx are retried with backoff (``bulk_retries`` times) and then raise
  :class:`TransientIndexError` (the worker retries the batch; created items come back as
  409); any other 4xx (a mapping error: 400) is returned in ``failed`` for the caller to
  dead-letter. Nothing is dropped silently.
* Whole requests: connection refused, timeouts, 408/429/5xx -> TransientIndexError; 401/403
  -> ConfigError (credentials); other 4xx -> PermanentIndexError.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError, PermanentIndexError, PipelineError, TransientIndexError
from .base import CountBy, EntityTerm, IndexReport, SearchHit
from .es_mapping import alerts_template, articles_template, month_of, shape_document, unshape_document
from .es_query import (
    EXPORT_PAGE,
    counts_body,
    counts_from,
    export_body,
    filters,
    hits_from_response,
    ids_body,
    search_body,
)

__all__ = ["RETRY_STATUSES", "RestSearchIndex", "error_for_status", "error_reason", "public_url"]

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_ANY_INDEX = {"ignore_unavailable": "true", "allow_no_indices": "true"}
BulkItem = tuple[str, str, dict[str, Any]]  # (index, id, source)


def public_url(url: str) -> str:
    """``url`` without credentials, path or query: what log lines and errors may show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


def error_reason(body: Any) -> str:
    """``type: reason (cause)`` from an error body or a bulk item, one line."""
    if not isinstance(body, dict):
        return ""
    err = body.get("error", body)
    if isinstance(err, dict):
        kind = err.get("type", "")
        reason = err.get("reason", "")
        cause = err.get("caused_by") or {}
        extra = f" ({cause.get('type')}: {cause.get('reason')})" if isinstance(cause, dict) and cause else ""
        return " ".join(f"{kind}: {reason}{extra}".split()).strip(": ")
    return str(err)


def error_for_status(status: int, what: str, credentials: str) -> PipelineError:
    """Our error for an HTTP error answer to a whole request. ``credentials`` names the
    variables to check when the server refuses them (401/403)."""
    if status in RETRY_STATUSES:
        return TransientIndexError(what)
    if status in (401, 403):
        return ConfigError(f"environment variable {credentials}: {what}")
    return PermanentIndexError(what)


class RestSearchIndex:
    """The shared half of the Elasticsearch and OpenSearch adapters. Connects lazily:
    construction never touches the network."""

    #: the engine's name in log lines
    engine = "search"

    def __init__(self, *, where: str, index_prefix: str, bulk_retries: int = 3, retry_backoff: float = 0.5) -> None:
        self.where = where
        self.prefix = index_prefix
        self.read_alias = f"{index_prefix}-articles"
        self.alerts_index = f"{index_prefix}-alerts"
        self.bulk_retries = bulk_retries
        self.retry_backoff = retry_backoff
        self._ready = False
        self._dirty = False
        #: how the bulk retry waits (tests replace it to act between attempts)
        self.sleep: Callable[[float], None] = time.sleep

    # -- the seam ------------------------------------------------------------------------

    def _send(self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
              ndjson: bool = False) -> Any:
        """One request through the engine's client; the parsed answer. ``ndjson``: ``body`` is a
        list of bulk lines. Raises TransientIndexError / PermanentIndexError / ConfigError."""
        raise NotImplementedError

    def _connect(self) -> str:
        """Check the server (version, distribution) before the first request; returns its version.
        Raises ConfigError for a server this adapter cannot use."""
        raise NotImplementedError

    def _close_client(self) -> None:
        raise NotImplementedError

    # -- plumbing ------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
                 ndjson: bool = False) -> Any:
        """One request after the server was checked and the templates installed."""
        self._ensure_ready()
        return self._send(method, path, body=body, params=params, ndjson=ndjson)

    def _ensure_ready(self) -> None:
        """Check the server and install the index templates, once."""
        if self._ready:
            return
        version = self._connect()
        for name, template in ((self.read_alias, articles_template(self.prefix)),
                               (self.alerts_index, alerts_template(self.prefix))):
            self._send("PUT", f"/_index_template/{name}", body=template)
        self._ready = True
        log.info("%s: %s runs %s; templates %s, %s installed", self.engine, self.where, version, self.read_alias,
                 self.alerts_index)

    def _refresh_if_dirty(self) -> None:
        if self._dirty:
            self._request("POST", f"/{self.read_alias}-*,{self.alerts_index}/_refresh", params=_ANY_INDEX)
            self._dirty = False

    def _search(self, body: dict[str, Any], indices: str | None = None) -> dict[str, Any]:
        resp = self._request("POST", f"/{indices or self.read_alias + '-*'}/_search", body=body, params=_ANY_INDEX)
        return resp if isinstance(resp, dict) else {}

    # -- writes --------------------------------------------------------------------------

    def _existing_ids(self, ids: list[str]) -> set[str]:
        return {h["_id"] for h in self._search(ids_body(ids)).get("hits", {}).get("hits", [])}

    def _bulk_create(self, items: list[BulkItem]) -> IndexReport:
        """``create`` every item; retries 429/5xx items; other refusals -> ``failed``."""
        report = IndexReport()
        pending = items
        for attempt in range(self.bulk_retries + 1):
            body: list[dict[str, Any]] = []
            for index, doc_id, source in pending:
                body.append({"create": {"_index": index, "_id": doc_id}})
                body.append(source)
            resp = self._request("POST", "/_bulk", body=body, ndjson=True)
            self._dirty = True
            retry: list[BulkItem] = []
            for item, sent in zip(resp.get("items", []), pending, strict=True):
                result = item.get("create") or next(iter(item.values()))
                status = int(result.get("status", 0))
                if status in (200, 201):
                    report.created += 1
                elif status == 409:
                    report.existing += 1
                elif status in RETRY_STATUSES:
                    retry.append(sent)
                else:
                    reason = error_reason(result) or f"HTTP {status}"
                    log.warning("%s: %s: doc %s in %s rejected: %s", self.engine, self.where, sent[1], sent[0], reason)
                    report.failed.append((sent[1], f"HTTP {status}: {reason}"))
            if not retry:
                return report
            pending = retry
            if attempt < self.bulk_retries:
                pause = self.retry_backoff * (2 ** attempt)
                log.warning("%s: %s: %d items refused (429/5xx), retrying in %.1fs", self.engine, self.where,
                            len(retry), pause)
                self.sleep(pause)
        raise TransientIndexError(f"{self.where}: {len(pending)} documents still refused after "
                                  f"{self.bulk_retries} retries (first id {pending[0][1]})")

    def index_documents(self, docs: Sequence[dict[str, Any]]) -> IndexReport:
        report = IndexReport()
        items: list[BulkItem] = []
        seen: set[str] = set()
        for doc in docs:
            doc_id = doc.get("id")
            if not doc_id or not doc.get("url"):
                report.failed.append((str(doc_id or ""), "document has no id or url"))
                continue
            if doc_id in seen:
                report.existing += 1
                continue
            seen.add(doc_id)
            items.append((f"{self.read_alias}-{month_of(doc)}", str(doc_id), shape_document(doc)))
        if not items:
            return report
        present = self._existing_ids([i[1] for i in items])
        report.existing += len(present)
        todo = [i for i in items if i[1] not in present]
        if todo:
            report = report.merge(self._bulk_create(todo))
        log.info("%s: %s: bulk of %d docs: %d created, %d existing, %d failed", self.engine, self.where, len(docs),
                 report.created, report.existing, len(report.failed))
        return report

    def index_alerts(self, alerts: Sequence[dict[str, Any]]) -> IndexReport:
        items = [(self.alerts_index, str(a["id"]), dict(a)) for a in alerts if a.get("id")]
        report = self._bulk_create(items) if items else IndexReport()
        report.failed.extend(("", "alert record has no id") for a in alerts if not a.get("id"))
        return report

    # -- reads ---------------------------------------------------------------------------

    def search(self, query: str, *, topic: str | None = None, entity: str | None = None, source: str | None = None,
               since: str | None = None, until: str | None = None, limit: int = 20, offset: int = 0,
               highlight: tuple[str, str] = ("[", "]"), entity_terms: Sequence[EntityTerm] = ()) -> list[SearchHit]:
        self._refresh_if_dirty()
        body = search_body(query, entity_terms=entity_terms, topic=topic, entity=entity, source=source, since=since,
                           until=until, limit=limit, offset=offset, highlight=highlight)
        return hits_from_response(self._search(body))

    def counts(self, by: CountBy, *, topic: str | None = None, entity: str | None = None, source: str | None = None,
               since: str | None = None, until: str | None = None, limit: int = 1000) -> list[tuple[str, int]]:
        self._refresh_if_dirty()
        body = counts_body(by, filters(topic=topic, entity=entity, source=source, since=since, until=until), limit)
        return counts_from(by, self._search(body), limit)

    def get(self, doc_id: str) -> dict[str, Any] | None:
        self._refresh_if_dirty()
        hits = self._search(ids_body([doc_id], source=True)).get("hits", {}).get("hits", [])
        return unshape_document(hits[0]["_source"]) if hits else None

    def export(self) -> Iterator[dict[str, Any]]:
        """Every document, by ``enriched_at`` then id, page by page."""
        self._refresh_if_dirty()
        after: list[Any] | None = None
        while True:
            hits = self._search(export_body(after)).get("hits", {}).get("hits", [])
            for h in hits:
                yield unshape_document(h["_source"])
            if len(hits) < EXPORT_PAGE:
                return
            after = hits[-1]["sort"]

    def count(self) -> int:
        self._refresh_if_dirty()
        resp = self._request("GET", f"/{self.read_alias}-*/_count", params=_ANY_INDEX)
        return int(resp.get("count", 0))

    def alerts(self) -> list[dict[str, Any]]:
        self._refresh_if_dirty()
        body = {"size": 10000, "sort": [{"created_at": "asc"}, {"id": "asc"}]}
        return [h["_source"] for h in self._search(body, self.alerts_index).get("hits", {}).get("hits", [])]

    def delete_older_than(self, cutoff: str) -> int:
        """Delete whole monthly indices before ``cutoff``'s month, then older docs in that month."""
        self._refresh_if_dirty()  # _cat/indices counts only refreshed documents
        cutoff_month = month_of({"published": cutoff})
        rows = self._request("GET", f"/_cat/indices/{self.read_alias}-*", params={"format": "json",
                                                                                  "h": "index,docs.count"})
        deleted = 0
        for row in rows or []:
            name = row.get("index", "")
            month = name.rsplit("-", 1)[-1]
            if month < cutoff_month:
                deleted += int(row.get("docs.count") or 0)
                self._request("DELETE", f"/{name}")
                log.info("%s: %s: retention dropped index %s", self.engine, self.where, name)
        resp = self._request("POST", f"/{self.read_alias}-{cutoff_month}/_delete_by_query",
                             body={"query": {"range": {"date": {"lt": cutoff}}}},
                             params={**_ANY_INDEX, "refresh": "true"})
        return deleted + int(resp.get("deleted", 0))

    def close(self) -> None:
        """Make what this instance wrote visible to searches (a refresh, instead of waiting up to the
        index's refresh interval), then close the client."""
        try:
            self._refresh_if_dirty()
        except PipelineError as exc:
            log.warning("%s: %s: refresh before close failed: %s", self.engine, self.where, exc)
        finally:
            self._close_client()

    def drop_everything(self) -> None:
        """Delete this prefix's indices and templates (tests and benchmarks clean up with it)."""
        rows = self._request("GET", f"/_cat/indices/{self.prefix}-*", params={"format": "json", "h": "index"})
        for row in rows or []:
            self._request("DELETE", f"/{row['index']}")
        for name in (self.read_alias, self.alerts_index):
            self._send("DELETE", f"/_index_template/{name}")
