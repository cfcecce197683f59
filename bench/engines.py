"""The real engines (``pipeline.engines``): start-up, memory and throughput through our adapters.

* Start-up of Kafka 4 and OpenSearch 2.19, cold (Maven resolves every jar into an EMPTY local
  repository, as on a fresh machine: download included) and warm (the classpath cached, the jars
  in ``~/.m2``): seconds to resolve and seconds from spawn to ready.
* Each JVM's resident memory when ready and after the throughput runs (heaps are 512 MB).
* KafkaBus produce / consume + commit of 5 KB messages on the real broker (after one identical warm-up
  run, reported apart), beside the same run on librdkafka's in-process mock cluster
  (``bench.bus_index``), in the same process and minute.
* Bulk indexing into OpenSearch through ``OpenSearchIndex`` (2000 documents of 5 KB, bulks of 200,
  create-if-absent, which also creates 12 monthly indices), the replay of the same documents (all
  ``existing``), then 2000 new documents into the existing indices (steady state).

Writes ``bench/report-engines.json``. Needs Java 17+ and Maven (skipped otherwise).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench.bus_index import DOC_BATCH, DOCS, _bus_throughput, _docs, _index_throughput, _kafka
from pipeline.bus.kafka import KafkaBus
from pipeline.config import KafkaSettings, OpenSearchSettings
from pipeline.engines import JavaEngine, KafkaEngine, OpenSearchEngine, free_port
from pipeline.errors import EngineUnavailableError
from pipeline.index.opensearch import OpenSearchIndex

REPORT = Path(__file__).resolve().parent / "report-engines.json"
MB = 1024 * 1024


def _start(engine: JavaEngine, repo_local: Path | None) -> dict[str, Any]:
    """Resolve (into ``repo_local`` when given: cold) and start; the timings."""
    t0 = time.perf_counter()
    classpath = engine.prepare(repo_local=repo_local)
    resolve_s = time.perf_counter() - t0
    ready_s = engine.start()
    return {"resolve_s": round(resolve_s, 1), "classpath_cached": classpath.cached, "jars": len(classpath.jars),
            "spawn_to_ready_s": round(ready_s, 1), "total_s": round(resolve_s + ready_s, 1),
            "rss_ready_mb": round(engine.rss_bytes() / MB)}


def _startups(root: Path) -> dict[str, Any]:
    """Cold then warm start of each engine (one at a time, so they do not compete for the two cores)."""
    out: dict[str, Any] = {}
    for cls in (KafkaEngine, OpenSearchEngine):
        cold_repo = root / f"m2-cold-{cls.name}"
        cold = cls(root / f"{cls.name}-cold", port=free_port())
        try:
            cold_run = _start(cold, cold_repo)
        finally:
            cold.stop()
        warm = cls(root / f"{cls.name}-warm", port=free_port())
        try:
            warm_run = _start(warm, None)
        finally:
            warm.stop()
        out[cls.name] = {"cold": cold_run, "warm": warm_run}
    return out


def _kafka_broker(engine: KafkaEngine) -> dict[str, Any]:
    """The same run as on the mock, twice: the first one meets a broker whose JIT is cold (reported apart)."""
    out: dict[str, Any] = {}
    for run in ("first_run", "warm_run"):
        bus = KafkaBus(KafkaSettings(bootstrap_servers=engine.bootstrap_servers, topic_prefix=f"bench-{run}."))
        try:
            out[run] = _bus_throughput(bus, "news.articles.raw")
        finally:
            bus.close()
    return {**out["warm_run"], "first_run": out["first_run"]}


def _opensearch(engine: OpenSearchEngine) -> dict[str, Any]:
    index = OpenSearchIndex(OpenSearchSettings(url=SecretStr(engine.url), index_prefix=f"bench-{uuid.uuid4().hex[:6]}"))
    try:
        first = _index_throughput(index)  # also creates the 12 monthly indices
        more = _docs(2 * DOCS)[DOCS:]
        start = time.perf_counter()
        created = sum(index.index_documents(more[i: i + DOC_BATCH]).created for i in range(0, DOCS, DOC_BATCH))
        first["steady_docs_per_s"] = round(DOCS / (time.perf_counter() - start))
        first["steady_created"] = created
        return first
    finally:
        index.drop_everything()
        index.close()


def run() -> dict[str, Any]:
    try:
        from pipeline.engines import find_java, find_maven

        find_java()
        find_maven()
    except EngineUnavailableError as exc:
        report: dict[str, Any] = {"skipped": str(exc)}
        print(json.dumps(report))
        return report
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="newswatch-bench-engines-") as tmp:
        root = Path(tmp)
        startup = _startups(root)
        kafka = KafkaEngine(root / "kafka", port=free_port())
        node = OpenSearchEngine(root / "opensearch", port=free_port())
        try:
            kafka.spawn()
            node.spawn()
            kafka.wait_ready()
            node.wait_ready()
            mock = _kafka()
            broker = _kafka_broker(kafka)
            indexing = _opensearch(node)
            rss_loaded = {"kafka": round(kafka.rss_bytes() / MB), "opensearch": round(node.rss_bytes() / MB)}
        finally:
            kafka.stop()
            node.stop()
    report = {
        "kafka_cold_start_s": startup["kafka"]["cold"]["total_s"],
        "kafka_warm_start_s": startup["kafka"]["warm"]["total_s"],
        "opensearch_cold_start_s": startup["opensearch"]["cold"]["total_s"],
        "opensearch_warm_start_s": startup["opensearch"]["warm"]["total_s"],
        "kafka_broker_produce_msgs_per_s": broker["produce_msgs_per_s"],
        "kafka_broker_consume_msgs_per_s": broker["consume_msgs_per_s"],
        "kafka_mock_produce_msgs_per_s": mock.get("produce_msgs_per_s"),
        "kafka_mock_consume_msgs_per_s": mock.get("consume_msgs_per_s"),
        "opensearch_index_docs_per_s": indexing["create_docs_per_s"],
        "opensearch_replay_docs_per_s": indexing["replay_docs_per_s"],
        "opensearch_steady_docs_per_s": indexing["steady_docs_per_s"],
        "heap": "512m each",
        "load_avg_1m_before": load_before,
        "cores": os.cpu_count(),
        "startup": startup,
        "rss_mb_after_load": rss_loaded,
        "kafka_broker": broker,
        "kafka_mock": mock,
        "opensearch_index": indexing,
    }
    REPORT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    run()
