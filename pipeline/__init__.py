"""newswatch: streaming news ingestion with gazetteer tagging and alerting.

feeds -> fetch -> extract -> bus -> enrich -> index -> alerts, on embedded (SQLite)
or distributed (Kafka, Elasticsearch, Airflow) backends.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
