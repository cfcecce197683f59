"""Polling benchmark: 10,000 feeds near the client's limit, and publication-to-alert latency.

**Steady state.** :mod:`bench.feedfarm` serves ``$BENCH_POLL_FEEDS`` (10,000) small RSS feeds on 100
loopback addresses (127.0.0.2-101), listed interleaved (feed n on address n % 100), as users list
them, from a separate process. 99% answer 304 to a conditional GET; 1% ignore validators and send
their unchanged body (the pipeline then sees the same sha256). Settings: ``fetch.delay_seconds: 0``
(100 feeds per host at the default 1 s would take 100 s by design), ``per_host_concurrency`` 2,
everything else default. In one run:

1. the first pass, ``run_once`` on an empty data dir: every feed new, ``$BENCH_POLL_ITEMS`` (1) new
   small article each, fetched, extracted, published, tagged, indexed (articles/s);
2. ``$BENCH_POLL_REPEATS`` (5) interleaved rounds of
   (a) the bare conditional GETs: the same 10,000 URLs with their stored ETags through the
       project's own ``SafeFetcher`` (its connections are reused per host), by 8 plain threads
       taking URLs from a deque, as lean a client as it gets;
   (b) the steady-state pass, ``pipeline.jobs.run_once(config)`` in this process: what ``run
       --once`` and every pass of the continuous ``run`` execute;
   (c) ``python -m pipeline run --once`` as a process: (b) plus the interpreter, imports, reading
       10,000 feeds from feeds.yaml, the start checks and the feed-health check.
   Wall, CPU (this process and its children, the farm excluded), feeds/s, connections the farm
   accepted. The ratio is the median over rounds of (b)/(a) within a round (neighbours in time
   see the same machine).

**Latency.** ``$BENCH_LATENCY_FEEDS`` (10) feeds, one per loopback host, each with
``interval_seconds: 15``, default politeness (1 s between requests to a host); the continuous
``python -m pipeline run`` runs for ``$BENCH_LATENCY_SECONDS`` (300) while items about al-Tanf are
published at random times (one every 1-5 s, uniformly, into a random feed). Latency = from the
item's publication (in the farm) to its alert line appearing in ``alerts.jsonl`` (watched every
50 ms). Split into the wait for the poll that carried it and the processing after that poll.

Targets: (b) at most 1.5x (a); latency p95 at most interval + 2 s. Writes
``bench/report-polling.json``.
"""

from __future__ import annotations

import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, deque
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import Config, load_config
from pipeline.fetch import SafeFetcher
from pipeline.state import StateStore

from .feedfarm import feed_url
from .ingest import PeakRSS

__all__ = ["run", "REPORT_PATH"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REPORT_PATH = Path(__file__).resolve().parent / "report-polling.json"
HOSTS = 100
THREADS = 8
TARGET_RATIO = 1.5
INTERVAL_S = 15.0
LATENCY_MARGIN_S = 2.0


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


class Farm:
    """The feed farm in its own process (see :mod:`bench.feedfarm`)."""

    def __init__(self, feeds: int, hosts: int, items: int) -> None:
        self.feeds, self.hosts = feeds, hosts
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.feedfarm", "--feeds", str(feeds), "--hosts", str(hosts), "--items",
             str(items)], cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        info = json.loads(self.proc.stdout.readline())
        self.port, self.control = int(info["port"]), int(info["control"])

    def ctl(self, path: str, method: str = "GET") -> Any:
        req = urllib.request.Request(f"http://127.0.0.1:{self.control}{path}", method=method)
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - the farm's control port on loopback
            return json.loads(resp.read())

    def url(self, n: int) -> str:
        return feed_url(n, self.hosts, self.port)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the farm serves until its stdin closes
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Farm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _config_dir(root: Path, farm: Farm, settings: dict[str, Any], feed_extra: dict[str, Any],
                alerts_per_hour: int | None = None) -> Path:
    """A config dir for the farm's feeds: settings.yaml, feeds.yaml, the project's watchlist and overlay."""
    cfg = root / "config"
    cfg.mkdir(parents=True)
    (cfg / "settings.yaml").write_text(yaml.safe_dump({"data_dir": str(root / "var"), **settings}), encoding="utf-8")
    feeds = [{"url": farm.url(n), "name": f"bench feed {n}", **feed_extra} for n in range(farm.feeds)]
    (cfg / "feeds.yaml").write_text(yaml.safe_dump({"feeds": feeds}, width=200), encoding="utf-8")
    watchlist = yaml.safe_load((PROJECT_ROOT / "config" / "watchlist.yaml").read_text(encoding="utf-8"))
    if alerts_per_hour is not None:  # every item is a new story: lift the hourly cap (overflow goes to digests)
        for topic in watchlist["topics"]:
            topic["max_alerts_per_hour"] = alerts_per_hour
    (cfg / "watchlist.yaml").write_text(yaml.safe_dump(watchlist, allow_unicode=True), encoding="utf-8")
    shutil.copy(PROJECT_ROOT / "config" / "catalogue-overlay.yaml", cfg / "catalogue-overlay.yaml")
    return cfg


