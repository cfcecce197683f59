"""The Airflow DAGs: integrity, a real ``dag.test()`` of news_ingest against the sample
newsroom (twice: the second run adds nothing), the other DAGs under ``dag.test()``, and
the ops notification sent once, after the last retry, to a real (loopback) Slack webhook.

Airflow reads its configuration when first imported, so nothing here imports it at
collection time: the session fixture points AIRFLOW_HOME at a temp dir, runs
``airflow db migrate`` once, and only then imports Airflow.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

PROJECT_DAGS = Path(__file__).resolve().parents[1] / "dags"
DAG_IDS = {"news_ingest", "news_backfill", "news_maintenance", "watchlist_digest"}

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.skipif(importlib.util.find_spec("airflow") is None, reason="apache-airflow is not installed"),
    # raised inside Airflow's in-process execution API (starlette.testclient), not by our code
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated"),
]

FAILING_DAG = textwrap.dedent('''
    """A test DAG whose only task always fails: counts its tries in $NW_TEST_TRIES_FILE."""
    import os
    from datetime import timedelta

    from airflow.sdk import dag, task

    from pipeline.airflow_support import DEFAULT_ARGS, START_DATE


    @dag(dag_id="nw_failing_test", schedule=None, start_date=START_DATE, tags=["test"],
         default_args={**DEFAULT_ARGS, "retry_delay": timedelta(seconds=0), "retry_exponential_backoff": 0})
    def nw_failing_test():
        @task
        def boom():
            with open(os.environ["NW_TEST_TRIES_FILE"], "a") as fh:
                fh.write("try\\n")
            raise RuntimeError("feed store unreachable {{ not a template }}")

        boom()


    nw_failing_test()
''')


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A throw-away Airflow (SQLite metadata DB, migrated once) whose DAGs folder holds our DAGs."""
    root = tmp_path_factory.mktemp("airflow")
    home, dags = root / "home", root / "dags"
    home.mkdir()
    dags.mkdir()
    for src in PROJECT_DAGS.glob("*.py"):
        shutil.copy(src, dags / src.name)
    (dags / "nw_failing_test.py").write_text(FAILING_DAG)
    if "airflow" in sys.modules and os.environ.get("AIRFLOW_HOME") != str(home):
        pytest.skip("airflow was imported earlier in this session with another AIRFLOW_HOME")
    values = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    mp = pytest.MonkeyPatch()
    for k, v in values.items():
        mp.setenv(k, v)
    for var in ("AIRFLOW_CONN_NEWSWATCH_SLACK", "AIRFLOW_CONN_NEWSWATCH_SMTP", "NEWSWATCH_INGEST_EVERY_MINUTES"):
        mp.delenv(var, raising=False)
    proc = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=dict(os.environ),
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    yield dags
    mp.undo()


def _dagbag(folder: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(folder))


# ----------------------------------------------------------------------------- integrity


def test_dags_import_cleanly_with_tags_owner_retries(airflow_home: Path) -> None:
    bag = _dagbag(PROJECT_DAGS)
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == DAG_IDS
    for dag_id in DAG_IDS:
        dag = bag.get_dag(dag_id)
        assert "newswatch" in dag.tags and len(dag.tags) >= 2, dag_id
        assert dag.doc_md and dag_id in dag.doc_md, dag_id
        assert dag.catchup is False and dag.max_active_runs == 1, dag_id
        assert dag.dagrun_timeout is not None, dag_id
        for t in dag.tasks:
            assert t.retries >= 2, (dag_id, t.task_id)
            assert t.retry_exponential_backoff > 0, (dag_id, t.task_id)
            assert t.owner == "newswatch-ops", (dag_id, t.task_id)
            assert t.execution_timeout is not None, (dag_id, t.task_id)
            assert t.on_failure_callback, (dag_id, t.task_id)
            assert not t.on_retry_callback, "ops hear of a failure once, after the last retry"
    ingest = bag.get_dag("news_ingest")
    assert ingest.schedule is not None and not ingest.deadline, "no DeadlineAlert: apache/airflow#73428"
    assert ingest.dagrun_timeout == timedelta(minutes=30) and ingest.on_failure_callback, "a hung run is failed, ops told"
    assert [t.task_id for t in ingest.topological_sort()] == ["plan", "ingest_batch", "summarize"]
    assert bag.get_dag("news_backfill").schedule is None, "backfill is triggered by hand"
    assert set(bag.get_dag("news_backfill").params.keys()) == {"feeds", "urls", "since", "until", "alert"}


