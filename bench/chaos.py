"""Failure benchmark: the production shape on the real engines, with workers, broker, search node and
alert peers failing mid-stream; nothing may be lost, duplicated or dead-lettered.

``make chaos`` or ``python -m bench chaos``. What runs (:mod:`bench.chaos_shape`):

* Apache Kafka 4 and OpenSearch 2.19 (``pipeline.engines``), shared by two deployments isolated by
  name: a **clean** run (no faults) and a **chaos** run, over the same input;
* the worker stages as separate processes with ``--metrics-port``: ``enrich``, two ``index`` in one
  consumer group, ``alert`` (SMTP through a real aiosmtpd server, Slack through a stand-in);
* ingest as ``python -m pipeline run --once`` passes while the feeds grow;
* the input: the 181 real pages of the article-extraction benchmark, each served under
  ``CHAOS_COPIES`` URLs, and the seed documents (each under two URLs) so that alerts fire, on
  ``CHAOS_HOSTS`` loopback hosts with one RSS feed each (``bench.ingest``'s page server).

During the chaos run (``CHAOS_DURATION`` seconds, ``CHAOS_PASSES`` passes): every worker slot is
SIGKILLed ``CHAOS_KILLS`` times at random moments (one in each of as many equal slices of the run)
and restarted after 0.5-3 s; the broker is SIGKILLed once mid-stream and restarted; the search node
is stopped (SIGTERM) for 30 s and started again; SMTP and Slack are down for 60 s while alerts fire.
Then one more pass, and the benchmark waits for zero consumer lag and an empty outbox.

Reported (``bench/report-chaos.json`` and a table): articles published, documents in the index,
duplicates, documents lost or differing from the clean run (``text``, ``entities``, ``topics``),
alerts raised, deliveries per channel as the peers received them and their duplicates, dead
letters, the drain time after the last fault, each fault's recovery time (from the worker logs and
the metrics endpoints, scraped every 2 s all along), and the log checks: no traceback, no crash
exit, a transient error then a recovery line for every fault, no ``/livez`` 503.
"""

from __future__ import annotations

import functools
import html
import json
import os
import platform
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.engines import KafkaEngine, OpenSearchEngine, free_port
from pipeline.errors import EngineError

from .chaos_analysis import SlotLog, diff_documents, duplicates, first_after, read_log
from .chaos_shape import Shape
from .extract_quality import DEFAULT_DIR, load_benchmark
from .ingest import ServerProcess

__all__ = ["ChaosConfig", "run", "REPORT_PATH"]

REPORT_PATH = Path(__file__).resolve().parent / "report-chaos.json"
SEEDS_DIR = Path(__file__).resolve().parents[2] / "shared" / "seeds"
SEED_COPIES = 2


@dataclass
class ChaosConfig:
    """The knobs, from ``CHAOS_*`` environment variables."""

    duration: float = 600.0  # seconds of faults
    passes: int = 10
    copies: int = 6  # URLs per benchmark page
    hosts: int = 8
    kills: int = 10  # SIGKILLs per worker slot
    broker_down: float = 5.0  # seconds between the broker's SIGKILL and its restart
    search_down: float = 30.0
    peers_down: float = 60.0
    partitions: int = 6
    drain_timeout: float = 900.0
    seed: int = 11

    @classmethod
    def from_env(cls) -> ChaosConfig:
        out = cls()
        for name, value in asdict(out).items():
            raw = os.environ.get(f"CHAOS_{name.upper()}")
            if raw:
                setattr(out, name, type(value)(raw))
        return out


# -- input ---------------------------------------------------------------------------------------