def _env(cfg: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "NEWSWATCH_"))}
    env["PIPELINE_CONFIG_DIR"] = str(cfg)
    return env


# -- steady state ---------------------------------------------------------------------
def _pass(config: Config, farm: Farm) -> dict[str, Any]:
    """One ``run_once`` pass in this process."""
    from pipeline.jobs import run_once

    farm.ctl("/reset", "POST")
    with PeakRSS(interval=0.25, exclude=frozenset({farm.proc.pid})) as rss:
        t0 = time.perf_counter()
        summary = run_once(config)
        seconds = time.perf_counter() - t0
    stats = farm.ctl("/stats")
    ing = summary.ingest
    return {"seconds": round(seconds, 3), "cpu_seconds": round(rss.cpu_seconds, 2), "feeds": ing.feeds_polled,
            "feeds_per_s": round(ing.feeds_polled / seconds, 1), "not_modified": ing.feeds_not_modified,
            "failed": ing.feeds_failed, "new_entries": ing.new_entries, "published": ing.published,
            "articles_per_s": round(ing.published / seconds, 1), "connections_opened": stats["connections"],
            "responses": stats["responses"], "peak_rss_mb": round(rss.peak / 2**20, 1)}


def _bare(config: Config, farm: Farm) -> dict[str, Any]:
    """The same conditional GETs, bare: SafeFetcher and 8 threads, nothing else."""
    with StateStore(config.settings.state_db) as store:
        known = store.poll_states([f.url for f in config.feeds])
    jobs = deque((f.url, known[f.url].etag or None, known[f.url].last_modified or None) for f in config.feeds)
    total = len(jobs)
    answered: list[int] = []  # list.append is atomic; a Counter's += is not

    def loop() -> None:  # as lean as it gets: take a URL, GET it, next
        while True:
            try:
                url, etag, last_modified = jobs.popleft()
            except IndexError:
                return
            answered.append(fetcher.fetch(url, etag=etag, last_modified=last_modified).status)

    farm.ctl("/reset", "POST")
    with PeakRSS(interval=0.25, exclude=frozenset({farm.proc.pid})) as rss, \
            SafeFetcher(config.settings.fetch) as fetcher:
        threads = [threading.Thread(target=loop) for _ in range(THREADS)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - t0
    stats = farm.ctl("/stats")
    return {"seconds": round(seconds, 3), "cpu_seconds": round(rss.cpu_seconds, 2), "requests": total,
            "requests_per_s": round(total / seconds, 1), "statuses": dict(Counter(answered)),
            "connections_opened": stats["connections"]}


def _cli(cfg: Path, farm: Farm) -> dict[str, Any]:
    """``python -m pipeline run --once`` as its own process."""
    farm.ctl("/reset", "POST")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", "--once", "--json"], env=_env(cfg),
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900, check=False)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    stats = farm.ctl("/stats")
    if proc.returncode != 0:
        raise RuntimeError(f"run --once exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    polled = json.loads(proc.stdout.strip().splitlines()[-1])["ingest"]["feeds_polled"]
    return {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 2), "feeds": polled,
            "feeds_per_s": round(polled / seconds, 1), "connections_opened": stats["connections"]}


