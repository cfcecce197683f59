"""A farm of small RSS feeds on many loopback addresses, served by one asyncio process.

``python -m bench.feedfarm --feeds N --hosts H --items K`` serves feed ``n`` at
``http://127.0.0.{2 + n % H}:<port>/feed/<n>.xml`` (so feeds listed by number are interleaved
across hosts, as users list them), each with ``K`` items at first, each item an article page
``/a/<n>/<i>.html`` of a few hundred words. Feeds answer conditional GET (ETag, then 304),
except every feed with ``n % 100 == 37`` (1%): those ignore validators and always send the whole,
unchanged body, as some servers do. ``/robots.txt`` is a 404 (allow all).

The first line printed on stdout is JSON: ``{"port": ..., "control": ...}``. The control
port (127.0.0.1) answers ``GET /stats`` (connections accepted, responses by status),
``POST /reset`` (zero the counters) and ``POST /publish?feed=n&topic=0|1`` (one more item in feed
``n``, published now; ``topic=1`` makes its article about al-Tanf so the default watchlist alerts
on it; answers the item's URL and publication time) and ``GET /served`` (for each published item,
``"<feed>-<item>"``, when a feed response first carried it: the poll that found it). The server runs in its own process, as a
web server would, so its CPU is not counted as the pipeline's and it holds no GIL of the client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sys
import time
from collections import Counter
from email.utils import formatdate
from urllib.parse import parse_qs, urlsplit

__all__ = ["host_of", "feed_url", "NO_CONDITIONAL"]

NO_CONDITIONAL = 37  # feeds with n % 100 == this ignore If-None-Match (1% of them)
ITEMS_IN_FEED = 10  # the feed lists the latest items only

_WORDS = ("river valley convoy market council water border crossing village road patrol harvest clinic school "
          "bridge checkpoint camp desert grain fuel truck elders meeting shelter well power station district "
          "wheat sheep cattle family return route supply drought flood repair court mayor teacher nurse").split()


def host_of(n: int, hosts: int) -> str:
    return f"127.0.0.{2 + n % hosts}"


def feed_url(n: int, hosts: int, port: int) -> str:
    return f"http://{host_of(n, hosts)}:{port}/feed/{n}.xml"


def _text(seed: str, words: int) -> str:
    rnd = random.Random(seed)
    sentences = []
    while words > 0:
        k = min(words, rnd.randint(8, 16))
        words -= k
        sentence = " ".join(rnd.choice(_WORDS) for _ in range(k))
        sentences.append(sentence[0].upper() + sentence[1:] + ".")
    return " ".join(sentences)


class Farm:
    def __init__(self, feeds: int, hosts: int, items: int, port: int) -> None:
        self.feeds, self.hosts, self.port = feeds, hosts, port
        self.items = [items] * feeds  # items published so far, per feed
        self.published: dict[tuple[int, int], tuple[float, bool]] = {}  # (feed, item) -> (time, about al-Tanf)
        self.unserved: dict[int, list[int]] = {}  # feed -> published items no feed response has carried yet
        self.served: dict[str, float] = {}  # "feed-item" -> when a feed response first carried it
        self.bodies: dict[int, tuple[int, bytes, str]] = {}  # feed -> (items, body, etag)
        self.connections = 0
        self.responses: Counter[int] = Counter()
        self.started = time.time()

    # -- content --------------------------------------------------------------------
    def _item_url(self, n: int, i: int) -> str:
        return f"http://{host_of(n, self.hosts)}:{self.port}/a/{n}/{i}.html"

    def feed_body(self, n: int) -> tuple[bytes, str]:
        count = self.items[n]
        cached = self.bodies.get(n)
        if cached is not None and cached[0] == count:
            return cached[1], cached[2]
        parts = [f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Feed {n}</title>'
                 f"<link>http://{host_of(n, self.hosts)}:{self.port}/</link><description>bench feed</description>"]
        for i in range(count - 1, max(-1, count - 1 - ITEMS_IN_FEED), -1):
            at, _ = self.published.get((n, i), (self.started, False))
            parts.append(f"<item><title>Report {n}-{i}</title><link>{self._item_url(n, i)}</link>"
                         f'<guid isPermaLink="false">feed{n}-item{i}</guid><pubDate>{formatdate(at, usegmt=True)}'
                         f"</pubDate><description>Item {i} of feed {n}</description></item>")
        parts.append("</channel></rss>\n")
        body = "".join(parts).encode()
        etag = f'"{n}-{count}"'
        self.bodies[n] = (count, body, etag)
        return body, etag

    def article(self, n: int, i: int) -> bytes:
        _, topic = self.published.get((n, i), (self.started, False))
        title = f"Report {n}-{i}: " + ("convoy reaches the al-Tanf garrison" if topic else "the valley council meets")
        lead = ("Coalition forces at the al-Tanf garrison near the border crossing said a convoy arrived. "
                if topic else "")
        paras = "".join(f"<p>{lead if k == 0 else ''}{_text(f'{n}/{i}/{k}', 60)}</p>" for k in range(4))
        return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head><body>"
                f"<header><nav><a href=\"/\">Home</a></nav></header><article><h1>{title}</h1>"
                f"<p class=\"byline\">By Bench Reporter</p>{paras}</article><footer>bench</footer></body></html>"
                ).encode()

    def publish(self, n: int, topic: bool) -> dict[str, object]:
        i = self.items[n]
        at = time.time()
        self.published[(n, i)] = (at, topic)
        self.unserved.setdefault(n, []).append(i)
        self.items[n] = i + 1
        return {"feed": n, "item": i, "url": self._item_url(n, i), "title": f"Report {n}-{i}", "at": at}

    # -- HTTP -----------------------------------------------------------------------
    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        parts = path.split("/")
        try:
            if len(parts) == 3 and parts[1] == "feed" and parts[2].endswith(".xml"):
                n = int(parts[2][:-4])
                body, etag = self.feed_body(n)
                conditional = n % 100 != NO_CONDITIONAL
                if conditional and headers.get("if-none-match") == etag:
                    return 304, {"ETag": etag}, b""
                now = time.time()
                for i in self.unserved.pop(n, []):
                    self.served[f"{n}-{i}"] = now
                return 200, {"Content-Type": "application/rss+xml", **({"ETag": etag} if conditional else {})}, body
            if len(parts) == 4 and parts[1] == "a" and parts[3].endswith(".html"):
                n, i = int(parts[2]), int(parts[3][:-5])
                if 0 <= i < self.items[n]:
                    return 200, {"Content-Type": "text/html; charset=utf-8"}, self.article(n, i)
        except (ValueError, IndexError):
            pass
        return 404, {"Content-Type": "text/plain"}, b"not found"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                status, extra, body = self.answer(path, headers)
                self.responses[status] += 1
                reason = {200: "OK", 304: "Not Modified", 404: "Not Found"}[status]
                out = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
                out += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    async def control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target = head.decode("latin-1").split(" ")[:2]
            url = urlsplit(target)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/stats":
                data: object = {"connections": self.connections, "responses": dict(self.responses)}
            elif url.path == "/served":
                data = self.served
            elif url.path == "/reset" and method == "POST":
                self.connections = 0
                self.responses.clear()
                data = {"ok": True}
            elif url.path == "/publish" and method == "POST":
                data = self.publish(int(query["feed"]), query.get("topic") == "1")
            else:
                data = {"error": "unknown"}
            body = json.dumps(data).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                         + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, KeyError, ValueError):
            pass
        finally:
            writer.close()


def _free_port(hosts: int) -> int:
    """A port free on every one of the farm's addresses."""
    for _ in range(50):
        probe = socket.socket()
        probe.bind(("127.0.0.2", 0))
        port = probe.getsockname()[1]
        probe.close()
        taken = False
        for h in range(hosts):
            s = socket.socket()
            try:
                s.bind((f"127.0.0.{2 + h}", port))
            except OSError:
                taken = True
            finally:
                s.close()
            if taken:
                break
        if not taken:
            return port
    raise RuntimeError("no port free on every farm address")


async def _main(feeds: int, hosts: int, items: int) -> None:
    port = _free_port(hosts)
    farm = Farm(feeds, hosts, items, port)
    servers = [await asyncio.start_server(farm.serve, f"127.0.0.{2 + h}", port, backlog=512) for h in range(hosts)]
    control = await asyncio.start_server(farm.control, "127.0.0.1", 0)
    cport = control.sockets[0].getsockname()[1]
    print(json.dumps({"port": port, "control": cport}), flush=True)
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent goes away
    finally:
        for s in [*servers, control]:
            s.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--items", type=int, default=1)
    args = parser.parse_args()
    if not 1 <= args.hosts <= 250:
        parser.error("--hosts must be 1..250 (127.0.0.2-127.0.0.251)")
    asyncio.run(_main(args.feeds, args.hosts, args.items))


if __name__ == "__main__":
    main()