def seed_page(text: str) -> bytes:
    """A seed document (plain text) as the article page a site would serve."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    title = next((ln for ln in lines if len(ln) > 40), lines[0])
    paragraphs = "".join(f"<p>{html.escape(ln)}</p>\n" for ln in lines if ln != title)
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"</head><body><article><h1>{html.escape(title)}</h1>\n{paragraphs}</article></body></html>").encode()


def build_pages(copies: int) -> tuple[dict[str, bytes], list[str], list[list[str]]]:
    """Pages by name: the benchmark's pages ``copies`` times each, and the seeds twice each.

    Returns (pages, benchmark page names, seed page names grouped by seed)."""
    pages: dict[str, bytes] = {}
    bench_names: list[str] = []
    for key, _url, body, _gold in load_benchmark(DEFAULT_DIR):
        for c in range(copies):
            name = f"{key[:16]}-{c}"
            pages[name] = body
            bench_names.append(name)
    seeds: list[list[str]] = []
    for path in sorted(SEEDS_DIR.glob("*.txt")):
        body = seed_page(path.read_text(encoding="utf-8"))
        names = [f"seed-{path.stem}-{c}" for c in range(SEED_COPIES)]
        for name in names:
            pages[name] = body
        seeds.append(names)
    return pages, bench_names, seeds


def release_plan(bench_names: list[str], seeds: list[list[str]], passes: int, alert_pass: int,
                 rng: random.Random) -> list[list[str]]:
    """Which pages each pass newly lists: the benchmark pages shuffled and spread evenly; each seed's
    first copy at its own pass (one of them at ``alert_pass``, while the alert peers are down) and its
    second copy two passes later."""
    order = list(bench_names)
    rng.shuffle(order)
    plan: list[list[str]] = [order[i::passes] for i in range(passes)]
    bases = [min(passes - 1, int((i + 0.5) * passes / len(seeds))) for i in range(len(seeds))]
    nearest = min(range(len(bases)), key=lambda i: abs(bases[i] - alert_pass))
    bases[nearest] = alert_pass
    for base, names in zip(bases, seeds, strict=True):
        for c, name in enumerate(names):
            plan[min(passes - 1, base + 2 * c)].append(name)
    return plan


# -- the fault schedule ----------------------------------------------------------------------------

@dataclass(order=True)
class Event:
    at: float  # seconds after the start of the chaos run
    what: str = field(compare=False)
    target: str = field(compare=False)
    action: Callable[[], None] = field(compare=False, repr=False)


@dataclass
class Fault:
    kind: str  # worker_kill, broker_kill, search_stop, peers_down
    target: str
    at: float  # epoch seconds
    back_at: float = 0.0  # restarted / started / up again
    ready_at: float = 0.0  # answering again (engines)
    incarnation: int = 0  # worker_kill: the incarnation killed


class Chaos:
    """Drives the chaos run's schedule: passes in a thread, faults from the calling (main) thread."""

    def __init__(self, shape: Shape, server: ServerProcess, plan: list[list[str]], cfg: ChaosConfig,
                 rng: random.Random) -> None:
        self.shape = shape
        self.server = server
        self.plan = plan
        self.cfg = cfg
        self.rng = rng
        self.faults: list[Fault] = []
        self.events: list[Event] = []
        self.t0 = 0.0
        self._engine_threads: list[threading.Thread] = []

    # schedule

    def schedule(self) -> None:
        d, cfg = self.cfg.duration, self.cfg
        for slot in self.shape.slots:
            width = 0.92 * d / cfg.kills
            for j in range(cfg.kills):
                at = 0.03 * d + j * width + self.rng.uniform(0.0, width - 4.0)
                delay = self.rng.uniform(0.5, 3.0)
                self.events.append(Event(at, "kill", slot.name, functools.partial(self._kill, slot)))
                self.events.append(Event(at + delay, "restart", slot.name, slot.restart))
        broker_at = self.pass_time(max(1, int(0.3 * cfg.passes))) + 3.0  # while that pass publishes
        self.events.append(Event(broker_at, "kill", "broker", self._kill_broker))
        self.events.append(Event(broker_at + cfg.broker_down, "restart", "broker", self._restart_broker))
        search_at = 0.5 * d
        self.events.append(Event(search_at, "stop", "search", self._stop_search))
        self.events.append(Event(search_at + cfg.search_down, "start", "search", self._start_search))
        peers_at = self.peers_at()
        self.events.append(Event(peers_at, "down", "smtp+slack", self._peers_down))
        self.events.append(Event(peers_at + cfg.peers_down, "up", "smtp+slack", self._peers_up))
        self.events.sort()

    def pass_time(self, number: int) -> float:
        return number * self.cfg.duration / self.cfg.passes

    def peers_at(self) -> float:
        """The alert peers go down a little before the pass that brings a seed (see :func:`release_plan`)."""
        return self.pass_time(self.alert_pass()) - 0.1 * self.cfg.duration / self.cfg.passes

    def alert_pass(self) -> int:
        return max(1, int(0.7 * self.cfg.passes))

    # faults

    def _kill(self, slot: Any) -> None:
        incarnation = slot.incarnation
        if slot.proc is None or slot.proc.poll() is not None:
            return
        at = slot.kill()
        self.faults.append(Fault("worker_kill", slot.name, at, incarnation=incarnation))

    def _kill_broker(self) -> None:
        at = time.time()
        self.shape.kafka.kill()
        self.faults.append(Fault("broker_kill", "kafka", at))

    def _restart_broker(self) -> None:
        fault = next(f for f in self.faults if f.kind == "broker_kill")
        self._respawn(self.shape.kafka, fault)

    def _respawn(self, engine: KafkaEngine | OpenSearchEngine, fault: Fault) -> None:
        """Spawn from this (main) thread (the JVM dies with the thread that spawned it); time readiness aside."""
        fault.back_at = time.time()
        engine.spawn()

        def ready() -> None:
            engine.wait_ready(300)
            fault.ready_at = time.time()

        thread = threading.Thread(target=ready, name=f"ready-{engine.name}", daemon=True)
        thread.start()
        self._engine_threads.append(thread)

    def _stop_search(self) -> None:
        at = time.time()
        self.shape.search.stop()
        self.faults.append(Fault("search_stop", "opensearch", at))

    def _start_search(self) -> None:
        fault = next(f for f in self.faults if f.kind == "search_stop")
        self._respawn(self.shape.search, fault)

    def _peers_down(self) -> None:
        at = time.time()
        self.shape.smtp.down()
        self.shape.slack.down()
        self.faults.append(Fault("peers_down", "smtp+slack", at))

    def _peers_up(self) -> None:
        self.shape.smtp.up()
        self.shape.slack.up()
        fault = next(f for f in self.faults if f.kind == "peers_down")
        fault.back_at = fault.ready_at = time.time()

    # run

    def _ingest(self, errors: list[BaseException]) -> None:
        try:
            listed: list[str] = []
            for number, names in enumerate(self.plan):
                wait = self.t0 + self.pass_time(number) - time.time()
                if wait > 0:
                    time.sleep(wait)
                listed.extend(names)
                self.server.show(listed)
                self.shape.run_pass()
        except BaseException as exc:  # noqa: BLE001 - reported by run()
            errors.append(exc)

    def run(self) -> float:
        """The schedule; then a last pass. Returns when the last fault ended (epoch seconds)."""
        self.schedule()
        self.t0 = time.time()
        errors: list[BaseException] = []
        ingest = threading.Thread(target=self._ingest, args=(errors,), name="ingest", daemon=True)
        ingest.start()
        pending = list(self.events)
        while pending or ingest.is_alive():
            now = time.time() - self.t0
            while pending and pending[0].at <= now:
                event = pending.pop(0)
                print(f"  {now:6.1f} s  {event.what} {event.target}", flush=True)
                event.action()
            self.shape.check_slots()
            time.sleep(0.2)
        for thread in self._engine_threads:
            thread.join(300)
        if errors:
            raise errors[0]
        last = max([f.ready_at or f.back_at for f in self.faults if f.kind != "worker_kill"]
                   + [s.started_at[-1] for s in self.shape.slots])
        self.shape.run_pass()  # the feeds have been complete since the last regular pass: catch up what failed
        return last


