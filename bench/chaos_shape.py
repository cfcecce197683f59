"""The production shape the failure benchmark runs, once clean and once under faults.

One :class:`Shape` is one deployment on the shared engines, isolated by name (its own Kafka topic
prefix, which namespaces the consumer groups too, and its own search-index prefix): the three
worker stages as separate processes (``enrich``, two ``index`` in one consumer group, ``alert``),
each with ``--metrics-port``; the ingest as ``python -m pipeline run --once`` passes; the alert
peers (SMTP and Slack stand-in); its own data directory (feed state, alert outbox) and config.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.alerts.store import AlertStore
from pipeline.bus import TOPIC_ALERTS, TOPIC_ENRICHED, TOPIC_RAW
from pipeline.bus.kafka import KafkaBus
from pipeline.config import Settings, load_settings
from pipeline.engines import KafkaEngine, OpenSearchEngine, die_with_parent, free_port
from pipeline.errors import PipelineError
from pipeline.index.opensearch import OpenSearchIndex
from pipeline.stages import AlertStage, EnrichStage, IndexStage

from .chaos_peers import SlackPeer, SMTPPeer
from .chaos_procs import PROJECT, Scraper, Supervised, worker_env

__all__ = ["PassRun", "Shape", "SLOTS"]

#: worker slots: (slot name, stage)
SLOTS = (("enrich", "enrich"), ("index-a", "index"), ("index-b", "index"), ("alert", "alert"))
GROUPS = {"enrich": (EnrichStage.group, (TOPIC_RAW,)), "index": (IndexStage.group, (TOPIC_ENRICHED, TOPIC_ALERTS)),
          "alert": (AlertStage.group, (TOPIC_ENRICHED,))}


@dataclass
class PassRun:
    """One ``run --once`` pass."""

    number: int
    started: float
    ended: float
    exit_code: int
    published: int | None
    error: str


class Shape:
    """One deployment of the production shape under ``root/label``."""

    def __init__(self, label: str, root: Path, kafka: KafkaEngine, search: OpenSearchEngine, feed_urls: list[str],
                 partitions: int) -> None:
        self.label = label
        self.dir = root / label
        self.kafka = kafka
        self.search = search
        self.feed_urls = feed_urls
        self.partitions = partitions
        self.smtp = SMTPPeer()
        self.slack = SlackPeer()
        self.slots: list[Supervised] = []
        self.passes: list[PassRun] = []
        self.env: dict[str, str] = {}
        self.scraper: Scraper | None = None
        self._pass_lock = threading.Lock()

    # -- set-up ------------------------------------------------------------------------------

    def _write_config(self) -> Path:
        config_dir = self.dir / "config"
        shutil.copytree(PROJECT / "config", config_dir)
        settings = config_dir / "settings.yaml"
        data = yaml.safe_load(settings.read_text(encoding="utf-8")) or {}
        data.setdefault("kafka", {})["topic_prefix"] = f"{self.label}."
        data.setdefault("opensearch", {})["index_prefix"] = f"nw-{self.label}"
        data["fetch"] = {**data.get("fetch", {}), "per_host_concurrency": 4, "delay_seconds": 0,
                         "allow_hosts": ["127.0.0.0/8"]}
        settings.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        feeds = self.dir / "feeds.yaml"
        feeds.write_text(yaml.safe_dump({"feeds": [{"url": u, "name": f"chaos host {i}"}
                                                   for i, u in enumerate(self.feed_urls)]}), encoding="utf-8")
        return config_dir

    def start(self) -> None:
        self.dir.mkdir(parents=True)
        config_dir = self._write_config()
        self.smtp.up()
        self.slack.up()
        self.env = worker_env({
            "PIPELINE_CONFIG_DIR": str(config_dir),
            "PIPELINE_DATA_DIR": str(self.dir / "var"),
            "PIPELINE_FEEDS": str(self.dir / "feeds.yaml"),
            "PIPELINE_BUS": "kafka",
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "PIPELINE_INDEX": "opensearch",
            "OPENSEARCH_URL": self.search.url,
            "SMTP_URL": self.smtp.url,
            "SLACK_WEBHOOK_URL": self.slack.url,
            "PIPELINE_LOG_LEVEL": "INFO",
            "PIPELINE_EXTRACT_WORKERS": "2",
        })
        bus = KafkaBus(self.settings().kafka, partitions=self.partitions)  # topics as an operator creates them
        bus.close()
        logs = self.dir / "logs"
        logs.mkdir()
        self.slots = [Supervised(name, stage, self.env, logs / f"{name}.log", free_port()) for name, stage in SLOTS]
        for slot in self.slots:
            slot.start()
        self._wait_live()
        self.scraper = Scraper(self.slots).__enter__()

    def settings(self) -> Settings:
        return load_settings(self.env)

    def _wait_live(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(self.slots)
        while waiting:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.label}: workers not live after {timeout:.0f} s: "
                                   f"{[s.name for s in waiting]}; {waiting[0].text()[-1500:]}")
            for slot in list(waiting):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{slot.metrics_port}/livez", timeout=2) as r:
                        if r.status == 200:
                            waiting.remove(slot)
                except OSError:
                    pass
            time.sleep(0.5)

    # -- work --------------------------------------------------------------------------------

    def run_pass(self) -> PassRun:
        """One ``run --once --json`` (ingest: poll, fetch, extract, publish to Kafka)."""
        with self._pass_lock:
            number = len(self.passes) + 1
            log = self.dir / "logs" / f"pass-{number:02d}.log"
            started = time.time()
            with log.open("wb") as err:
                proc = subprocess.run([sys.executable, "-m", "pipeline", "run", "--once", "--json"],  # noqa: S603
                                      cwd=PROJECT, env=self.env, stdout=subprocess.PIPE, stderr=err,
                                      stdin=subprocess.DEVNULL, preexec_fn=die_with_parent, timeout=1800)
            published = None
            for line in proc.stdout.decode("utf-8", errors="replace").splitlines():
                try:
                    published = int(json.loads(line)["ingest"]["published"])
                except (ValueError, KeyError, TypeError):
                    continue
            text = log.read_text(encoding="utf-8", errors="replace")
            error = next((ln for ln in text.splitlines() if ln.startswith("newswatch: error")), "")
            run = PassRun(number, started, time.time(), proc.returncode, published, error)
            self.passes.append(run)
            return run

    def check_slots(self) -> None:
        for slot in self.slots:
            slot.check()

    def backlog(self, bus: KafkaBus) -> dict[str, Any]:
        """Consumer lag per stage and topic, and the outbox rows still owed."""
        stats = {s.topic: s for s in bus.stats([g for g, _ in GROUPS.values()])}
        lag = {stage: {t: stats[t].lag.get(group, 0) for t in topics} for stage, (group, topics) in GROUPS.items()}
        store = AlertStore(self.settings().alerts_db)
        try:
            counts = store.outbox_counts()
        finally:
            store.close()
        return {"lag": lag, "total_lag": sum(sum(v.values()) for v in lag.values()),
                "outbox_owed": counts.get("pending", 0) + counts.get("sending", 0), "outbox": counts}

    def wait_drained(self, timeout: float) -> tuple[float, dict[str, Any]]:
        """Until zero consumer lag and an empty outbox; returns (time drained, last backlog)."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        bus: KafkaBus | None = None
        try:
            while time.monotonic() < deadline:
                self.check_slots()
                try:
                    if bus is None:
                        bus = KafkaBus(self.settings().kafka, create_topics=False)
                    last = self.backlog(bus)
                    if last["total_lag"] == 0 and last["outbox_owed"] == 0:
                        return time.time(), last
                except PipelineError as exc:
                    last = {"error": str(exc)}
                time.sleep(2.0)
        finally:
            if bus is not None:
                bus.close()
        raise TimeoutError(f"{self.label}: not drained after {timeout:.0f} s: {last}")

    # -- results -----------------------------------------------------------------------------

    def stop(self) -> dict[str, int | None]:
        """Scraper off, every worker SIGTERMed (exit codes), peers down."""
        if self.scraper is not None:
            self.scraper.__exit__()
        codes = {slot.name: slot.stop() for slot in self.slots}
        return codes

    def close(self) -> None:
        for slot in self.slots:
            slot.close()
        self.smtp.down()
        self.slack.down()

    def collect(self) -> dict[str, Any]:
        """Documents, alerts, deliveries and bus counts of this deployment."""
        settings = self.settings()
        index = OpenSearchIndex(settings.opensearch)
        try:
            documents = list(index.export())
            indexed_alerts = index.alerts()
            count = index.count()
        finally:
            index.close()
        bus = KafkaBus(settings.kafka, create_topics=False)
        try:
            raw = _audit(bus, TOPIC_RAW, f"audit-{self.label}")
            topics = {s.topic: s.messages for s in bus.stats()}
        finally:
            bus.close()
        store = AlertStore(settings.alerts_db)
        try:
            alerts = [(rec, created) for rec, _delivery, created in store.all_alerts()]
            rows = store.outbox_rows()
        finally:
            store.close()
        sent = Counter(r.channel for r in rows if r.status == "sent")
        return {
            "documents": documents,
            "index_count": count,
            "indexed_alerts": indexed_alerts,
            "raw_messages": raw["messages"],
            "raw_ids": raw["ids"],
            "topics": topics,
            "alerts": [{"id": rec.id, "topic": rec.topic, "title": rec.title, "story_id": rec.story_id,
                        "doc_id": rec.doc_id, "created": created} for rec, created in alerts],
            "outbox": {"sent": dict(sent), "by_status": dict(Counter(r.status for r in rows)),
                       "max_attempts": max((r.attempts for r in rows), default=0)},
            "received": {"email": self.smtp.recorder.snapshot(), "slack": self.slack.recorder.snapshot()},
        }


def _audit(bus: KafkaBus, topic: str, group: str) -> dict[str, Any]:
    """Every message on ``topic`` (read from the start, nothing committed): count and distinct keys."""
    consumer = bus.consumer(topic, group)
    keys: list[str] = []
    try:
        empty = 0
        while empty < 2:
            batch = consumer.poll(max_records=500, timeout=2.0)
            empty = 0 if batch else empty + 1
            keys.extend(m.key for m in batch)
    finally:
        consumer.close()
    return {"messages": len(keys), "ids": sorted(set(keys))}
