"""Issue 13, item 9: Airflow as ops run it, through the real ``airflow`` CLI in subprocesses.

A fresh AIRFLOW_HOME prepared the way ``make airflow-home`` / ``make airflow`` prepare it
(``docker/airflow_home.py``); then plain ``airflow`` commands with nothing but AIRFLOW_HOME set,
from another directory: only the project's DAGs, no examples, the UI bound to 127.0.0.1, and
``airflow dags test news_ingest`` exits 0 with the shipped empty feeds file and says so loudly.

The hung-run alarm under the real scheduler (``airflow standalone``: a run failed by
``dagrun_timeout`` tells ops once) takes about three minutes and a gigabyte of memory, so it runs
only with ``NEWSWATCH_SCHEDULER_TEST=1``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
DAG_IDS = ["news_backfill", "news_ingest", "news_maintenance", "watchlist_digest"]

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.skipif(importlib.util.find_spec("airflow") is None, reason="apache-airflow is not installed"),
]


def _plain_env(home: Path, **extra: str) -> dict[str, str]:
    """What an operator's shell has: PATH, HOME, AIRFLOW_HOME; none of this test session's AIRFLOW__* or
    PIPELINE_* variables."""
    return {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
            "AIRFLOW_HOME": str(home), **extra}


def _setup(home: Path, data: Path, **extra: str) -> None:
    env = _plain_env(home, PIPELINE_DATA_DIR=str(data), AIRFLOW_BIN=AIRFLOW, **extra)
    proc = subprocess.run([sys.executable, str(ROOT / "docker" / "airflow_home.py")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def made_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("made-airflow")
    home, data = root / "home", root / "var"
    _setup(home, data)
    return home, data


def test_airflow_home_config(made_home: tuple[Path, Path]) -> None:
    home, _ = made_home
    cfg = (home / "airflow.cfg").read_text().splitlines()
    assert f"dags_folder = {ROOT / 'dags'}" in cfg
    assert "load_examples = False" in cfg and "load_examples = True" not in cfg
    assert "host = 127.0.0.1" in cfg, "the UI/API binds to loopback unless AIRFLOW_HOST says otherwise"
    assert any(line.startswith("jwt_secret = ") and len(line) > 20 for line in cfg), "Airflow's own secrets kept"


def test_plain_airflow_sees_only_the_project_dags(made_home: tuple[Path, Path], tmp_path: Path) -> None:
    home, _ = made_home
    # what the dag-processor does: parse every DAG bundle (the example bundle too, when load_examples is on)
    proc = subprocess.run([AIRFLOW, "dags", "reserialize"], env=_plain_env(home), cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = subprocess.run([AIRFLOW, "dags", "list", "--output", "json"], env=_plain_env(home), cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    listed = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("[{")))
    assert sorted(d["dag_id"] for d in listed) == DAG_IDS, "the project's DAGs, and no example DAG"


def test_airflow_dags_test_news_ingest_exits_0(made_home: tuple[Path, Path], tmp_path: Path) -> None:
    home, data = made_home
    proc = subprocess.run([AIRFLOW, "dags", "test", "news_ingest"], env=_plain_env(home), cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "has no attribute 'hex'" not in out
    assert "state=success" in out
    warning = [line for line in out.splitlines() if "NO FEEDS CONFIGURED" in line]
    assert warning and "warning" in warning[0].lower(), "the empty feeds file is a visible warning"
    assert (data / "state.sqlite3").exists(), "tasks found the data directory through the home's Variables"
    assert list(tmp_path.iterdir()) == [], "nothing written to the working directory"


# -- the hung-run alarm under the real scheduler (opt-in) ------------------------------------------


class _Peers:
    """A Slack webhook that records posts, and a news site whose feed lists three articles."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        posts = self.posts

        class Slack(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                posts.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0")))))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        class Site(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                base = f"http://127.0.0.1:{self.server.server_address[1]}"
                if self.path == "/feed.xml":
                    items = "".join(f"<item><title>s{i}</title><link>{base}/a{i}</link></item>" for i in range(3))
                    body = (f"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title><link>{base}/</link>"
                            f"{items}</channel></rss>").encode()
                else:
                    body = f"<html><body><article><p>{'words ' * 200}</p></article></body></html>".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.servers = [ThreadingHTTPServer(("127.0.0.1", 0), Slack), ThreadingHTTPServer(("127.0.0.1", 0), Site)]
        for s in self.servers:
            threading.Thread(target=s.serve_forever, daemon=True).start()
        self.slack_url = f"http://127.0.0.1:{self.servers[0].server_address[1]}/services/T0/B0/X"
        self.feed_url = f"http://127.0.0.1:{self.servers[1].server_address[1]}/feed.xml"

    def close(self) -> None:
        for s in self.servers:
            s.shutdown()
            s.server_close()


@pytest.fixture
def peers() -> Iterator[_Peers]:
    p = _Peers()
    yield p
    p.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(not os.environ.get("NEWSWATCH_SCHEDULER_TEST"),
                    reason="starts airflow standalone for about 3 minutes: set NEWSWATCH_SCHEDULER_TEST=1")
def test_hung_run_alarm_fires_under_the_real_scheduler(tmp_path: Path, peers: _Peers) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - url: {peers.feed_url}\n")
    home = tmp_path / "home"
    env = _plain_env(
        home, AIRFLOW_PORT=str(_free_port()), AIRFLOW_BIN=AIRFLOW, PIPELINE_DATA_DIR=str(tmp_path / "var"),
        PIPELINE_FEEDS=str(feeds), PIPELINE_ALLOW_HOSTS="127.0.0.1",
        PIPELINE_FETCH_DELAY="300",  # 300 s between two requests to the site: ingest_batch "hangs"
        NEWSWATCH_INGEST_DEADLINE_MINUTES="1",
        AIRFLOW_CONN_NEWSWATCH_SLACK=json.dumps({"conn_type": "slackwebhook", "password": peers.slack_url}),
    )
    log = (tmp_path / "standalone-script.log").open("w")
    proc = subprocess.Popen(["bash", str(ROOT / "docker" / "airflow-standalone.sh")], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while "UI up at" not in (tmp_path / "standalone-script.log").read_text():
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "standalone-script.log").read_text()
            time.sleep(2)
        unpause = subprocess.run([AIRFLOW, "dags", "unpause", "news_ingest"], env=env, capture_output=True,
                                 text=True, timeout=120)
        assert unpause.returncode == 0, unpause.stderr[-2000:]
        deadline = time.monotonic() + 400
        while not peers.posts and time.monotonic() < deadline:
            time.sleep(2)
        assert peers.posts, (home / "standalone.log").read_text()[-5000:]
        time.sleep(20)  # nothing else comes for the same run (the task's own callback stays quiet)
        texts = [p["text"] for p in peers.posts]
        assert len(texts) == 1 and "news_ingest run scheduled__" in texts[0] and "timed out" in texts[0], texts
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