# -- recovery and log checks ------------------------------------------------------------------------

def _slot_of(stage: str, logs: dict[str, SlotLog]) -> list[SlotLog]:
    return [log for name, log in logs.items() if name.split("-")[0] == stage]


def recoveries(faults: list[Fault], logs: dict[str, SlotLog], shape: Shape) -> list[dict[str, Any]]:
    """For each fault: how long the affected stage took to recover, and the log evidence."""
    out: list[dict[str, Any]] = []
    samples = shape.scraper.samples if shape.scraper else []
    for f in sorted(faults, key=lambda x: x.at):
        entry: dict[str, Any] = {"fault": f.kind, "target": f.target, "at": round(f.at, 3)}
        if f.kind == "worker_kill":
            log = logs[f.target]
            later = [ln for ln in log.lines if ln.incarnation > f.incarnation]
            joined = first_after(later, f.at, "assigned")
            live = next((s.at for s in samples if s.slot == f.target and s.at > f.at and s.live_status == 200), None)
            entry.update(restarted_after_s=None, rejoined_after_s=round(joined.at - f.at, 1) if joined else None,
                         live_after_s=round(live - f.at, 1) if live else None, recovered=joined is not None)
            slot = next(s for s in shape.slots if s.name == f.target)
            restart = next((t for t in slot.started_at if t > f.at), None)
            entry["restarted_after_s"] = round(restart - f.at, 1) if restart else None
        else:
            stages = {"broker_kill": ["enrich", "index", "alert"], "search_stop": ["index"],
                      "peers_down": ["alert"]}[f.kind]
            back = f.ready_at or f.back_at
            entry.update(down_s=round(back - f.at, 1), stages={}, scraped={})
            for stage in stages:
                for log in _slot_of(stage, logs):
                    entry["stages"][log.slot] = _stage_recovery(f, log, back)
                    if shape.scraper is not None:  # what the metrics endpoint said before, during and after
                        entry["scraped"][log.slot] = {
                            "before": shape.scraper.around(log.slot, f.at - 3),
                            "during": shape.scraper.around(log.slot, (f.at + back) / 2),
                            "after": shape.scraper.around(log.slot, back + 30),
                        }
            entry["recovered"] = all(s["recovered"] for s in entry["stages"].values())
        out.append(entry)
    return out


