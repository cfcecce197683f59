"""OpenSearchIndex beyond the shared contract: per-item 429/409/400 outcomes, search and export through the
CLI, all on the session's real OpenSearch 2.19 node; credentials and version checks against a local server."""

from __future__ import annotations

import base64
import json
import logging
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from engines_pool import config_dir_with
from es_server import fake_elasticsearch
from pydantic import SecretStr
from test_index_contract import CORPUS, doc

from pipeline.cli import main
from pipeline.config import OpenSearchSettings
from pipeline.engines import OpenSearchEngine
from pipeline.errors import ConfigError, TransientIndexError
from pipeline.index.opensearch import OpenSearchIndex


def _open(url: str, prefix: str, **kw: object) -> OpenSearchIndex:
    return OpenSearchIndex(OpenSearchSettings(url=SecretStr(url), index_prefix=prefix, request_timeout=10),
                           retry_backoff=0.0, **kw)  # type: ignore[arg-type]


@pytest.fixture
def prefix() -> str:
    return f"nw-os-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def index(real_opensearch: OpenSearchEngine, prefix: str) -> Iterator[OpenSearchIndex]:
    idx = _open(real_opensearch.url, prefix)
    yield idx
    idx.drop_everything()
    idx.close()


def _block(idx: OpenSearchIndex, index_name: str, blocked: bool) -> None:
    """The flood-stage block a full disk sets: writes to that index answer 429 per bulk item."""
    idx._request("PUT", f"/{index_name}/_settings",
                 body={"index.blocks.read_only_allow_delete": True if blocked else None})


def test_per_item_429_is_retried_and_then_created(index: OpenSearchIndex, prefix: str) -> None:
    may = f"{prefix}-articles-2017.05"
    assert index.index_documents([CORPUS[0]]).created == 1  # creates the May index
    _block(index, may, True)
    pauses: list[float] = []

    def unblock_during_backoff(seconds: float) -> None:
        pauses.append(seconds)
        _block(index, may, False)

    index.sleep = unblock_during_backoff
    late_may = doc("d5", "Patrol at al-Tanf", "A patrol left the garrison.", published="2017-05-20T08:00:00+00:00")
    report = index.index_documents([late_may, CORPUS[1]])  # May is blocked (429), June is not
    assert (report.created, report.existing, report.failed) == (2, 0, [])
    assert len(pauses) == 1, "exactly one retry round, for the refused item only"
    assert index.get("d5") == late_may and index.get("d2") == CORPUS[1]


def test_per_item_429_that_persists_raises_transient_and_loses_nothing(real_opensearch: OpenSearchEngine,
                                                                      index: OpenSearchIndex, prefix: str) -> None:
    may = f"{prefix}-articles-2017.05"
    index.index_documents([CORPUS[0]])
    _block(index, may, True)
    stubborn = _open(real_opensearch.url, prefix, bulk_retries=1)
    stubborn.sleep = lambda seconds: None
    late_may = doc("d5", "Patrol", "A patrol left the garrison.", published="2017-05-20T08:00:00+00:00")
    with pytest.raises(TransientIndexError, match="1 documents still refused after 1 retries"):
        stubborn.index_documents([late_may, CORPUS[2]])
    _block(index, may, False)
    again = stubborn.index_documents([late_may, CORPUS[2]])  # the worker's retry of the batch
    assert (again.created, again.existing) == (1, 1)
    assert index.count() == 3
    stubborn.close()


def test_409_from_a_concurrent_writer_is_counted_existing(real_opensearch: OpenSearchEngine,
                                                          index: OpenSearchIndex, prefix: str) -> None:
    other = _open(real_opensearch.url, prefix)
    assert other.index_documents([CORPUS[0]]).created == 1
    index._existing_ids = lambda ids: set()  # type: ignore[method-assign]  # the race: not visible yet
    report = index.index_documents([CORPUS[0], CORPUS[1]])
    assert (report.created, report.existing, report.failed) == (1, 1, [])
    assert index.count() == 2
    other.close()


