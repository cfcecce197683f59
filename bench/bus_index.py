"""Throughput of the bus and index backends.

* KafkaBus on librdkafka's in-process mock cluster (one broker): publish (acks=all,
  idempotent, every future checked) and consume + commit, 5 KB JSON messages.
* SQLiteBus, same messages, for comparison.
* SQLiteIndex bulk create (create-if-absent), 5 KB documents; ElasticsearchIndex too when
  ``ELASTICSEARCH_URL`` is set (into a throw-away ``newswatch-bench-*`` prefix, deleted after).

The mock cluster runs in this process, so Kafka numbers measure the client and protocol
path, not a networked broker's disks; treat them as an upper bound of what the client costs.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from pipeline.bus.base import MessageBus, OutMessage

MESSAGES = 3000  # the mock cluster keeps only ~5 MB per partition (4 partitions): stay below
MESSAGE_BYTES = 5 * 1024
BATCH = 500
DOCS = 2000
DOC_BATCH = 200


def _messages(n: int) -> list[OutMessage]:
    filler = ("al-Tanf garrison Deir ez-Zor convoy desert " * 200)[: MESSAGE_BYTES - 120]
    return [OutMessage(key=f"doc{i:06d}", value={"schema_version": 1, "n": i, "text": filler}) for i in range(n)]


def _bus_throughput(bus: MessageBus, topic: str) -> dict[str, float]:
    msgs = _messages(MESSAGES)
    size = len(json.dumps(msgs[0].value))
    start = time.perf_counter()
    for i in range(0, len(msgs), BATCH):
        bus.publish(topic, msgs[i : i + BATCH])
    produce_s = time.perf_counter() - start
    consumer = bus.consumer(topic, f"bench-{uuid.uuid4().hex[:6]}")
    got = 0
    start = time.perf_counter()
    deadline = start + 120
    while got < MESSAGES and time.perf_counter() < deadline:
        batch = consumer.poll(max_records=BATCH, timeout=1.0)
        if batch:
            consumer.commit(batch)
            got += len(batch)
    consume_s = time.perf_counter() - start
    consumer.close()
    return {
        "message_bytes": size,
        "messages": got,
        "produce_msgs_per_s": round(MESSAGES / produce_s),
        "consume_msgs_per_s": round(got / consume_s) if consume_s else 0,
        "produce_mb_per_s": round(MESSAGES * size / produce_s / 1e6, 1),
    }


def _kafka() -> dict[str, Any]:
    try:
        import confluent_kafka
    except ImportError:
        return {"skipped": "confluent-kafka (mock cluster) not installed"}
    from pipeline.bus.kafka import KafkaBus
    from pipeline.config import KafkaSettings

    cluster = confluent_kafka.Producer({"test.mock.num.brokers": 1, "log_level": 3})
    address = ",".join(f"{b.host}:{b.port}" for b in cluster.list_topics(timeout=5).brokers.values())
    bus = KafkaBus(KafkaSettings(bootstrap_servers=address, api_version="2.0", topic_prefix="bench."))
    try:
        return _bus_throughput(bus, "news.articles.raw")
    finally:
        bus.close()
        del cluster


def _sqlite_bus(tmp: Path) -> dict[str, Any]:
    from pipeline.bus.sqlite import SQLiteBus

    bus = SQLiteBus(tmp / "bus.sqlite3")
    try:
        return _bus_throughput(bus, "news.articles.raw")
    finally:
        bus.close()


def _docs(n: int) -> list[dict[str, Any]]:
    body = ("The coalition garrison at al-Tanf trained partner forces; convoys crossed the desert. " * 60)[:5000]
    return [
        {"id": f"bench{i:06d}", "url": f"https://bench.example/{i}", "title": f"Bench story {i} about al-Tanf",
         "text": body, "source": "bench.example", "feed_url": "", "authors": [],
         "published": f"2017-{1 + i % 12:02d}-15T08:00:00+00:00", "fetched_at": "2026-11-20T10:00:00+00:00",
         "language": "en", "entities": [{"id": "al-tanf", "type": "base", "kind": "place", "name": "al-Tanf",
                                         "count": 1, "lat": 33.49, "lon": 38.63, "governorate": None}],
         "topics": ["al-tanf"], "topic_reasons": [], "enriched_at": "2026-11-20T10:00:01+00:00"}
        for i in range(n)
    ]


def _index_throughput(index: Any) -> dict[str, Any]:
    docs = _docs(DOCS)
    start = time.perf_counter()
    created = 0
    for i in range(0, len(docs), DOC_BATCH):
        created += index.index_documents(docs[i : i + DOC_BATCH]).created
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    existing = sum(index.index_documents(docs[i : i + DOC_BATCH]).existing for i in range(0, len(docs), DOC_BATCH))
    replay_s = time.perf_counter() - start
    return {"docs": DOCS, "created": created, "existing_on_replay": existing,
            "create_docs_per_s": round(DOCS / first_s), "replay_docs_per_s": round(DOCS / replay_s)}


def _sqlite_index(tmp: Path) -> dict[str, Any]:
    from pipeline.index.sqlite import SQLiteIndex

    index = SQLiteIndex(tmp / "index.sqlite3")
    try:
        return _index_throughput(index)
    finally:
        index.close()


def _es_index() -> dict[str, Any]:
    url = os.environ.get("ELASTICSEARCH_URL")
    if not url:
        return {"skipped": "ELASTICSEARCH_URL not set"}
    from pydantic import SecretStr

    from pipeline.config import ElasticsearchSettings
    from pipeline.index.elasticsearch import ElasticsearchIndex

    prefix = f"newswatch-bench-{uuid.uuid4().hex[:6]}"
    index = ElasticsearchIndex(ElasticsearchSettings(url=SecretStr(url), index_prefix=prefix))
    try:
        return _index_throughput(index)
    finally:
        for row in index._request("GET", f"/_cat/indices/{prefix}-*", params={"format": "json", "h": "index"}):
            index._request("DELETE", f"/{row['index']}")
        for name in (f"{prefix}-articles", f"{prefix}-alerts"):
            index._request("DELETE", f"/_index_template/{name}")
        index.close()


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="newswatch-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        kafka = _kafka()
        sqlite_bus = _sqlite_bus(tmp)
        sqlite_index = _sqlite_index(tmp)
    es = _es_index()
    report: dict[str, Any] = {
        "kafka_produce_msgs_per_s": kafka.get("produce_msgs_per_s"),
        "kafka_consume_msgs_per_s": kafka.get("consume_msgs_per_s"),
        "sqlite_bus_produce_msgs_per_s": sqlite_bus["produce_msgs_per_s"],
        "sqlite_bus_consume_msgs_per_s": sqlite_bus["consume_msgs_per_s"],
        "sqlite_index_docs_per_s": sqlite_index["create_docs_per_s"],
        "es_index_docs_per_s": es.get("create_docs_per_s"),
        "kafka_mock": kafka,
        "sqlite_bus": sqlite_bus,
        "sqlite_index": sqlite_index,
        "elasticsearch_index": es,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    run()