def _stage_recovery(f: Fault, log: SlotLog, back: float) -> dict[str, Any]:
    """Transient errors logged during the outage, then the first line showing the stage working again."""
    window = [ln for ln in log.lines if f.at <= ln.at <= back + 120]
    if f.kind == "peers_down":
        transient = [ln for ln in window if ln.kind == "delivery_retry"]
        recovered = first_after(log.lines, back, "sent")
    else:
        transient = [ln for ln in window if ln.kind in ("batch_retry", "commit_failed", "waiting", "kafka_error",
                                                        "index_error")]
        recovered = first_after(log.lines, back, "batch", "assigned")
    return {"transient_errors": len(transient),
            "first_transient": transient[0].text[:200] if transient else None,
            "recovery_line": recovered.text[:200] if recovered else None,
            "recovered_after_s": round(recovered.at - back, 1) if recovered else None,
            "recovered": recovered is not None}


# -- the run ---------------------------------------------------------------------------------------

def _summary(shape: Shape, data: dict[str, Any], drained_at: float, stopped: dict[str, int | None]
             ) -> dict[str, Any]:
    received = data["received"]
    ids = [d["id"] for d in data["documents"]]
    return {
        "articles_published": len(data["raw_ids"]),
        "raw_messages": data["raw_messages"],
        "documents_in_index": data["index_count"],
        "documents_exported": len(ids),
        "duplicate_documents": len(ids) - len(set(ids)),
        "raw_ids_not_indexed": len(set(data["raw_ids"]) - set(ids)),
        "alerts_raised": len(data["alerts"]),
        "alerts_indexed": len(data["indexed_alerts"]),
        "duplicate_alerts": len(data["alerts"]) - len({(a["topic"], a["title"]) for a in data["alerts"]}),
        "outbox": data["outbox"],
        "deliveries_received": {ch: len(r) for ch, r in received.items()},
        "duplicate_deliveries": {ch: duplicates(r) for ch, r in received.items()},
        "dead_letters": data["topics"].get("news.deadletter", 0),
        "topics": data["topics"],
        "passes": [asdict(p) for p in shape.passes],
        "worker_exit_codes_on_sigterm": stopped,
        "drained_at": drained_at,
    }


