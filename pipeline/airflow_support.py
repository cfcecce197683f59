"""Glue between Airflow and the pipeline: configuration, ingest planning, ops notifications.

Imported by the DAG files (``dags/``) *inside* task bodies and callbacks, so parsing a
DAG file never pays for it. This module itself imports only the standard library at
module level; ``airflow`` and the heavier ``pipeline`` modules are imported inside the
functions that need them.

Configuration through Airflow
-----------------------------
Tasks build their :class:`~pipeline.config.Config` from :func:`pipeline_env`: the
process environment, plus values derived from Airflow connections and Variables
(:data:`CONNECTION_ENV`, :data:`VARIABLE_ENV`) for every variable the environment
does **not** already set. The environment wins because it is the one source the CLI,
the workers and the DAGs share; Airflow fills in what a deployment manages there.
Derived values may hold secrets: they are returned, never logged.

Ops notifications
-----------------
:func:`notify_ops_failure` is every task's ``on_failure_callback`` (Airflow calls it
once, after the last retry). It sends through Airflow's own notifiers,
``SlackWebhookNotifier`` (connection ``newswatch_slack``) and ``SmtpNotifier``
(connection ``newswatch_smtp``), each only when its connection is configured, decided
at callback time. :func:`notify_ops_run_timed_out` is the DAG-level callback that tells ops
about an ingest run failed by ``dagrun_timeout`` (a hung run).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from .config import Config, FeedConfig

__all__ = [
    "DEFAULT_ARGS",
    "OWNER",
    "START_DATE",
    "CONNECTION_ENV",
    "VARIABLE_ENV",
    "SLACK_CONN_ID",
    "SMTP_CONN_ID",
    "settings_env_from_airflow",
    "pipeline_env",
    "task_config",
    "plan_batches",
    "aggregate_summaries",
    "ops_notifiers",
    "notify_ops_failure",
    "notify_ops_run_timed_out",
    "failure_message",
]

log = logging.getLogger(__name__)

SLACK_CONN_ID = "newswatch_slack"
SMTP_CONN_ID = "newswatch_smtp"
KAFKA_CONN_ID = "newswatch_kafka"
ELASTICSEARCH_CONN_ID = "newswatch_elasticsearch"
OPENSEARCH_CONN_ID = "newswatch_opensearch"

#: Airflow connection id -> environment variable of pipeline.config it provides.
CONNECTION_ENV: dict[str, str] = {
    KAFKA_CONN_ID: "KAFKA_BOOTSTRAP_SERVERS",
    ELASTICSEARCH_CONN_ID: "ELASTICSEARCH_URL",
    OPENSEARCH_CONN_ID: "OPENSEARCH_URL",
    SMTP_CONN_ID: "SMTP_URL",
    SLACK_CONN_ID: "SLACK_WEBHOOK_URL",
}

#: Airflow Variable key -> environment variable it provides.
VARIABLE_ENV: dict[str, str] = {
    "newswatch_bus": "PIPELINE_BUS",
    "newswatch_index": "PIPELINE_INDEX",
    "newswatch_data_dir": "PIPELINE_DATA_DIR",
    "newswatch_config_dir": "PIPELINE_CONFIG_DIR",
    "newswatch_feeds": "PIPELINE_FEEDS",
    "newswatch_allow_hosts": "PIPELINE_ALLOW_HOSTS",
    "newswatch_fetch_delay": "PIPELINE_FETCH_DELAY",
    "newswatch_poll_interval": "PIPELINE_POLL_INTERVAL",
    "newswatch_extract_workers": "PIPELINE_EXTRACT_WORKERS",
    "newswatch_feed_batch_size": "PIPELINE_FEED_BATCH_SIZE",
    "newswatch_max_batches": "PIPELINE_MAX_BATCHES",
    "newswatch_smtp_from": "SMTP_FROM",
    "newswatch_ops_email": "NEWSWATCH_OPS_EMAIL",
}

DEFAULT_FEED_BATCH_SIZE = 20
DEFAULT_MAX_BATCHES = 8

ConnectionLookup = Callable[[str], Any]  # conn id -> object with conn_type/host/port/login/password/schema/extra
VariableLookup = Callable[[str], "str | None"]


# --------------------------------------------------------------------------- configuration


def _airflow_connection(conn_id: str) -> Any:
    """The connection, or None when it is not defined (Airflow's task-SDK lookup)."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


def _airflow_variable(key: str) -> str | None:
    from airflow.sdk import Variable

    value = Variable.get(key, default=None)
    return None if value is None else str(value)


def _extra(conn: Any) -> dict[str, Any]:
    extra = getattr(conn, "extra", None)
    if isinstance(extra, dict):
        return extra
    if not extra:
        return {}
    try:
        parsed = json.loads(extra)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _userinfo(conn: Any) -> str:
    login, password = getattr(conn, "login", None), getattr(conn, "password", None)
    if not login and not password:
        return ""
    return f"{quote(login or '', safe='')}:{quote(password or '', safe='')}@"


def _hostport(conn: Any, default_port: int | None = None) -> str:
    host = (getattr(conn, "host", None) or "").strip()
    port = getattr(conn, "port", None) or default_port
    return f"{host}:{port}" if port and host and ":" not in host.split(",")[-1] else host


def _kafka_value(conn: Any) -> str | None:
    extra = _extra(conn)
    servers = extra.get("bootstrap.servers") or extra.get("bootstrap_servers")
    return str(servers) if servers else (_hostport(conn, 9092) or None)


def _elasticsearch_value(conn: Any) -> str | None:
    host = (getattr(conn, "host", None) or "").strip()
    if not host:
        return None
    if "://" in host:
        return host
    extra = _extra(conn)
    scheme = str(extra.get("scheme") or getattr(conn, "schema", None) or "http")
    if scheme not in ("http", "https"):
        scheme = "https" if str(extra.get("use_ssl", "")).lower() == "true" else "http"
    return f"{scheme}://{_userinfo(conn)}{_hostport(conn, 9200)}"


def _smtp_value(conn: Any) -> str | None:
    if not (getattr(conn, "host", None) or "").strip():
        return None
    port = getattr(conn, "port", None) or 25
    scheme = "smtps" if int(port) == 465 else "smtp"
    return f"{scheme}://{_userinfo(conn)}{_hostport(conn, 25)}"


def _slack_value(conn: Any) -> str | None:
    """The webhook URL, composed the way the Slack provider's SlackWebhookHook does."""
    token = (getattr(conn, "password", None) or "").strip()
    if not token:
        return None
    if "://" in token:
        return token
    base = (getattr(conn, "host", None) or "").strip()
    if "://" not in base:
        base = f"{getattr(conn, 'schema', None) or 'https'}://{base or 'hooks.slack.com/services'}"
    return f"{base.rstrip('/')}/{token.lstrip('/')}"


_CONNECTION_VALUE: dict[str, Callable[[Any], str | None]] = {
    KAFKA_CONN_ID: _kafka_value,
    ELASTICSEARCH_CONN_ID: _elasticsearch_value,
    OPENSEARCH_CONN_ID: _elasticsearch_value,  # same URL shape
    SMTP_CONN_ID: _smtp_value,
    SLACK_CONN_ID: _slack_value,
}


def settings_env_from_airflow(
    env: Mapping[str, str] | None = None,
    *,
    get_connection: ConnectionLookup | None = None,
    get_variable: VariableLookup | None = None,
) -> dict[str, str]:
    """Environment variables derived from Airflow connections and Variables.

    Only variables that ``env`` (default: ``os.environ``) leaves unset or empty are
    looked up, so the environment wins and no lookup is made for what it already says.
    ``get_connection``/``get_variable`` default to Airflow's task-SDK lookups (call
    this inside a task or callback). The result may hold secrets: never log it.
    """
    env = os.environ if env is None else env
    get_connection = get_connection or _airflow_connection
    get_variable = get_variable or _airflow_variable
    derived: dict[str, str] = {}
    for conn_id, var in CONNECTION_ENV.items():
        if env.get(var):
            continue
        conn = get_connection(conn_id)
        value = _CONNECTION_VALUE[conn_id](conn) if conn is not None else None
        if value:
            derived[var] = value
    for key, var in VARIABLE_ENV.items():
        if env.get(var):
            continue
        value = get_variable(key)
        if value is not None and str(value).strip():
            derived[var] = str(value).strip()
    if derived:
        log.info("configuration from Airflow: %s", ", ".join(sorted(derived)))  # names only, never values
    return derived


def pipeline_env(env: Mapping[str, str] | None = None, **lookups: Any) -> dict[str, str]:
    """``env`` (default ``os.environ``) merged with :func:`settings_env_from_airflow` (env wins)."""
    base = dict(os.environ if env is None else env)
    return {**settings_env_from_airflow(base, **lookups), **{k: v for k, v in base.items() if v}}


def task_config(env: Mapping[str, str] | None = None, **lookups: Any) -> Config:
    """The validated pipeline configuration for a task (see :func:`pipeline_env`)."""
    from .config import load_config

    return load_config(env=pipeline_env(env, **lookups))


def _positive_int(env: Mapping[str, str], var: str, default: int) -> int:
    from .errors import ConfigError

    raw = env.get(var)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {var}: expected a positive integer, got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"environment variable {var}: expected a positive integer, got {raw!r}")
    return value