def _steady(root: Path) -> dict[str, Any]:
    feeds, items = _env_int("BENCH_POLL_FEEDS", 10_000), _env_int("BENCH_POLL_ITEMS", 1)
    repeats = max(1, _env_int("BENCH_POLL_REPEATS", 5))
    with Farm(feeds, HOSTS, items) as farm:
        settings = {"fetch": {"delay_seconds": 0, "allow_hosts": ["127.0.0.0/8"]}}
        cfg = _config_dir(root, farm, settings, {})
        config = load_config(env=_env(cfg))
        first = _pass(config, farm)
        print(f"  first pass: {first['feeds']} feeds, {first['published']} new articles in {first['seconds']:.1f} s "
              f"({first['articles_per_s']} articles/s, {first['cpu_seconds']} CPU s)", flush=True)
        rounds = []
        for r in range(repeats):
            bare, steady, cli = _bare(config, farm), _pass(config, farm), _cli(cfg, farm)
            rounds.append({"bare": bare, "run_once": steady, "cli_run_once": cli,
                           "ratio": round(steady["seconds"] / bare["seconds"], 2),
                           "cli_ratio": round(cli["seconds"] / bare["seconds"], 2)})
            print(f"  round {r + 1}: bare GETs {bare['seconds']:.2f} s ({bare['connections_opened']} connections), "
                  f"run_once {steady['seconds']:.2f} s ({steady['connections_opened']} connections, "
                  f"{steady['not_modified']} not modified), ratio {rounds[-1]['ratio']}; "
                  f"`run --once` process {cli['seconds']:.2f} s", flush=True)
    ratio = statistics.median(r["ratio"] for r in rounds)
    best = min(rounds, key=lambda r: r["run_once"]["seconds"])
    return {
        "feeds": feeds, "hosts": HOSTS, "items_per_feed_first_pass": items, "threads_bare": THREADS,
        "listing": "interleaved: feed n on 127.0.0.(2 + n % 100)",
        "answers": "99% 304 to the conditional GET; 1% (n % 100 == 37) ignore validators, same body each time",
        "settings": {"fetch.delay_seconds": 0, "fetch.per_host_concurrency": 2, "fetch.dns_cache_seconds": 30},
        "first_pass": first,
        "rounds": rounds,
        "ratio": ratio,
        "ratio_is": "median over rounds of run_once seconds / bare conditional GET seconds in the same round",
        "cli_ratio": statistics.median(r["cli_ratio"] for r in rounds),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
        "best_round": best,
    }