def _logs(shape: Shape) -> dict[str, SlotLog]:
    return {slot.name: read_log(slot.name, slot.text()) for slot in shape.slots}


def _pass_tracebacks(shape: Shape) -> int:
    return sum(p.read_text(encoding="utf-8", errors="replace").count("Traceback (most recent call last)")
               for p in sorted((shape.dir / "logs").glob("pass-*.log")))


def _run_shape(label: str, root: Path, kafka: KafkaEngine, search: OpenSearchEngine, server: ServerProcess,
               plan: list[list[str]], cfg: ChaosConfig, rng: random.Random) -> dict[str, Any]:
    print(f"== {label} run", flush=True)
    shape = Shape(label, root, kafka, search, server.feed_urls, cfg.partitions)
    try:
        shape.start()
        started = time.time()
        chaos = None
        if label == "clean":
            server.show([n for names in plan for n in names])
            shape.run_pass()
            last_fault = time.time()
        else:
            server.show([])
            chaos = Chaos(shape, server, plan, cfg, rng)
            last_fault = chaos.run()
        drained_at, backlog = shape.wait_drained(cfg.drain_timeout)
        stopped = shape.stop()
        logs = _logs(shape)
        data = shape.collect()
        summary = _summary(shape, data, drained_at, stopped)
        summary.update(
            seconds=round(drained_at - started, 1),
            drain_after_last_fault_s=round(drained_at - last_fault, 1),
            backlog_at_end=backlog,
            metrics=shape.scraper.summary() if shape.scraper else {},
            logs={name: {"incarnations": lg.incarnations, "tracebacks": lg.tracebacks, "error_lines": lg.errors,
                         "unparsed_lines": lg.unparsed, "lines_by_kind": _kinds(lg)} for name, lg in logs.items()},
            pass_tracebacks=_pass_tracebacks(shape),
            exits={s.name: [asdict(e) for e in s.exits] for s in shape.slots},
        )
        if chaos is not None:
            summary["faults"] = recoveries(chaos.faults, logs, shape)
        return {"summary": summary, "documents": data["documents"], "alerts": data["alerts"]}
    finally:
        shape.close()


def _kinds(log: SlotLog) -> dict[str, int]:
    out: dict[str, int] = {}
    for ln in log.lines:
        out[ln.kind] = out.get(ln.kind, 0) + 1
    return dict(sorted(out.items()))


