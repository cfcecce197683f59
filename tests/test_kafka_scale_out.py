"""Scale-out on the real Kafka 4 broker: two ``worker index`` processes split a 6-partition topic, and when one
is SIGKILLed its partitions move to the other; every document ends up in OpenSearch exactly once."""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO

import pytest
from engines_pool import config_dir_with
from pydantic import SecretStr

from pipeline.bus import TOPIC_ENRICHED, OutMessage
from pipeline.bus.kafka import KafkaBus
from pipeline.bus.kafka_consumer import SESSION_TIMEOUT_MS
from pipeline.config import KafkaSettings, OpenSearchSettings
from pipeline.engines import KafkaEngine, OpenSearchEngine, die_with_parent
from pipeline.errors import TransientIndexError
from pipeline.index.opensearch import OpenSearchIndex
from pipeline.models import Article, EnrichedArticle, TagResult

PROJECT = Path(__file__).resolve().parents[1]
PARTITIONS = 6
ASSIGNED = re.compile(r"kafka consumer newswatch-index: assigned partitions (\{.*\})")
BATCH = re.compile(r"stage index: batch \S*news\.articles\.enriched((?:\[\d+\]@\d+-\d+,?)+)")


def _enriched(start: int, n: int) -> list[OutMessage]:
    out = []
    for i in range(start, start + n):
        article = Article(id=f"so{i:04d}", url=f"https://example.org/so/{i}", title=f"Convoy near al-Tanf {i}",
                          text="Advisers at the al-Tanf garrison trained partner forces. " * 5,
                          fetched_at="2026-11-20T10:00:00+00:00", published="2017-05-12T08:00:00+00:00")
        out.append(OutMessage(article.id, EnrichedArticle(article, TagResult(), "2026-11-20T10:00:01+00:00").to_dict()))
    return out


class Worker:
    """``python -m pipeline worker index`` with its log in a file we can read while it runs."""

    def __init__(self, name: str, env: dict[str, str], tmp: Path) -> None:
        self.log_path = tmp / f"worker-{name}.log"
        self._log: IO[str] = self.log_path.open("w", encoding="utf-8")
        self.proc = subprocess.Popen([sys.executable, "-m", "pipeline", "worker", "index", "--poll-timeout", "0.5"],
                                     cwd=PROJECT, env=env, stdout=self._log, stderr=subprocess.STDOUT, text=True,
                                     preexec_fn=die_with_parent)  # an interrupted run leaves no worker behind

    def text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def enriched_partitions(self) -> list[int]:
        """The enriched-topic partitions of its latest assignment."""
        found = ASSIGNED.findall(self.text())
        if not found:
            return []
        latest = ast.literal_eval(found[-1])
        return next((parts for topic, parts in latest.items() if topic.endswith("news.articles.enriched")), [])

    def batch_partitions(self) -> set[int]:
        return {int(p) for spans in BATCH.findall(self.text()) for p in re.findall(r"\[(\d+)\]", spans)}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self._log.close()


def _count(index: OpenSearchIndex) -> int:
    try:
        return index.count()
    except TransientIndexError:  # the workers' first write is still creating the monthly index
        return -1


def _wait(what: str, condition, timeout: float = 120.0) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - start


@pytest.mark.slow
def test_two_index_workers_split_partitions_and_take_over_after_sigkill(
        real_kafka: KafkaEngine, real_opensearch: OpenSearchEngine, env: dict[str, str], tmp_path: Path) -> None:
    prefix = f"so{uuid.uuid4().hex[:8]}"
    config_dir = config_dir_with(tmp_path, topic_prefix=f"{prefix}.", index_prefix=prefix)
    worker_env = {**os.environ, **env, "PIPELINE_CONFIG_DIR": str(config_dir), "PIPELINE_BUS": "kafka",
                  "KAFKA_BOOTSTRAP_SERVERS": real_kafka.bootstrap_servers, "PIPELINE_INDEX": "opensearch",
                  "OPENSEARCH_URL": real_opensearch.url}
    worker_env.pop("KAFKA_API_VERSION", None)
    bus = KafkaBus(KafkaSettings(bootstrap_servers=real_kafka.bootstrap_servers, topic_prefix=f"{prefix}."),
                   partitions=PARTITIONS)
    index = OpenSearchIndex(OpenSearchSettings(url=SecretStr(real_opensearch.url), index_prefix=prefix))
    workers: list[Worker] = []
    try:
        a = Worker("a", worker_env, tmp_path)
        workers.append(a)
        _wait("worker a to own all 6 partitions", lambda: len(a.enriched_partitions()) == PARTITIONS)
        b = Worker("b", worker_env, tmp_path)
        workers.append(b)
        _wait("the group to split the partitions between a and b",
              lambda: a.enriched_partitions() and b.enriched_partitions()
              and sorted(a.enriched_partitions() + b.enriched_partitions()) == list(range(PARTITIONS)))

        bus.publish(TOPIC_ENRICHED, _enriched(0, 120))
        _wait("120 documents indexed", lambda: _count(index) == 120)
        assert a.batch_partitions() and b.batch_partitions(), "both workers processed batches"
        assert not a.batch_partitions() & b.batch_partitions(), "each partition had one owner"
        b_partitions = b.enriched_partitions()

        bus.publish(TOPIC_ENRICHED, _enriched(120, 120))
        os.kill(b.proc.pid, signal.SIGKILL)  # mid-stream: b's uncommitted batch goes to a
        killed = time.monotonic()
        b.proc.wait(30)
        took = _wait("a to take over b's partitions", lambda: a.enriched_partitions() == list(range(PARTITIONS)))
        print(f"partitions moved {time.monotonic() - killed:.1f} s after the SIGKILL")
        assert took < SESSION_TIMEOUT_MS / 1000 + 20, f"partitions moved after {time.monotonic() - killed:.1f} s"
        _wait("all 240 documents indexed", lambda: _count(index) == 240)
        assert set(b_partitions) <= a.batch_partitions(), "a processed b's partitions after the kill"
        ids = sorted(d["id"] for d in index.export())
        assert ids == [f"so{i:04d}" for i in range(240)], "every document once, none lost"
        _wait("the group's lag to reach 0", lambda: next(
            s for s in bus.stats(["newswatch-index"]) if s.topic == TOPIC_ENRICHED).lag["newswatch-index"] == 0,
            timeout=30)
        a.proc.send_signal(signal.SIGTERM)
        assert a.proc.wait(60) == 0, a.text()[-2000:]
        assert re.search(r"worker index: \d+ batches, \d+ processed, 0 dead-lettered", a.text())
    finally:
        for w in workers:
            w.stop()
        index.drop_everything()
        index.close()
        bus.close()
