"""
### news_backfill

Triggered by hand: re-polls the given feeds (ignoring conditional GET and seen state)
and/or fetches the given article URLs, keeping only entries published in
[`since`, `until`) when a window is given.

Replayed articles are marked `replay` and raise no alerts unless `alert` is true.
Reprocessing an article that is already indexed changes nothing: document ids come
from the canonical URL and the index is create-if-absent.

On the embedded backends the enrich, alert and index stages are drained at the end;
on Kafka the long-running workers pick the articles up.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param, dag, task

from pipeline.airflow_support import DEFAULT_ARGS, START_DATE


@dag(
    dag_id="news_backfill",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    default_args=DEFAULT_ARGS,
    params={
        "feeds": Param([], type="array", items={"type": "string"}, description="feed URLs to re-poll"),
        "urls": Param([], type="array", items={"type": "string"}, description="article URLs to fetch"),
        "since": Param(None, type=["null", "string"], description="ISO date/time: keep entries published from"),
        "until": Param(None, type=["null", "string"], description="ISO date/time: keep entries published before"),
        "alert": Param(False, type="boolean", description="raise alerts for the replayed articles"),
    },
    tags=["newswatch", "backfill"],
    doc_md=__doc__,
)
def news_backfill() -> None:
    @task(execution_timeout=timedelta(hours=4))
    def backfill(params: dict[str, Any] | None = None) -> dict[str, Any]:
        from pipeline.airflow_tasks import run_backfill

        return run_backfill(dict(params or {}))

    backfill()


news_backfill()
