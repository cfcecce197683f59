"""Each seed document, served as an article page, goes fetch -> extract -> tag with the right topics."""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.index import open_index
from pipeline.jobs import drain, ingest_urls

EXPECTED = {
    "000_": {"al-tanf"},
    "001_": {"al-tanf"},
    "002_": {"al-tanf", "deir-ez-zor"},
    "003_": {"al-tanf", "deir-ez-zor"},
    "004_": set(),
}


def _page(text: str) -> bytes:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    title = html.escape(lines[0])
    body = "\n".join(f"<p>{html.escape(ln)}</p>" for ln in lines[1:])
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title></head><body>"
        f"<header><nav><a href='/'>Home</a></nav></header><article><h1>{title}</h1>{body}</article>"
        f"<footer>Seed document served for tests</footer></body></html>"
    ).encode()


@pytest.fixture
def seed_server(shared_dir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    pages = {f"/seed/{p.stem}.html": _page(p.read_text(encoding="utf-8"))
             for p in sorted((shared_dir / "seeds").glob("*.txt"))}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = pages.get(self.path)
            if self.path == "/robots.txt":
                body, ctype = b"User-agent: *\nAllow: /\n", "text/plain"
            else:
                ctype = "text/html; charset=utf-8"
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield base, {path.split("/")[-1][:4]: base + path for path in pages}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.shared
def test_seed_documents_fire_the_right_topics(env: dict[str, str], seed_server: tuple[str, dict[str, str]]) -> None:
    _, urls = seed_server
    assert set(urls) == set(EXPECTED), "expected the five seed documents"
    config = load_config()
    summary = ingest_urls(config, list(urls.values()), replay=False)
    assert summary.extracted == 5, summary.outcomes
    drain(config)
    index = open_index(config.settings)
    try:
        by_url = {d["url"]: d for d in index.export()}
    finally:
        index.close()
    for prefix, url in urls.items():
        doc = by_url[url]
        assert set(doc["topics"]) == EXPECTED[prefix], f"{prefix}: {doc['topics']} (title {doc['title']!r})"
