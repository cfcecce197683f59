"""The distributed search index: Elasticsearch 8 or 9 through the official client.

* Versions: the v9 client marks every request ``compatible-with=9``, which an ES 8 server
  refuses. On first use we ask ``GET /`` as ``compatible-with=8`` (which ES 8 and ES 9 both
  accept), read the server's major version and from then on send
  ``application/vnd.elasticsearch+json; compatible-with=<major>`` ourselves through
  ``perform_request``.
* Layout and mappings: see :mod:`pipeline.index.es_mapping` (monthly indices behind the
  read alias ``<prefix>-articles``, ``geo_point`` locations, ``dynamic: false``).
* Writes are raw ``_bulk`` ``create`` actions with ``_id`` = document id into the index of
  the document's own month: 201 = created, 409 = already there (``existing``). Since a
  document's date is part of the document, a replay routes to the same month and the
  409 holds; to also cover a re-fetch whose date changed, ids already present in *any*
  month are looked up first and skipped. Per item: 429 / 5xx are retried with backoff
  (``bulk_retries`` times) and then raise :class:`TransientIndexError` (the worker retries
  the batch; created items come back as 409); any other 4xx (mapping errors) is returned
  in ``failed`` for the caller to dead-letter. Nothing is dropped silently.
* Connection refused, timeouts, 429/5xx on the whole request -> TransientIndexError.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from elastic_transport import ConnectionError as ESConnectionError
from elastic_transport import ConnectionTimeout, TransportError
from elasticsearch import ApiError, Elasticsearch

from ..config import ElasticsearchSettings
from ..errors import ConfigError, PermanentIndexError, TransientIndexError
from . import es_query
from .base import CountBy, EntityTerm, IndexReport, SearchHit, hit_entities
from .es_mapping import alerts_template, articles_template, month_of, shape_document, unshape_document
from .es_query import build_search_body

__all__ = ["ElasticsearchIndex", "build_search_body", "public_url"]

log = logging.getLogger(__name__)

_RETRY_ITEM = {429, 500, 502, 503, 504}


def public_url(url: str) -> str:
    """``url`` without credentials, for log lines."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


