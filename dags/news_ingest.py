"""
### news_ingest

Polls the feeds that are due, fetches and extracts their new articles and publishes
them to the bus (`news.articles.raw`).

1. **plan**: which feeds are due (each feed has its own interval, shortened when it
   brings new items, lengthened when it does not; failing feeds are backed off, never
   dropped) and how to split them into batches (`PIPELINE_FEED_BATCH_SIZE` feeds per
   batch, at most `PIPELINE_MAX_BATCHES` batches; one host never spans two batches).
2. **ingest_batch** (mapped over the batches): poll, fetch, extract, publish.
3. **summarize**: on the embedded backends (`PIPELINE_BUS=sqlite`) drains the enrich,
   alert and index stages so one run carries articles all the way to the index and
   the alerts (on Kafka the long-running workers do that); records the run summary.

Schedule: every `NEWSWATCH_INGEST_EVERY_MINUTES` minutes (environment of the scheduler,
default 5; read when the file is parsed, no other configuration is read then).
Param `force`: poll every configured feed now, due or not.
A failed task notifies ops once, after its last retry. A hung run (still going after
`NEWSWATCH_INGEST_DEADLINE_MINUTES`, default 30; 0 = never) is failed by `dagrun_timeout`
and ops are told once (DAG-level `on_failure_callback`); the next scheduled run then starts.
(No DeadlineAlert: with one, `airflow dags test` fails at the end of every run in Airflow 3.3.2,
apache/airflow#73428.)
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from airflow.sdk import Param, dag, task

from pipeline.airflow_support import DEFAULT_ARGS, START_DATE, notify_ops_run_timed_out


def _minutes(var: str, default: float, *, zero_ok: bool = False) -> float:
    """Minutes from the environment (no I/O); a bad value fails the parse with a clear message."""
    raw = os.environ.get(var, "")
    try:
        value = float(raw) if raw.strip() else default
    except ValueError:
        raise ValueError(f"environment variable {var}: expected minutes, got {raw!r}") from None
    if value < 0 or (value == 0 and not zero_ok):
        raise ValueError(f"environment variable {var}: expected a positive number of minutes, got {raw!r}")
    return value


EVERY = timedelta(minutes=_minutes("NEWSWATCH_INGEST_EVERY_MINUTES", 5))
DEADLINE_MINUTES = _minutes("NEWSWATCH_INGEST_DEADLINE_MINUTES", 30, zero_ok=True)  # 0: no time limit


@dag(
    dag_id="news_ingest",
    schedule=EVERY,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=DEADLINE_MINUTES) if DEADLINE_MINUTES else None,
    on_failure_callback=notify_ops_run_timed_out,  # DAG level: only a run failed by dagrun_timeout
    default_args=DEFAULT_ARGS,
    params={"force": Param(False, type="boolean", description="poll every configured feed, due or not")},
    tags=["newswatch", "ingest"],
    doc_md=__doc__,
)
def news_ingest() -> None:
    @task(execution_timeout=timedelta(minutes=5))
    def plan(params: dict[str, Any] | None = None) -> list[list[dict[str, Any]]]:
        from pipeline.airflow_tasks import plan_ingest

        return plan_ingest(force=bool((params or {}).get("force", False)))

    @task(execution_timeout=timedelta(minutes=15))
    def ingest_batch(batch: list[dict[str, Any]]) -> dict[str, Any]:
        from pipeline.airflow_tasks import ingest_batch as run_batch

        return run_batch(batch)

    @task(trigger_rule="none_failed")
    def summarize(results: Any) -> dict[str, Any]:
        from pipeline.airflow_tasks import finish_ingest_run

        return finish_ingest_run(list(results))

    summarize(ingest_batch.expand(batch=plan()))


news_ingest()