def checks(chaos: dict[str, Any], diff: dict[str, Any], clean: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets, each a named pass/fail with its number."""
    s = chaos
    faults = s.get("faults", [])
    kills = [f for f in faults if f["fault"] == "worker_kill"]
    crashes = sum(1 for exits in s["exits"].values() for e in exits if e["cause"] == "crashed")
    dup_deliveries = sum(sum(n - 1 for n in d.values()) for d in s["duplicate_deliveries"].values())
    tracebacks = sum(lg["tracebacks"] for lg in s["logs"].values()) + s["pass_tracebacks"]
    livez_503 = sum(m["livez_503"] for m in s["metrics"].values())
    answered = sum(m["metrics_answered"] for m in s["metrics"].values())
    items = [
        ("no lost documents", len(diff["lost"]) == 0, len(diff["lost"])),
        ("no extra documents", len(diff["extra"]) == 0, len(diff["extra"])),
        ("no duplicate documents", s["duplicate_documents"] == 0 and not diff["duplicated"], s["duplicate_documents"]),
        ("no document differs from the clean run", not diff["differing"], len(diff["differing"])),
        ("every published article indexed", s["raw_ids_not_indexed"] == 0, s["raw_ids_not_indexed"]),
        ("alerts as in the clean run", s["alerts_raised"] == clean["alerts_raised"], s["alerts_raised"]),
        ("no duplicate alerts", s["duplicate_alerts"] == 0, s["duplicate_alerts"]),
        ("no duplicate deliveries", dup_deliveries == 0, dup_deliveries),
        ("every alert delivered on each channel",
         all(n == s["alerts_raised"] for n in s["deliveries_received"].values()), s["deliveries_received"]),
        ("no dead letters", s["dead_letters"] == 0, s["dead_letters"]),
        ("no traceback in any log", tracebacks == 0, tracebacks),
        ("no crash exit", crashes == 0, crashes),
        ("every worker stops cleanly on SIGTERM", all(c == 0 for c in s["worker_exit_codes_on_sigterm"].values()),
         s["worker_exit_codes_on_sigterm"]),
        ("every killed worker rejoined its group", all(k["recovered"] for k in kills), len(kills)),
        ("every engine/peer fault: transient errors then recovery",
         all(f["recovered"] and all(st["transient_errors"] > 0 for st in f["stages"].values())
             for f in faults if f["fault"] != "worker_kill"),
         {f["fault"]: {n: (st["transient_errors"], st["recovered_after_s"]) for n, st in f["stages"].items()}
          for f in faults if f["fault"] != "worker_kill"}),
        ("no stuck consumer (/livez never 503)", livez_503 == 0, livez_503),
        ("metrics endpoints answered during the run", answered > 0, answered),
        ("zero lag and an empty outbox at the end",
         s["backlog_at_end"].get("total_lag") == 0 and s["backlog_at_end"].get("outbox_owed") == 0,
         s["backlog_at_end"]),
    ]
    return [{"check": name, "ok": bool(ok), "value": value} for name, ok, value in items]


def table(report: dict[str, Any]) -> str:
    c, k = report["clean"], report["chaos"]
    d = report["comparison"]

    def deliveries(s: dict[str, Any]) -> str:
        return " / ".join(f"{n}" for _, n in sorted(s["deliveries_received"].items()))

    def dups(s: dict[str, Any]) -> int:
        return sum(sum(n - 1 for n in v.values()) for v in s["duplicate_deliveries"].values())

    rows = [
        ("articles published (distinct ids on news.articles.raw)", c["articles_published"], k["articles_published"]),
        ("messages on news.articles.raw beyond one per article", c["raw_messages"] - c["articles_published"],
         k["raw_messages"] - k["articles_published"]),
        ("documents in the index", c["documents_in_index"], k["documents_in_index"]),
        ("duplicate documents", c["duplicate_documents"], k["duplicate_documents"]),
        ("documents lost (vs clean)", "-", len(d["lost"])),
        ("documents differing from clean (text, entities, topics)", "-", len(d["differing"])),
        ("alerts raised", c["alerts_raised"], k["alerts_raised"]),
        ("duplicate alerts", c["duplicate_alerts"], k["duplicate_alerts"]),
        ("deliveries received email / slack", deliveries(c), deliveries(k)),
        ("duplicate deliveries", dups(c), dups(k)),
        ("dead letters", c["dead_letters"], k["dead_letters"]),
        ("drain after the last fault (s)", "-", k["drain_after_last_fault_s"]),
        ("run time, start to drained (s)", c["seconds"], k["seconds"]),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"| {'':{width}} | clean | chaos |", f"|{'-' * (width + 2)}|------:|------:|"]
    lines += [f"| {name:{width}} | {a!s:>5} | {b!s:>5} |" for name, a, b in rows]
    lines.append("")
    lines.append("| fault | count | down (s) | recovered after (s), per slot |")
    lines.append("|---|---:|---:|---|")
    kills: dict[str, list[float]] = {}
    for f in k.get("faults", []):
        if f["fault"] == "worker_kill":
            if f["rejoined_after_s"] is not None:
                kills.setdefault(f["target"], []).append(f["rejoined_after_s"])
            continue
        per = ", ".join(f"{n} {st['recovered_after_s']}" for n, st in f["stages"].items())
        lines.append(f"| {f['fault']} {f['target']} | 1 | {f['down_s']} | {per} |")
    for slot, times in sorted(kills.items()):
        times.sort()
        lines.append(f"| SIGKILL worker {slot} | {len(times)} | - | rejoined its group after median "
                     f"{times[len(times) // 2]}, max {times[-1]} |")
    return "\n".join(lines)


def run(report_path: Path = REPORT_PATH) -> dict[str, Any]:
    cfg = ChaosConfig.from_env()
    if not (DEFAULT_DIR / "ground-truth.json").exists() or not SEEDS_DIR.is_dir():
        print(f"chaos bench: skipped: benchmark pages ({DEFAULT_DIR}) or seeds ({SEEDS_DIR}) not found")
        return {"benchmark": "chaos", "skipped": "no data"}
    rng = random.Random(cfg.seed)
    pages, bench_names, seeds = build_pages(cfg.copies)
    hosts = tuple(f"127.0.0.{i}" for i in range(2, 2 + cfg.hosts))
    plan = release_plan(bench_names, seeds, cfg.passes, max(1, int(0.7 * cfg.passes)), rng)
    root = Path(tempfile.mkdtemp(prefix="newswatch-chaos-"))
    kafka = KafkaEngine(root / "kafka", port=free_port())
    search = OpenSearchEngine(root / "opensearch", port=free_port())
    load_before = os.getloadavg()
    started = time.time()
    try:
        try:
            kafka.spawn()
            search.spawn()
            kafka.wait_ready()
            search.wait_ready()
        except EngineError as exc:
            print(f"chaos bench: skipped: real engines unavailable: {exc}")
            return {"benchmark": "chaos", "skipped": f"engines unavailable: {exc}"}
        print(f"chaos bench: {len(pages)} pages on {len(hosts)} hosts, {cfg.passes} passes over {cfg.duration:.0f} s, "
              f"{cfg.kills} SIGKILLs per worker; engines in {root}", flush=True)
        with ServerProcess(pages, hosts) as server:
            clean = _run_shape("clean", root, kafka, search, server, plan, cfg, rng)
            chaos = _run_shape("chaos", root, kafka, search, server, plan, cfg, rng)
        diff = diff_documents(clean["documents"], chaos["documents"])
        report = {
            "benchmark": "chaos",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "load_average_before": [round(x, 2) for x in load_before]},
            "config": asdict(cfg),
            "input": {"pages": len(pages), "benchmark_pages": len(bench_names) // max(cfg.copies, 1),
                      "copies": cfg.copies, "seed_documents": len(seeds), "seed_copies": SEED_COPIES,
                      "hosts": list(hosts), "feeds": len(hosts)},
            "clean": clean["summary"],
            "chaos": chaos["summary"],
            "comparison": {**diff, "differing": dict(list(diff["differing"].items())[:20]),
                           "differing_count": len(diff["differing"]),
                           "clean_alerts": sorted((a["topic"], a["title"]) for a in clean["alerts"]),
                           "chaos_alerts": sorted((a["topic"], a["title"]) for a in chaos["alerts"])},
            "seconds": round(time.time() - started, 1),
        }
        report["checks"] = checks(report["chaos"], diff, report["clean"])
        report["targets_met"] = all(c["ok"] for c in report["checks"])
    finally:
        for engine in (kafka, search):
            try:
                engine.stop(timeout=60)
            except (EngineError, OSError):
                engine.kill()
        if os.environ.get("CHAOS_KEEP"):
            print(f"  kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(table(report))
    for c in report["checks"]:
        print(f"  [{'ok' if c['ok'] else 'FAILED'}] {c['check']}: {json.dumps(c['value'], default=str)[:300]}")
    print(f"  targets {'met' if report['targets_met'] else 'NOT met'}; report: {report_path}")
    report_path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    run()
