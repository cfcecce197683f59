"""A small HTTP server on 127.0.0.1 that answers like Elasticsearch, for adapter tests.

It implements just what ``ElasticsearchIndex`` sends: ``GET /`` (version info, refusing a
``compatible-with`` header of a newer major like a real server), index template PUT,
``_bulk`` create with per-item outcomes, ``_search`` (ids, match_all, term filters;
search_after by id; ``from``; ``terms`` and daily ``date_histogram`` aggregations), ``_count``, ``_refresh``, ``_cat/indices``, index DELETE and
``_delete_by_query``. Every request is recorded (method, path, headers, body) so tests
can assert the request shapes.

Per-item behaviour is scripted by document id: ids in ``reject`` get a 400 mapping error;
``throttle[id] = n`` answers 429 for that id n times before accepting it; ``slow`` makes
every request sleep that many seconds first (timeouts); ``fail_with`` answers every request
with that HTTP status.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeElasticsearch:
    version: str = "9.1.0"
    docs: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # index -> id -> source
    templates: dict[str, Any] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    reject: set[str] = field(default_factory=set)
    throttle: dict[str, int] = field(default_factory=dict)
    slow: float = 0.0
    fail_with: int = 0  # answer every request with this HTTP status (401, 503, ...)
    url: str = ""

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def all_docs(self, pattern: str) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for part in pattern.split(","):
            prefix = part.rstrip("*")
            for index, docs in self.docs.items():
                if (index.startswith(prefix) if part.endswith("*") else index == part):
                    out.extend((doc_id, src) for doc_id, src in docs.items())
        return sorted(out)


def _make_handler(state: FakeElasticsearch) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", f"application/vnd.elasticsearch+json;compatible-with={state.major}")
            self.send_header("X-Elastic-Product", "Elasticsearch")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            state.requests.append(Recorded(self.command, path, parts.query, {k.lower(): v for k, v in
                                                                             self.headers.items()}, body))
            if state.slow:
                time.sleep(state.slow)
            if state.fail_with:
                kind = "security_exception" if state.fail_with in (401, 403) else "unavailable_shards_exception"
                self._send(state.fail_with, {"error": {"type": kind, "reason": "refused by the test"},
                                             "status": state.fail_with})
                return
            accept = self.headers.get("Accept", "")
            if "compatible-with=" in accept:
                wanted = int(accept.split("compatible-with=")[1].split(";")[0].strip())
                if wanted > state.major or wanted < state.major - 1:
                    self._send(400, {"error": {"type": "media_type_header_exception",
                                               "reason": f"Accept version must be either version {state.major} "
                                                         f"or {state.major - 1}, but found {wanted}."},
                                     "status": 400})
                    return
            self._route(self.command, path, body)

        def _route(self, method: str, path: str, body: bytes) -> None:
            segs = [s for s in path.split("/") if s]
            if method == "GET" and not segs:
                self._send(200, {"name": "fake", "cluster_name": "test", "version": {"number": state.version},
                                 "tagline": "You Know, for Search"})
            elif method == "PUT" and segs[:1] == ["_index_template"]:
                state.templates[segs[1]] = json.loads(body)
                self._send(200, {"acknowledged": True})
            elif method == "POST" and segs == ["_bulk"]:
                self._send(200, self._bulk(body))
            elif segs[-1:] == ["_search"]:
                self._send(200, self._search(segs[0], json.loads(body or b"{}")))
            elif segs[-1:] == ["_count"]:
                self._send(200, {"count": len(state.all_docs(segs[0]))})
            elif segs[-1:] == ["_refresh"]:
                self._send(200, {"_shards": {"total": 1, "successful": 1, "failed": 0}})
            elif segs[:2] == ["_cat", "indices"]:
                prefix = segs[2].rstrip("*")
                self._send(200, [{"index": i, "docs.count": str(len(d))} for i, d in sorted(state.docs.items())
                                 if i.startswith(prefix)])
            elif method == "DELETE" and len(segs) == 1:
                state.docs.pop(segs[0], None)
                self._send(200, {"acknowledged": True})
            elif segs[-1:] == ["_delete_by_query"]:
                lt = json.loads(body)["query"]["range"]["date"]["lt"]
                docs = state.docs.get(segs[0], {})
                gone = [i for i, s in docs.items() if (s.get("date") or "") < lt]
                for i in gone:
                    del docs[i]
                self._send(200, {"deleted": len(gone)})
            else:
                self._send(404, {"error": {"type": "not_found", "reason": path}, "status": 404})

        def _bulk(self, body: bytes) -> dict[str, Any]:
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            items = []
            for action, source in zip(lines[0::2], lines[1::2], strict=True):
                meta = action["create"]
                index, doc_id = meta["_index"], meta["_id"]
                res: dict[str, Any] = {"_index": index, "_id": doc_id}
                if state.throttle.get(doc_id, 0) > 0:
                    state.throttle[doc_id] -= 1
                    res.update(status=429, error={"type": "es_rejected_execution_exception",
                                                  "reason": "rejected execution of coordinating operation"})
                elif doc_id in state.reject:
                    res.update(status=400, error={"type": "document_parsing_exception",
                                                  "reason": "[1:50] failed to parse field [published] of type [date]",
                                                  "caused_by": {"type": "illegal_argument_exception",
                                                                "reason": "failed to parse date field [yesterday]"}})
                elif doc_id in state.docs.get(index, {}):
                    res.update(status=409, error={"type": "version_conflict_engine_exception",
                                                  "reason": f"[{doc_id}]: version conflict, document already exists"})
                else:
                    state.docs.setdefault(index, {})[doc_id] = source
                    res.update(status=201, result="created")
                items.append({"create": res})
            return {"took": 1, "errors": any(i["create"]["status"] >= 300 for i in items), "items": items}

        def _search(self, target: str, query: dict[str, Any]) -> dict[str, Any]:
            docs = state.all_docs(target)
            q = query.get("query", {})
            if "ids" in q:
                wanted = set(q["ids"]["values"])
                docs = [d for d in docs if d[0] in wanted]
            for f in (q.get("bool") or {}).get("filter", []):
                if "term" in f:
                    (key, value), = f["term"].items()
                    if key == "topics":
                        docs = [d for d in docs if value in (d[1].get("topics") or [])]
                    elif key == "entities.id":
                        docs = [d for d in docs if value in [e.get("id") for e in d[1].get("entities") or []]]
                    elif key == "source":
                        docs = [d for d in docs if d[1].get("source") == value]
            if "search_after" in query:
                docs = [d for d in docs if d[0] > query["search_after"][-1]]
            aggs = {name: self._aggregate(spec, docs) for name, spec in (query.get("aggs") or {}).items()}
            start = query.get("from", 0)
            docs = docs[start: start + query.get("size", 10)]
            hits = [{"_index": "x", "_id": i, "_score": 1.0, "_source": s, "sort": [s.get("enriched_at"), i]}
                    for i, s in docs]
            out: dict[str, Any] = {"took": 1, "hits": {"total": {"value": len(hits), "relation": "eq"}, "hits": hits}}
            if aggs:
                out["aggregations"] = aggs
            return out

        @staticmethod
        def _aggregate(spec: dict[str, Any], docs: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
            """``terms`` (count desc, key asc) over topics / entities.id / source; ``date_histogram`` by day."""
            counts: dict[str, int] = {}
            if "date_histogram" in spec:
                for _, src in docs:
                    if src.get("date"):
                        day = src["date"][:10]
                        counts[day] = counts.get(day, 0) + 1
                return {"buckets": [{"key_as_string": k, "key": 0, "doc_count": n} for k, n in sorted(counts.items())]}
            field_name = spec["terms"]["field"]
            for _, src in docs:
                if field_name == "entities.id":
                    values = {e.get("id") for e in src.get("entities") or []}
                elif field_name == "topics":
                    values = set(src.get("topics") or [])
                else:
                    values = {src.get(field_name)} if src.get(field_name) else set()
                for v in values:
                    counts[v] = counts.get(v, 0) + 1
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: spec["terms"].get("size", 10)]
            return {"buckets": [{"key": k, "doc_count": n} for k, n in ranked]}

        def do_GET(self) -> None:
            self._handle()

        def do_PUT(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

    return Handler


@contextmanager
def fake_elasticsearch(version: str = "9.1.0") -> Iterator[FakeElasticsearch]:
    """Run a FakeElasticsearch on a free port for the ``with`` block; ``state.url`` is its address."""
    state = FakeElasticsearch(version=version)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-es", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