_PARSE_PROBE = textwrap.dedent('''
    import builtins, io, json, os, socket, sys
    from pathlib import Path

    def _no(*a, **k):
        raise AssertionError(f"I/O at parse time: {a[:1]}")

    # Airflow itself may read its config on import; our DAG files may not do I/O
    from airflow.sdk import Param, dag, task  # noqa: F401
    real_open = builtins.open
    folder = Path(sys.argv[1])
    before = set(sys.modules)
    socket.socket.connect = _no
    socket.create_connection = _no
    opened = []
    def _watch(file, *a, **k):
        if not isinstance(file, int):  # an already-open descriptor (Airflow's log plumbing) is not a file read
            opened.append(str(file))
        return real_open(file, *a, **k)
    builtins.open = _watch
    io.open = _watch
    import importlib.util
    for path in sorted(folder.glob("*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    builtins.open = real_open
    new = sorted(m for m in set(sys.modules) - before if m.startswith("pipeline"))
    print(json.dumps({"pipeline_modules": new, "opened": opened, "cwd_files": sorted(os.listdir("."))}))
''')


def test_parsing_the_dag_files_has_no_side_effects(airflow_home: Path, tmp_path: Path) -> None:
    """No sockets, no file opened, no config read, only pipeline.airflow_support (stdlib-only) imported."""
    proc = subprocess.run([sys.executable, "-c", _PARSE_PROBE, str(PROJECT_DAGS)], cwd=tmp_path,
                          env={**os.environ, "PIPELINE_CONFIG_DIR": str(tmp_path / "missing")},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["pipeline_modules"] == ["pipeline", "pipeline.airflow_support"]
    assert report["opened"] == []
    assert report["cwd_files"] == [], "parsing created files"


def test_bad_schedule_env_is_a_clear_import_error(airflow_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSWATCH_INGEST_EVERY_MINUTES", "often")
    bag = _dagbag(PROJECT_DAGS / "news_ingest.py")
    (err,) = bag.import_errors.values()
    assert "NEWSWATCH_INGEST_EVERY_MINUTES" in err and "'often'" in err


# ----------------------------------------------------------------------------- dag.test runs


def _xcom(dag_run: Any, task_id: str) -> Any:
    ti = dag_run.get_task_instance(task_id)
    return ti.xcom_pull(task_ids=task_id, key="return_value")


def _task_states(dag_run: Any) -> dict[str, str]:
    return {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in dag_run.get_task_instances()}


@pytest.mark.slow
def test_news_ingest_dag_end_to_end_twice(airflow_home: Path, env: dict[str, str], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.config import load_config
    from pipeline.index import open_index
    from pipeline.newsroom import Newsroom
    from pipeline.state import StateStore

    bag = _dagbag(airflow_home)
    dag = bag.get_dag("news_ingest")
    with Newsroom() as room:
        feeds_file = tmp_path / "feeds.yaml"
        feeds_file.write_text(yaml.safe_dump({"feeds": [f.model_dump(mode="json") for f in room.feeds_config()]}))
        monkeypatch.setenv("PIPELINE_FEEDS", str(feeds_file))

        first = dag.test()
        assert str(first.state) == "success", _task_states(first)
        # the three outlets share one host (127.0.0.1), and one host never spans two batches
        batches = [ti for ti in first.get_task_instances() if ti.task_id == "ingest_batch"]
        assert len(batches) == 1 and batches[0].map_index == 0
        summary = _xcom(first, "summarize")
        assert summary["batches"] == 1 and summary["feeds_polled"] == len(room.feeds_config())
        assert summary["published"] >= 6 and summary["feeds_failed"] == 0
        drained = summary["drain"]
        assert drained["indexed"] >= summary["published"] - 1
        assert drained["alerts_raised"] >= 2 and len(set(drained["alert_ids"])) == drained["alerts_raised"]

        config = load_config()
        index = open_index(config.settings)
        try:
            docs_after_first = index.count()
        finally:
            index.close()
        assert docs_after_first == drained["indexed"]

        second = dag.test(run_conf={"force": True})  # poll every feed again, due or not
        assert str(second.state) == "success", _task_states(second)
        again = _xcom(second, "summarize")
        assert again["feeds_polled"] == summary["feeds_polled"]
        assert again["published"] == 0
        assert again["drain"]["indexed"] == 0 and again["drain"]["alerts_raised"] == 0

    index = open_index(config.settings)
    try:
        assert index.count() == docs_after_first
    finally:
        index.close()
    with StateStore(config.settings.state_db) as store:
        runs = store.last_runs("dag_ingest", 5)
    assert [r["summary"]["published"] for r in runs] == [0, summary["published"]]


@pytest.mark.slow
def test_other_dags_run_under_dag_test(airflow_home: Path, env: dict[str, str], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    feeds_file = tmp_path / "feeds.yaml"
    feeds_file.write_text("feeds: []\n")
    monkeypatch.setenv("PIPELINE_FEEDS", str(feeds_file))
    bag = _dagbag(airflow_home)

    run = bag.get_dag("news_maintenance").test()
    assert str(run.state) == "success", _task_states(run)
    report = _xcom(run, "maintenance")
    assert report["deadletter"]["messages"] == 0 and report["failing_feeds"] == []
    assert report["index_deleted"] == 0

    run = bag.get_dag("watchlist_digest").test()
    assert str(run.state) == "success", _task_states(run)
    assert isinstance(_xcom(run, "send_daily_digests"), dict)


@pytest.mark.slow
def test_news_backfill_is_silent_unless_asked_and_changes_no_indexed_doc(
    airflow_home: Path, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.newsroom import Newsroom

    feeds_file = tmp_path / "feeds.yaml"
    feeds_file.write_text("feeds: []\n")
    monkeypatch.setenv("PIPELINE_FEEDS", str(feeds_file))
    dag = _dagbag(airflow_home).get_dag("news_backfill")
    with Newsroom() as room:
        urls = room.article_urls()
        first = dag.test(run_conf={"urls": urls})
        assert str(first.state) == "success", _task_states(first)
        silent = _xcom(first, "backfill")
        published = silent["urls"]["published"]
        assert published >= 6 and silent["alert"] is False
        assert silent["drain"]["indexed"] == published
        assert silent["drain"]["alerts_raised"] == 0, "replayed articles raise no alert by default"

        loud = _xcom(dag.test(run_conf={"urls": urls, "alert": True}), "backfill")
    assert loud["urls"]["published"] == published
    assert loud["drain"]["indexed"] == 0 and loud["drain"]["already_indexed"] == published, "create-if-absent"
    assert loud["drain"]["alerts_raised"] >= 2, "alert=true lets the same articles alert"


# ----------------------------------------------------------------------------- ops notification


class _SlackWebhook(BaseHTTPRequestHandler):
    posts: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).posts.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base-class signature
        pass


@pytest.fixture
def slack_webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback HTTP server standing in for a Slack incoming webhook; yields (url, received posts)."""
    posts: list[dict[str, Any]] = []
    handler = type("Handler", (_SlackWebhook,), {"posts": posts})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="slack-webhook", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/services/T000/B000/XXXX", posts
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def smtp_recorder() -> Iterator[tuple[int, list[Any]]]:
    """A real SMTP server (aiosmtpd) on loopback; yields (port, received messages)."""
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    received: list[Any] = []

    class Recorder:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append((list(envelope.rcpt_tos),
                             message_from_bytes(envelope.original_content, policy=policy.default)))
            return "250 OK"

    with socket.socket() as probe:  # aiosmtpd's readiness check needs the real port up front
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Recorder(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()


def test_failing_task_notifies_ops_once_after_last_retry(
    airflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    slack_webhook: tuple[str, list[dict[str, Any]]], smtp_recorder: tuple[int, list[Any]],
) -> None:
    url, posts = slack_webhook
    smtp_port, mails = smtp_recorder
    monkeypatch.setenv("AIRFLOW_CONN_NEWSWATCH_SLACK", json.dumps({"conn_type": "slackwebhook", "password": url}))
    monkeypatch.setenv("AIRFLOW_CONN_NEWSWATCH_SMTP", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": smtp_port,
        "extra": {"disable_ssl": True, "disable_tls": True}}))
    monkeypatch.setenv("NEWSWATCH_OPS_EMAIL", "ops@example.org")
    tries = tmp_path / "tries.txt"
    monkeypatch.setenv("NW_TEST_TRIES_FILE", str(tries))

    run = _dagbag(airflow_home).get_dag("nw_failing_test").test()

    assert str(run.state) == "failed"
    assert tries.read_text().count("try") == 3, "1 try + 2 retries"
    assert len(posts) == 1, posts
    text = posts[0]["text"]
    assert "nw_failing_test.boom failed after try 3" in text
    assert "{{ not a template }}" in text, "the exception text is sent verbatim, not rendered"
    assert len(mails) == 1, mails
    rcpts, mail = mails[0]
    assert rcpts == ["ops@example.org"]
    assert "nw_failing_test.boom failed after try 3" in mail["Subject"]


def test_ops_notifiers_follow_configured_connections(airflow_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    from pipeline.airflow_support import ops_notifiers

    def missing(conn_id: str) -> None:
        return None

    assert ops_notifiers("x", env={}, get_connection=missing) == []
    env = {"AIRFLOW_CONN_NEWSWATCH_SLACK": "{}", "AIRFLOW_CONN_NEWSWATCH_SMTP": "{}", "NEWSWATCH_OPS_EMAIL": "a@b.c"}
    kinds = [type(n) for n in ops_notifiers("x", env=env, get_connection=missing)]
    assert kinds == [SlackWebhookNotifier, SmtpNotifier]
    # SMTP configured but nobody to send to: no mail notifier (and a warning)
    kinds = [type(n) for n in ops_notifiers("x", env={"AIRFLOW_CONN_NEWSWATCH_SMTP": "{}"},
                                            get_connection=missing, get_variable=lambda key: None)]
    assert kinds == []
