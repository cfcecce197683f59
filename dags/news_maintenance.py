"""
### news_maintenance

Daily housekeeping (`pipeline.maintenance.run_maintenance`):

* prunes fetch state older than `fetch_state_retention_days` (outcomes, runs, seen
  entries; state of feeds no longer configured);
* reports the dead-letter count and feeds failing for a day or more (logged, recorded
  as a `maintenance` run, and sent to ops when a notifier connection is configured);
* deletes indexed documents older than `retention_days`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag, task

from pipeline.airflow_support import DEFAULT_ARGS, START_DATE


@dag(
    dag_id="news_maintenance",
    schedule="@daily",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    default_args=DEFAULT_ARGS,
    tags=["newswatch", "maintenance"],
    doc_md=__doc__,
)
def news_maintenance() -> None:
    @task(execution_timeout=timedelta(hours=1))
    def maintenance() -> dict[str, Any]:
        from pipeline.airflow_tasks import maintenance_task

        return maintenance_task()

    maintenance()


news_maintenance()