def batch_limits(env: Mapping[str, str]) -> tuple[int, int]:
    """(feeds per batch, most batches per run) from PIPELINE_FEED_BATCH_SIZE / PIPELINE_MAX_BATCHES."""
    return (
        _positive_int(env, "PIPELINE_FEED_BATCH_SIZE", DEFAULT_FEED_BATCH_SIZE),
        _positive_int(env, "PIPELINE_MAX_BATCHES", DEFAULT_MAX_BATCHES),
    )


# --------------------------------------------------------------------------- ingest planning


def plan_batches(feeds: Sequence[FeedConfig], *, batch_size: int, max_batches: int) -> list[list[dict[str, Any]]]:
    """Split due feeds into at most ``max_batches`` batches of about ``batch_size`` feeds.

    Feeds of one host always share a batch, so parallel batches never hit one host at
    once (per-host politeness is enforced inside a batch by the fetcher). When more
    than ``batch_size * max_batches`` feeds are due the batches grow instead of leaving
    feeds behind. Each batch is a list of ``FeedConfig.model_dump()`` dicts (XCom-safe).
    """
    if not feeds:
        return []
    by_host: dict[str, list[FeedConfig]] = {}
    for feed in feeds:
        by_host.setdefault((urlsplit(feed.url).hostname or "").lower(), []).append(feed)
    n_batches = max(1, min(max_batches, math.ceil(len(feeds) / batch_size), len(by_host)))
    batches: list[list[dict[str, Any]]] = [[] for _ in range(n_batches)]
    # biggest hosts first, each into the currently smallest batch (greedy balancing)
    for _host, group in sorted(by_host.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        smallest = min(range(n_batches), key=lambda i: len(batches[i]))
        batches[smallest].extend(f.model_dump(mode="json") for f in group)
    return [b for b in batches if b]


def aggregate_summaries(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum the per-batch ``IngestSummary.to_dict()`` results: numbers and count maps add up, lists concatenate."""
    total: dict[str, Any] = {"batches": 0}
    for summary in summaries:
        total["batches"] += 1
        for key, value in summary.items():
            if isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                total[key] = total.get(key, 0) + value
            elif isinstance(value, list):
                total[key] = [*total.get(key, []), *value]
            elif isinstance(value, Mapping):  # e.g. outcomes: status -> count
                merged = dict(total.get(key, {}))
                for k, v in value.items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        merged[k] = merged.get(k, 0) + v
                total[key] = merged
    return total


# --------------------------------------------------------------------------- ops notifications


def failure_message(context: Mapping[str, Any]) -> str:
    """One line naming the DAG, task, run and try, plus the exception (no secrets: the exception text only)."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    map_index = getattr(ti, "map_index", -1)
    run_id = getattr(ti, "run_id", None) or getattr(context.get("dag_run"), "run_id", "?")
    try_number = getattr(ti, "try_number", "?")
    where = f"{task_id}[{map_index}]" if isinstance(map_index, int) and map_index >= 0 else task_id
    exc = context.get("exception")
    why = f": {type(exc).__name__}: {exc}" if exc is not None else ""
    return f"newswatch: {dag_id}.{where} failed after try {try_number} (run {run_id}){why}"


def _connection_configured(conn_id: str, env: Mapping[str, str], get_connection: ConnectionLookup | None) -> bool:
    if env.get(f"AIRFLOW_CONN_{conn_id.upper()}"):
        return True
    try:
        return (get_connection or _airflow_connection)(conn_id) is not None
    except Exception as exc:  # noqa: BLE001 - no API/metastore reachable: treat as not configured, say so
        log.warning("cannot look up connection %s (%s): ops notifier skipped", conn_id, type(exc).__name__)
        return False


def ops_notifiers(
    text: str,
    *,
    env: Mapping[str, str] | None = None,
    get_connection: ConnectionLookup | None = None,
    get_variable: VariableLookup | None = None,
) -> list[Any]:
    """Airflow notifiers sending ``text`` to the ops connections configured now (at callback time).

    ``newswatch_slack`` -> ``SlackWebhookNotifier``; ``newswatch_smtp`` -> ``SmtpNotifier`` to
    ``NEWSWATCH_OPS_EMAIL`` / Variable ``newswatch_ops_email`` (comma-separated; without
    recipients no mail is sent, with a warning).
    """
    env = os.environ if env is None else env
    notifiers: list[Any] = []
    if _connection_configured(SLACK_CONN_ID, env, get_connection):
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        notifiers.append(SlackWebhookNotifier(slack_webhook_conn_id=SLACK_CONN_ID, text=text))
    if _connection_configured(SMTP_CONN_ID, env, get_connection):
        recipients = env.get("NEWSWATCH_OPS_EMAIL") or (get_variable or _airflow_variable)("newswatch_ops_email")
        to = [r.strip() for r in (recipients or "").split(",") if r.strip()]
        if not to:
            log.warning("connection %s configured but no NEWSWATCH_OPS_EMAIL recipients: no mail", SMTP_CONN_ID)
        else:
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            notifiers.append(
                SmtpNotifier(
                    to=to,
                    from_email=env.get("SMTP_FROM") or "newswatch@localhost",
                    subject=text[:200],
                    html_content=f"<pre>{_html_escape(text)}</pre>",
                    smtp_conn_id=SMTP_CONN_ID,
                )
            )
    return notifiers


def _jinja_literal(text: str) -> str:
    """``text`` protected from the Jinja rendering BaseNotifier.__call__ applies to template fields."""
    return "{% raw %}" + text.replace("{% endraw %}", "") + "{% endraw %}"


def _html_escape(text: str) -> str:
    import html

    return html.escape(text)


def notify_ops_failure(context: Any) -> None:
    """``on_failure_callback`` of every newswatch task: Airflow runs it once, after the last retry.

    Sends ``failure_message(context)`` through each configured ops notifier. A notifier
    that fails is logged and the others still run; the callback never raises (the task
    has failed already, a second failure would only hide the first).
    """
    text = failure_message(context)
    notifiers = ops_notifiers(_jinja_literal(text))
    if not notifiers:
        log.info("task failed; no ops connection (%s, %s) configured: nobody notified", SLACK_CONN_ID, SMTP_CONN_ID)
        return
    for notifier in notifiers:
        try:
            notifier(context)
        except Exception as exc:  # noqa: BLE001 - one channel failing must not stop the others
            log.error("ops notification via %s failed: %s", type(notifier).__name__, type(exc).__name__)
        else:
            log.info("ops notified via %s: %s", type(notifier).__name__, text)


def _field(obj: Any, name: str) -> Any:
    """``obj[name]`` for a mapping, ``obj.name`` otherwise (None when absent)."""
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def notify_ops_run_timed_out(context: Any) -> None:
    """DAG-level ``on_failure_callback``: tells ops about a run failed by ``dagrun_timeout`` only.

    Runs that failed because a task failed are not reported again here: the task's own
    callback (:func:`notify_ops_failure`) has done it, once.
    """
    if context.get("reason") != "timed_out":
        return
    dag_run = context.get("dag_run")
    dag_id = getattr(dag_run, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    run_id = getattr(dag_run, "run_id", None) or context.get("run_id", "?")
    text = f"newswatch: {dag_id} run {run_id} timed out (dagrun_timeout) and was failed"
    for notifier in ops_notifiers(_jinja_literal(text)):
        try:
            notifier(context)
        except Exception as exc:  # noqa: BLE001 - one channel failing must not stop the others
            log.error("timeout notification via %s failed: %s", type(notifier).__name__, type(exc).__name__)


# --------------------------------------------------------------------------- DAG wiring

OWNER = "newswatch-ops"
START_DATE = datetime(2026, 1, 1, tzinfo=UTC)

#: ``default_args`` of every newswatch DAG: retries with exponential backoff, a task
#: timeout, and the ops notification after the last retry (``on_failure_callback`` is
#: not called for a try that will be retried; ``on_retry_callback`` would be).
DEFAULT_ARGS: dict[str, Any] = {
    "owner": OWNER,
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,  # 30 s, then 60 s, ... capped by max_retry_delay
    "max_retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(minutes=30),
    "on_failure_callback": notify_ops_failure,
}
