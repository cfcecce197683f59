"""The main job on Kafka gives what the embedded run gives: on librdkafka's mock cluster, and on the real
Kafka 4 broker with the real OpenSearch node as the index."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import fixtures_kafka
import pytest
from engines_pool import config_dir_with
from ports import free_port_block
from pydantic import SecretStr

from pipeline.cli import main

kafka_cluster = fixtures_kafka.kafka_cluster


def _free_port_block(n: int = 3) -> int:
    return free_port_block(n)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict | list:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    if argv[0] == "export":
        return [json.loads(line) for line in out.splitlines()]
    return json.loads(out)


def _view(docs: list[dict], summary: dict) -> tuple:
    """What must match. Not the ids themselves: they hash the URL, whose port changes when the
    demo's usual ports are busy; so documents are compared by URL path and content: title, text,
    date, entities and topics."""
    return (
        sorted((urlsplit(d["url"]).path, d["title"], d["text"], d["published"],
                tuple(sorted(e["id"] for e in d["entities"])), tuple(sorted(d["topics"]))) for d in docs),
        sorted((a["topic"], a["title"]) for a in summary["drain"]["alerts"]),
        {k: v for k, v in summary["drain"].items() if k != "alerts"},
    )


@pytest.mark.slow
def test_demo_on_kafka_matches_the_embedded_run(env: dict[str, str], kafka_cluster: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    port = str(_free_port_block())
    embedded = _run(capsys, "demo", "--json", "--port", port)
    embedded_docs = _run(capsys, "export", "--jsonl")
    assert embedded["drain"]["alerts"], "the embedded demo raises alerts"

    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "var-kafka"))
    monkeypatch.setenv("PIPELINE_BUS", "kafka")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_cluster)
    monkeypatch.setenv("KAFKA_API_VERSION", "2.0")
    on_kafka = _run(capsys, "demo", "--json", "--port", port)
    kafka_docs = _run(capsys, "export", "--jsonl")
    assert _view(kafka_docs, on_kafka) == _view(embedded_docs, embedded)
    assert on_kafka["ingest"]["published"] == embedded["ingest"]["published"]

    status = _run(capsys, "status", "--json")
    assert status["bus"] == "kafka"
    assert status["topics"]["news.articles.raw"] == on_kafka["ingest"]["published"]
    assert all(n == 0 for lags in status["lag"].values() for n in lags.values()), status["lag"]
    assert status["deadlettered"] == on_kafka["drain"]["deadlettered"]
    assert status["index"]["documents"] == len(kafka_docs)

    again = _run(capsys, "demo", "--json", "--port", port)  # offsets committed in Kafka: nothing is redone
    assert again["ingest"]["published"] == 0
    assert (again["drain"]["enriched"], again["drain"]["indexed"], again["drain"]["alerts_raised"]) == (0, 0, 0)


@pytest.mark.slow
def test_demo_on_kafka_and_opensearch_matches_the_embedded_run(env: dict[str, str], real_kafka, real_opensearch,  # type: ignore[no-untyped-def]
                                                               tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """PIPELINE_BUS=kafka PIPELINE_INDEX=opensearch python -m pipeline demo, on the real engines, protocol negotiated."""
    port = str(_free_port_block())
    embedded = _run(capsys, "demo", "--json", "--port", port)
    embedded_docs = _run(capsys, "export", "--jsonl")

    prefix = f"demo{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PIPELINE_CONFIG_DIR", str(config_dir_with(tmp_path, topic_prefix=f"{prefix}.",
                                                                  index_prefix=prefix)))
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "var-engines"))
    monkeypatch.setenv("PIPELINE_BUS", "kafka")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", real_kafka.bootstrap_servers)
    monkeypatch.setenv("PIPELINE_INDEX", "opensearch")
    monkeypatch.setenv("OPENSEARCH_URL", real_opensearch.url)
    try:
        on_engines = _run(capsys, "demo", "--json", "--port", port)
        engine_docs = _run(capsys, "export", "--jsonl")
        assert len(engine_docs) == len(embedded_docs) > 0
        assert _view(engine_docs, on_engines) == _view(embedded_docs, embedded)
        assert sorted(d["id"] for d in engine_docs) == sorted(d["id"] for d in embedded_docs)  # same URLs: same ids
        assert on_engines["ingest"]["published"] == embedded["ingest"]["published"]

        status = _run(capsys, "status", "--json")
        assert (status["bus"], status["index"]["backend"]) == ("kafka", "opensearch")
        assert status["topics"]["news.articles.raw"] == on_engines["ingest"]["published"]
        assert all(n == 0 for lags in status["lag"].values() for n in lags.values()), status["lag"]
        assert status["index"]["documents"] == len(engine_docs)

        again = _run(capsys, "demo", "--json", "--port", port)  # offsets in Kafka, documents in OpenSearch: nothing redone
        assert again["ingest"]["published"] == 0
        assert (again["drain"]["enriched"], again["drain"]["indexed"], again["drain"]["alerts_raised"]) == (0, 0, 0)
        assert len(_run(capsys, "export", "--jsonl")) == len(engine_docs)
    finally:
        from pipeline.config import OpenSearchSettings
        from pipeline.index.opensearch import OpenSearchIndex

        index = OpenSearchIndex(OpenSearchSettings(url=SecretStr(real_opensearch.url), index_prefix=prefix))
        index.drop_everything()
        index.close()