def test_400_mapping_error_is_returned_in_failed(index: OpenSearchIndex) -> None:
    bad = {**CORPUS[2], "id": "bad", "url": "https://example.org/bad", "published": "yesterday"}
    report = index.index_documents([CORPUS[0], bad])
    assert report.created == 1 and report.existing == 0
    assert len(report.failed) == 1 and report.failed[0][0] == "bad"
    reason = report.failed[0][1]
    assert reason.startswith("HTTP 400: mapper_parsing_exception: failed to parse field [published] of type [date]")
    assert index.get("bad") is None


def test_search_and_export_commands_on_the_node(real_opensearch: OpenSearchEngine, index: OpenSearchIndex,
                                                prefix: str, env: dict[str, str], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    index.index_documents(CORPUS)
    index.count()  # refreshes: another process searches next (near-real-time, like any OpenSearch client)
    monkeypatch.setenv("PIPELINE_CONFIG_DIR", str(config_dir_with(tmp_path, index_prefix=prefix)))
    monkeypatch.setenv("PIPELINE_INDEX", "opensearch")
    monkeypatch.setenv("OPENSEARCH_URL", real_opensearch.url)
    assert main(["search", "garrison", "--topic", "al-tanf", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert [h["id"] for h in hits][0] == "d1" and {h["id"] for h in hits} == {"d1", "d2"}
    assert hits[0]["snippet"].startswith("Coalition advisers")  # title-only match: the text's start
    assert "[garrison]" in hits[1]["snippet"]  # the match highlighted
    assert main(["search", "zanzibar"]) == 0
    assert capsys.readouterr().out.strip() == f"no results among 4 documents in OpenSearch index {prefix}-articles (OPENSEARCH_URL)"
    out = tmp_path / "export.jsonl"
    assert main(["export", "--jsonl", "-o", str(out)]) == 0
    exported = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(d["id"] for d in exported) == ["d1", "d2", "d3", "d4"]
    assert next(d for d in exported if d["id"] == "d3")["text"] == CORPUS[2]["text"]
    assert "exported 4 documents" in capsys.readouterr().err


@pytest.mark.parametrize("how", ["url", "environment"])
def test_credentials_are_sent_but_never_shown(how: str, caplog: pytest.LogCaptureFixture) -> None:
    """Against a server that is not OpenSearch (the local Elasticsearch 9 stand-in): basic auth goes out,
    the answer is refused as not OpenSearch, and neither the error nor the log carries the password."""
    caplog.set_level(logging.DEBUG)
    with fake_elasticsearch() as server:
        if how == "url":
            url = server.url.replace("http://", "http://svc:s3cr%2Fet@")
            settings = OpenSearchSettings(url=SecretStr(url))
        else:
            settings = OpenSearchSettings(url=SecretStr(server.url), username="svc", password=SecretStr("s3cr/et"))
        idx = OpenSearchIndex(settings)
        with pytest.raises(ConfigError, match="OPENSEARCH_URL: .*not an OpenSearch answer") as info:
            idx.count()
        idx.close()
        sent = server.requests[0].headers.get("authorization", "")
    assert sent == "Basic " + base64.b64encode(b"svc:s3cr/et").decode()
    assert "s3cr" not in str(info.value) and "s3cr" not in caplog.text and "s3cr" not in repr(settings)


def test_unreachable_node_is_transient_and_hides_credentials() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    idx = OpenSearchIndex(OpenSearchSettings(url=SecretStr(f"http://svc:hunter2@127.0.0.1:{port}"),
                                             request_timeout=2))
    with pytest.raises(TransientIndexError) as info:
        idx.index_documents([CORPUS[0]])
    assert f"http://127.0.0.1:{port}" in str(info.value) and "hunter2" not in str(info.value)
    idx.close()


def test_missing_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="OPENSEARCH_URL"):
        OpenSearchIndex(OpenSearchSettings())


def test_a_refused_connection_is_one_line_not_the_client_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """opensearch-py logs every refused request as a WARNING with the whole urllib3 traceback (28 tracebacks per
    index worker while the node was stopped in the failure benchmark); the adapter raises TransientIndexError,
    which its caller logs in one line, so the client's copy is dropped."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    index = OpenSearchIndex(OpenSearchSettings(url=SecretStr(f"http://127.0.0.1:{port}"), index_prefix="gone"))
    try:
        with caplog.at_level(logging.INFO), pytest.raises(TransientIndexError, match="Connection"):
            index.count()
    finally:
        index.close()
    assert not [r for r in caplog.records if r.exc_info], "no traceback logged"