# -- latency --------------------------------------------------------------------------
def _watch(path: Path, seen: dict[str, float], stop: threading.Event) -> None:
    """Note when each alert line (by its item, ``Report <feed>-<item>``) appears in ``path``."""
    offset = 0
    pattern = re.compile(r"Report (\d+-\d+):")
    while not stop.wait(0.05):
        try:
            with path.open("rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
        except FileNotFoundError:
            continue
        end = chunk.rfind(b"\n") + 1
        offset += end
        now = time.time()
        for line in chunk[:end].decode("utf-8", errors="replace").splitlines():
            match = pattern.search(json.loads(line).get("subject", "")) if line.strip() else None
            if match:
                seen.setdefault(match.group(1), now)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _latency(root: Path) -> dict[str, Any]:
    feeds = _env_int("BENCH_LATENCY_FEEDS", 10)
    duration = _env_int("BENCH_LATENCY_SECONDS", 300)
    rnd = random.Random(15)
    with Farm(feeds, feeds, 1) as farm:
        settings = {"poll_interval_seconds": INTERVAL_S, "feeds": {"min_interval_seconds": 10},
                    "fetch": {"allow_hosts": ["127.0.0.0/8"]}}
        cfg = _config_dir(root, farm, settings, {"interval_seconds": INTERVAL_S}, alerts_per_hour=100_000)
        env = _env(cfg)
        subprocess.run([sys.executable, "-m", "pipeline", "run", "--once"], env=env, cwd=PROJECT_ROOT,
                       capture_output=True, timeout=600, check=True)  # the backlog: nothing about al-Tanf
        alerts = root / "var" / "alerts.jsonl"
        seen: dict[str, float] = {}
        stop = threading.Event()
        watcher = threading.Thread(target=_watch, args=(alerts, seen, stop), daemon=True)
        log = (root / "run.log").open("w")
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run"], env=env, cwd=PROJECT_ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
        published: dict[str, float] = {}
        try:
            watcher.start()
            time.sleep(INTERVAL_S)  # the run is up and in its rhythm
            end = time.time() + duration
            while time.time() < end:
                time.sleep(rnd.uniform(1.0, 5.0))
                item = farm.ctl(f"/publish?feed={rnd.randrange(feeds)}&topic=1", "POST")
                published[f"{item['feed']}-{item['item']}"] = float(item["at"])
            deadline = time.time() + INTERVAL_S + 30
            while time.time() < deadline and not set(published) <= set(seen):
                time.sleep(0.2)
            served = farm.ctl("/served")
        finally:
            stop.set()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            watcher.join(5)
            log.close()
    latencies = {k: seen[k] - t for k, t in published.items() if k in seen}
    waits = [served[k] - published[k] for k in latencies if k in served]
    processing = [seen[k] - served[k] for k in latencies if k in served]
    values = list(latencies.values())
    if not values:
        raise RuntimeError(f"no alert arrived (see {root / 'run.log'})")
    p95 = _percentile(values, 0.95)
    return {
        "feeds": feeds, "hosts": feeds, "interval_seconds": INTERVAL_S, "duration_s": duration,
        "politeness": "default: 1 s between requests to a host, robots.txt honoured",
        "published": len(published), "alerted": len(latencies), "missing": sorted(set(published) - set(seen)),
        "p50_s": round(_percentile(values, 0.5), 2), "p95_s": round(p95, 2), "max_s": round(max(values), 2),
        "mean_s": round(statistics.fmean(values), 2),
        "wait_for_poll_p50_s": round(_percentile(waits, 0.5), 2) if waits else None,
        "wait_for_poll_p95_s": round(_percentile(waits, 0.95), 2) if waits else None,
        "after_poll_p50_s": round(_percentile(processing, 0.5), 2) if processing else None,
        "after_poll_p95_s": round(_percentile(processing, 0.95), 2) if processing else None,
        "after_poll_max_s": round(max(processing), 2) if processing else None,
        "target_p95_s": INTERVAL_S + LATENCY_MARGIN_S,
        "meets_target": p95 <= INTERVAL_S + LATENCY_MARGIN_S,
    }


def run(report_path: Path = REPORT_PATH) -> dict[str, Any]:
    """Both measurements (``$BENCH_POLL_PARTS``: ``steady,latency``); prints them and writes the report."""
    parts = os.environ.get("BENCH_POLL_PARTS", "steady,latency").split(",")
    load_before = os.getloadavg()
    report: dict[str, Any] = {
        "benchmark": "polling",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "load_average_before": [round(x, 2) for x in load_before],
    }
    print(f"polling bench: {os.cpu_count()} CPUs, load average before {load_before[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="newswatch-bench-polling-") as tmp:
        if "steady" in parts:
            report["steady_state"] = st = _steady(Path(tmp) / "steady")
            b = st["best_round"]
            print(f"  steady state: run_once {st['ratio']}x the bare conditional GETs (median of "
                  f"{len(st['rounds'])} rounds; target {TARGET_RATIO}x: {'met' if st['meets_target'] else 'NOT met'}); "
                  f"best round {b['run_once']['seconds']:.2f} s vs {b['bare']['seconds']:.2f} s, "
                  f"{b['run_once']['feeds_per_s']} feeds/s, {b['run_once']['cpu_seconds']} CPU s, "
                  f"{b['run_once']['connections_opened']} connections", flush=True)
        if "latency" in parts:
            report["latency"] = lat = _latency(Path(tmp) / "latency")
            print(f"  publication to alert at a {INTERVAL_S:.0f} s interval: p50 {lat['p50_s']} s, p95 {lat['p95_s']} s, "
                  f"max {lat['max_s']} s over {lat['alerted']}/{lat['published']} items (after the poll: p50 "
                  f"{lat['after_poll_p50_s']} s, p95 {lat['after_poll_p95_s']} s); target p95 <= "
                  f"{lat['target_p95_s']} s: {'met' if lat['meets_target'] else 'NOT met'}", flush=True)
    if report_path.exists() and set(parts) != {"steady", "latency"}:  # a partial run keeps the other part
        previous = json.loads(report_path.read_text(encoding="utf-8"))
        report = {**previous, **report}
    report_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"  report: {report_path}")
    return report


if __name__ == "__main__":
    run()
