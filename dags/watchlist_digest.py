"""
### watchlist_digest

Once a day, sends each watch topic whose `digest` is `daily` its digest of the alerts
collected since the last one, to the topic's recipients, through the alert notifiers
(`pipeline.alerts.AlertService.send_digests("daily")`, which queues the digests in the
alert outbox and delivers what is due).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag, task

from pipeline.airflow_support import DEFAULT_ARGS, START_DATE


@dag(
    dag_id="watchlist_digest",
    schedule="@daily",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    default_args=DEFAULT_ARGS,
    tags=["newswatch", "alerts"],
    doc_md=__doc__,
)
def watchlist_digest() -> None:
    @task(execution_timeout=timedelta(minutes=30))
    def send_daily_digests() -> dict[str, Any]:
        from pipeline.airflow_tasks import send_digests

        return send_digests("daily")

    send_daily_digests()


watchlist_digest()