class ElasticsearchIndex:
    """``SearchIndex`` on Elasticsearch. Connects lazily: construction never touches the network."""

    def __init__(self, settings: ElasticsearchSettings, *, bulk_retries: int = 3, retry_backoff: float = 0.5,
                 client: Elasticsearch | None = None) -> None:
        if settings.url is None and client is None:
            raise ConfigError("environment variable ELASTICSEARCH_URL: elasticsearch.url: required when "
                              "index is elasticsearch")
        self.settings = settings
        self.prefix = settings.index_prefix
        self.read_alias = f"{self.prefix}-articles"
        self.alerts_index = f"{self.prefix}-alerts"
        self.bulk_retries = bulk_retries
        self.retry_backoff = retry_backoff
        self.server_major: int | None = None
        self._headers: dict[str, str] = {}
        self._dirty = False
        url = settings.url.get_secret_value() if settings.url else ""
        self.where = public_url(url) if url else "elasticsearch"
        if client is None:
            client = Elasticsearch(
                url,
                api_key=settings.api_key.get_secret_value() if settings.api_key else None,
                verify_certs=settings.verify_certs,
                request_timeout=settings.request_timeout,
                max_retries=1,
                retry_on_timeout=False,
            )
        self._es = client

    # -- plumbing ------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None,
                 ndjson: bool = False, ok: tuple[int, ...] = ()) -> Any:
        """One HTTP request with our headers; returns the parsed body. Translates errors."""
        self._ensure_ready()
        return self._raw(method, path, body=body, params=params, ndjson=ndjson, ok=ok, headers=self._headers)

    def _raw(self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None,
             ndjson: bool = False, ok: tuple[int, ...] = (), headers: dict[str, str]) -> Any:
        if params:
            path = path + "?" + "&".join(f"{k}={v}" for k, v in params.items())
        hdrs = dict(headers)
        if body is not None:
            hdrs["content-type"] = hdrs["accept"].replace("+json", "+x-ndjson") if ndjson else hdrs["accept"]
        try:
            client = self._es.options(ignore_status=list(ok)) if ok else self._es
            resp = client.perform_request(method, path, headers=hdrs, body=body)
        except (ESConnectionError, ConnectionTimeout) as exc:
            raise TransientIndexError(f"{self.where}: {method} {path.split('?')[0]}: {type(exc).__name__}: "
                                      f"{exc.message}") from None
        except ApiError as exc:
            status = exc.meta.status
            reason = _error_reason(exc.body) or str(exc.message)
            what = f"{self.where}: {method} {path.split('?')[0]}: HTTP {status}: {reason}"
            if status in _RETRY_ITEM or status == 408:
                raise TransientIndexError(what) from None
            if status in (401, 403):
                raise ConfigError(f"environment variable ELASTICSEARCH_URL/ELASTICSEARCH_API_KEY: {what}") from None
            raise PermanentIndexError(what) from None
        except TransportError as exc:
            raise TransientIndexError(f"{self.where}: {method} {path.split('?')[0]}: {exc}") from None
        return resp.body

    def _ensure_ready(self) -> None:
        """Detect the server version, set compatibility headers, install templates (once)."""
        if self.server_major is not None:
            return
        info = None
        for major in (8, 9):
            accept = f"application/vnd.elasticsearch+json; compatible-with={major}"
            try:
                info = self._raw("GET", "/", headers={"accept": accept})
                break
            except PermanentIndexError as exc:  # 400/406: this server wants another version
                last = exc
        if info is None:
            raise PermanentIndexError(f"{self.where}: cannot agree on an API version: {last}")
        number = str((info.get("version") or {}).get("number", "0"))
        major = int(number.split(".")[0] or 0)
        if major not in (8, 9):
            raise ConfigError(f"environment variable ELASTICSEARCH_URL: {self.where} runs Elasticsearch {number}; "
                              "newswatch needs 8 or 9")
        headers = {"accept": f"application/vnd.elasticsearch+json; compatible-with={major}"}
        for name, template in ((self.read_alias, articles_template(self.prefix)),
                               (self.alerts_index, alerts_template(self.prefix))):
            self._raw("PUT", f"/_index_template/{name}", body=template, headers=headers)
        self._headers = headers
        self.server_major = major
        log.info("elasticsearch: %s runs %s; templates %s, %s installed", self.where, number, self.read_alias,
                 self.alerts_index)

    def _refresh_if_dirty(self) -> None:
        if self._dirty:
            self._request("POST", f"/{self.read_alias}-*,{self.alerts_index}/_refresh",
                          params={"ignore_unavailable": "true", "allow_no_indices": "true"})
            self._dirty = False

    # -- writes --------------------------------------------------------------------------

    def _existing_ids(self, ids: list[str]) -> set[str]:
        body = {"query": {"ids": {"values": ids}}, "_source": False, "size": len(ids)}
        resp = self._request("POST", f"/{self.read_alias}-*/_search", body=body,
                             params={"ignore_unavailable": "true", "allow_no_indices": "true"})
        return {h["_id"] for h in resp.get("hits", {}).get("hits", [])}

    def _bulk_create(self, items: list[tuple[str, str, dict[str, Any]]]) -> IndexReport:
        """``items`` = (index, id, source). Retries 429/5xx items; other errors -> failed."""
        report = IndexReport()
        pending = items
        for attempt in range(self.bulk_retries + 1):
            body: list[dict[str, Any]] = []
            for index, doc_id, source in pending:
                body.append({"create": {"_index": index, "_id": doc_id}})
                body.append(source)
            resp = self._request("POST", "/_bulk", body=body, ndjson=True)
            self._dirty = True
            retry: list[tuple[str, str, dict[str, Any]]] = []
            for item, sent in zip(resp.get("items", []), pending, strict=True):
                result = item.get("create") or next(iter(item.values()))
                status = int(result.get("status", 0))
                if status in (200, 201):
                    report.created += 1
                elif status == 409:
                    report.existing += 1
                elif status in _RETRY_ITEM:
                    retry.append(sent)
                else:
                    reason = _error_reason(result) or f"HTTP {status}"
                    log.warning("elasticsearch: %s: doc %s in %s rejected: %s", self.where, sent[1], sent[0], reason)
                    report.failed.append((sent[1], f"HTTP {status}: {reason}"))
            if not retry:
                return report
            pending = retry
            if attempt < self.bulk_retries:
                pause = self.retry_backoff * (2 ** attempt)
                log.warning("elasticsearch: %s: %d items refused (429/5xx), retrying in %.1fs", self.where,
                            len(retry), pause)
                time.sleep(pause)
        raise TransientIndexError(f"{self.where}: {len(pending)} documents still refused after "
                                  f"{self.bulk_retries} retries (first id {pending[0][1]})")

    def index_documents(self, docs: Sequence[dict[str, Any]]) -> IndexReport:
        report = IndexReport()
        items: list[tuple[str, str, dict[str, Any]]] = []
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
        log.info("elasticsearch: %s: bulk of %d docs: %d created, %d existing, %d failed", self.where, len(docs),
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
        body = build_search_body(query, entity_terms=entity_terms, topic=topic, entity=entity, source=source,
                                 since=since, until=until, limit=limit, offset=offset, highlight=highlight)
        resp = self._request("POST", f"/{self.read_alias}-*/_search", body=body,
                             params={"ignore_unavailable": "true", "allow_no_indices": "true"})
        hits = []
        for h in resp.get("hits", {}).get("hits", []):
            src = h.get("_source", {})
            fragments = (h.get("highlight") or {}).get("text") or []
            snippet = fragments[0] if fragments else (src.get("text") or "")[:200]
            hits.append(SearchHit(id=src.get("id", h["_id"]), url=src.get("url", ""), title=src.get("title", ""),
                                  score=round(float(h.get("_score") or 0.0), 4), source=src.get("source", ""),
                                  published=src.get("published"), snippet=" ".join(snippet.split()),
                                  topics=list(src.get("topics") or []), entities=hit_entities(src)))
        return hits

    def counts(self, by: CountBy, *, topic: str | None = None, entity: str | None = None, source: str | None = None,
               since: str | None = None, until: str | None = None, limit: int = 1000) -> list[tuple[str, int]]:
        self._refresh_if_dirty()
        clauses = es_query.filters(topic=topic, entity=entity, source=source, since=since, until=until)
        body = es_query.counts_body(by, clauses, limit)
        resp = self._request("POST", f"/{self.read_alias}-*/_search", body=body,
                             params={"ignore_unavailable": "true", "allow_no_indices": "true"})
        return es_query.counts_from(by, resp, limit)

    def get(self, doc_id: str) -> dict[str, Any] | None:
        self._refresh_if_dirty()
        resp = self._request("POST", f"/{self.read_alias}-*/_search", body={"query": {"ids": {"values": [doc_id]}},
                                                                            "size": 1},
                             params={"ignore_unavailable": "true", "allow_no_indices": "true"})
        hits = resp.get("hits", {}).get("hits", [])
        return unshape_document(hits[0]["_source"]) if hits else None

    def export(self) -> Iterator[dict[str, Any]]:
        """Every document, by ``enriched_at`` then id (ES has no insertion order), via search_after."""
        self._refresh_if_dirty()
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {"size": 500, "query": {"match_all": {}},
                                    "sort": [{"enriched_at": {"order": "asc", "missing": "_first"}}, {"id": "asc"}]}
            if after is not None:
                body["search_after"] = after
            resp = self._request("POST", f"/{self.read_alias}-*/_search", body=body,
                                 params={"ignore_unavailable": "true", "allow_no_indices": "true"})
            hits = resp.get("hits", {}).get("hits", [])
            for h in hits:
                yield unshape_document(h["_source"])
            if len(hits) < 500:
                return
            after = hits[-1]["sort"]

    def count(self) -> int:
        self._refresh_if_dirty()
        resp = self._request("GET", f"/{self.read_alias}-*/_count",
                             params={"ignore_unavailable": "true", "allow_no_indices": "true"})
        return int(resp.get("count", 0))

    def alerts(self) -> list[dict[str, Any]]:
        self._refresh_if_dirty()
        resp = self._request("POST", f"/{self.alerts_index}/_search", body={"size": 10000, "sort": [
            {"created_at": "asc"}, {"id": "asc"}]}, params={"ignore_unavailable": "true"})
        return [h["_source"] for h in resp.get("hits", {}).get("hits", [])]

    def delete_older_than(self, cutoff: str) -> int:
        """Delete whole monthly indices before ``cutoff``'s month, then older docs in that month."""
        cutoff_month = month_of({"published": cutoff})
        rows = self._request("GET", f"/_cat/indices/{self.read_alias}-*",
                             params={"format": "json", "h": "index,docs.count"})
        deleted = 0
        for row in rows or []:
            name = row.get("index", "")
            month = name.rsplit("-", 1)[-1]
            if month < cutoff_month:
                deleted += int(row.get("docs.count") or 0)
                self._request("DELETE", f"/{name}")
                log.info("elasticsearch: %s: retention dropped index %s", self.where, name)
        resp = self._request("POST", f"/{self.read_alias}-{cutoff_month}/_delete_by_query",
                             body={"query": {"range": {"date": {"lt": cutoff}}}},
                             params={"ignore_unavailable": "true", "allow_no_indices": "true", "refresh": "true"})
        return deleted + int(resp.get("deleted", 0))

    def close(self) -> None:
        self._es.close()


def _error_reason(body: Any) -> str:
    """``type: reason`` from an Elasticsearch error body or bulk item, one line."""
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

