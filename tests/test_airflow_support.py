"""pipeline.airflow_support / airflow_tasks without Airflow: configuration from connections and
Variables, the ingest plan, summaries, failure messages, backfill parameter checks.

Nothing here imports Airflow (the lookups are injected), so these run on any install.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

import pytest

from pipeline.airflow_support import (
    aggregate_summaries,
    failure_message,
    pipeline_env,
    plan_batches,
    settings_env_from_airflow,
    task_config,
)
from pipeline.airflow_tasks import run_backfill
from pipeline.config import FeedConfig
from pipeline.errors import ConfigError, InputError


def conn(**fields: Any) -> SimpleNamespace:
    base = {"conn_type": "generic", "host": None, "port": None, "login": None, "password": None, "schema": None,
            "extra": None}
    return SimpleNamespace(**{**base, **fields})


CONNECTIONS = {
    "newswatch_kafka": conn(conn_type="kafka", extra=json.dumps({"bootstrap.servers": "k1:9092,k2:9092"})),
    "newswatch_elasticsearch": conn(conn_type="elasticsearch", host="es.internal", port=9200, login="elastic",
                                    password="s3cr:et@", schema="https"),
    "newswatch_smtp": conn(conn_type="smtp", host="mail.internal", port=587, login="bot", password="pw"),
    "newswatch_slack": conn(conn_type="slackwebhook", password="T000/B000/XXXX"),
}
VARIABLES = {"newswatch_bus": "kafka", "newswatch_index": "elasticsearch", "newswatch_fetch_delay": "0.5"}


class Lookups:
    """Injected lookups that remember what was asked."""

    def __init__(self, connections: dict[str, Any] | None = None, variables: dict[str, str] | None = None) -> None:
        self.connections = CONNECTIONS if connections is None else connections
        self.variables = VARIABLES if variables is None else variables
        self.asked: list[str] = []

    def get_connection(self, conn_id: str) -> Any:
        self.asked.append(conn_id)
        return self.connections.get(conn_id)

    def get_variable(self, key: str) -> str | None:
        self.asked.append(key)
        return self.variables.get(key)

    def kwargs(self) -> dict[str, Any]:
        return {"get_connection": self.get_connection, "get_variable": self.get_variable}


def test_connections_and_variables_map_to_pipeline_env() -> None:
    derived = settings_env_from_airflow({}, **Lookups().kwargs())
    assert derived == {
        "KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
        "ELASTICSEARCH_URL": "https://elastic:s3cr%3Aet%40@es.internal:9200",
        "SMTP_URL": "smtp://bot:pw@mail.internal:587",
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/XXXX",
        "PIPELINE_BUS": "kafka",
        "PIPELINE_INDEX": "elasticsearch",
        "PIPELINE_FETCH_DELAY": "0.5",
    }


def test_connection_variants() -> None:
    kafka_host = {"newswatch_kafka": conn(host="broker", port=29092)}
    assert settings_env_from_airflow({}, **Lookups(kafka_host, {}).kwargs()) == {"KAFKA_BOOTSTRAP_SERVERS": "broker:29092"}
    full_url = {"newswatch_slack": conn(password="http://127.0.0.1:9/hook"),
                "newswatch_smtp": conn(host="smtp.example.org", port=465, login="u", password="p"),
                "newswatch_elasticsearch": conn(host="http://es:9200"),
                "newswatch_opensearch": conn(host="search.internal", login="svc", password="pw")}
    assert settings_env_from_airflow({}, **Lookups(full_url, {}).kwargs()) == {
        "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/hook",
        "SMTP_URL": "smtps://u:p@smtp.example.org:465",
        "ELASTICSEARCH_URL": "http://es:9200",
        "OPENSEARCH_URL": "http://svc:pw@search.internal:9200",
    }
    assert settings_env_from_airflow({}, **Lookups({"newswatch_slack": conn()}, {}).kwargs()) == {}


def test_environment_wins_and_is_not_looked_up(caplog: pytest.LogCaptureFixture) -> None:
    lookups = Lookups()
    env = {"PIPELINE_BUS": "sqlite", "SLACK_WEBHOOK_URL": "https://hooks.example/env", "PATH": "/bin"}
    with caplog.at_level("INFO", logger="pipeline.airflow_support"):
        merged = pipeline_env(env, **lookups.kwargs())
    assert merged["PIPELINE_BUS"] == "sqlite" and merged["SLACK_WEBHOOK_URL"] == "https://hooks.example/env"
    assert merged["PIPELINE_INDEX"] == "elasticsearch" and merged["SMTP_URL"].startswith("smtp://")
    assert "newswatch_bus" not in lookups.asked and "newswatch_slack" not in lookups.asked
    assert merged["PATH"] == "/bin"
    logged = caplog.text
    assert "SMTP_URL" in logged, "the names of what came from Airflow are logged"
    for secret in ("pw", "s3cr", "T000/B000/XXXX", "bot:"):
        assert secret not in logged, "values are never logged"


def test_task_config_validates_the_merged_env(env: dict[str, str]) -> None:
    config = task_config(**Lookups({}, {"newswatch_fetch_delay": "0.25"}).kwargs())
    assert config.settings.fetch.delay_seconds == 0  # the env (conftest: PIPELINE_FETCH_DELAY=0) wins
    with pytest.raises(ConfigError, match="PIPELINE_INDEX"):
        task_config({**env, "PIPELINE_INDEX": ""}, **Lookups({}, {"newswatch_index": "solr"}).kwargs())


def _feeds(*urls: str) -> list[FeedConfig]:
    return [FeedConfig(url=u) for u in urls]


def test_plan_batches_keeps_a_host_in_one_batch_and_caps_batches() -> None:
    feeds = _feeds(*(f"https://a.example/f{i}" for i in range(5)), *(f"https://b.example/f{i}" for i in range(3)),
                   "https://c.example/f", "https://d.example/f")
    batches = plan_batches(feeds, batch_size=3, max_batches=3)
    assert len(batches) == 3
    flat = [f["url"] for b in batches for f in b]
    assert sorted(flat) == sorted(f.url for f in feeds), "every due feed is planned exactly once"
    for host in ("a.example", "b.example"):
        assert sum(any(host in f["url"] for f in b) for b in batches) == 1, host
    assert sorted(len(b) for b in batches) == [2, 3, 5]
    assert FeedConfig.model_validate(batches[0][0]).url.startswith("https://"), "batches are FeedConfig dicts"


def test_plan_batches_small_and_empty() -> None:
    assert plan_batches([], batch_size=5, max_batches=4) == []
    assert len(plan_batches(_feeds("https://a.example/1", "https://b.example/2"), batch_size=5, max_batches=4)) == 1
    one_each = plan_batches(_feeds(*(f"https://h{i}.example/" for i in range(6))), batch_size=2, max_batches=8)
    assert [len(b) for b in one_each] == [2, 2, 2]


def test_aggregate_summaries_sums_counts_and_outcomes() -> None:
    total = aggregate_summaries([
        {"feeds_polled": 2, "published": 3, "outcomes": {"ok": 2, "http_404": 1}},
        {"feeds_polled": 1, "published": 0, "outcomes": {"ok": 1}},
    ])
    assert total == {"batches": 2, "feeds_polled": 3, "published": 3, "outcomes": {"ok": 3, "http_404": 1}}
    assert aggregate_summaries([]) == {"batches": 0}


def test_failure_message_names_dag_task_try_and_error() -> None:
    ti = SimpleNamespace(dag_id="news_ingest", task_id="ingest_batch", map_index=2, run_id="r1", try_number=3)
    text = failure_message({"ti": ti, "exception": TimeoutError("poll took too long")})
    assert text == "newswatch: news_ingest.ingest_batch[2] failed after try 3 (run r1): TimeoutError: poll took too long"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "give at least one feed URL or article URL"),
        ({"urls": ["ftp://x.example/a"]}, "not an http(s) URL"),
        ({"feeds": "https://x.example/rss", "since": "last week"}, "param since"),
        ({"urls": ["https://x.example/a"], "since": "2017-02-01", "until": "2017-01-01"}, "empty window"),
        ({"urls": [1, 2]}, "expected a list of URLs"),
    ],
)
def test_backfill_params_are_checked_before_any_work(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)) as info:
        run_backfill(params)
    assert "\n" not in str(info.value)


def test_plan_warns_loudly_when_no_feed_is_configured(env: dict[str, str], tmp_path: Any,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    from pipeline.airflow_tasks import plan_ingest

    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds: []\n")
    with caplog.at_level("INFO", logger="pipeline"):
        assert plan_ingest(env={**env, "PIPELINE_FEEDS": str(feeds)}, **Lookups({}, {}).kwargs()) == []
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "NO FEEDS CONFIGURED" in warnings[0].getMessage()
    assert str(feeds) in warnings[0].getMessage()


def test_summarize_reports_what_did_not_go_through(env: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    from pipeline.airflow_tasks import finish_ingest_run

    batches = [{"feeds_polled": 2, "feeds_failed": 1, "fetched": 3, "not_ok": {"feeds:http_500": 1}},
               {"feeds_polled": 1, "feeds_failed": 1, "fetched": 0, "not_ok": {"feeds:timeout": 1}}]
    with caplog.at_level("INFO", logger="pipeline"):
        summary = finish_ingest_run(batches, env=env, **Lookups({}, {}).kwargs())
    report = summary["report"]
    assert report["exit_code"] == 1 and report["feeds"] == {"succeeded": 1, "failed": 2,
                                                            "reasons": {"http_500": 1, "timeout": 1}}
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "news_ingest run: not read 2 of 3 feeds (http_500 1, timeout 1); `newswatch feeds` shows each" in warned
    assert "news_ingest run: result some failures (exit 1)" in warned
