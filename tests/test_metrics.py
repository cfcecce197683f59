"""``--metrics-port``: workers and ``run`` as real processes, scraped over loopback.

Counters must move with real work (messages through a worker, pages through ``run``), consumer lag must
reach 0, and ``/livez`` must answer 503 while the loop is stuck in a call that does not return (an index
request to a server that accepts and never answers) and 200 again once the loop comes around.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.bus import TOPIC_ENRICHED, TOPIC_RAW, OutMessage
from pipeline.bus.sqlite import SQLiteBus
from pipeline.cli import main
from pipeline.models import Article, EnrichedArticle, TagResult
from pipeline.newsroom import Newsroom

PROJECT = Path(__file__).resolve().parents[1]


def _article(i: int) -> Article:
    return Article(id=f"doc{i}", url=f"https://example.org/{i}", title=f"Convoy near al-Tanf {i}",
                   text="US advisers at the al-Tanf garrison in Syria trained partner forces. " * 5,
                   fetched_at="2026-11-20T10:00:00+00:00", published="2017-05-12T08:00:00+00:00")


class _Proc:
    """A ``python -m pipeline ...`` process whose stderr goes to a file; finds its metrics URL."""

    def __init__(self, args: list[str], env: dict[str, str], tmp: Path) -> None:
        self.err_path = tmp / f"stderr-{args[0]}.log"
        self._err = self.err_path.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=PROJECT,
                                     env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=self._err, text=True)
        self.url = self._wait_url()

    def stderr(self) -> str:
        return self.err_path.read_text()

    def _wait_url(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for line in self.stderr().splitlines():
                if "metrics on http://" in line:
                    return line.split("metrics on ", 1)[1].split("/metrics", 1)[0]
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no metrics URL announced; stderr:\n{self.stderr()}")

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self._err.close()
        return self.proc.returncode, out


@pytest.fixture
def start(env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., _Proc]]:
    procs: list[_Proc] = []

    def _start(*args: str, extra_env: dict[str, str] | None = None) -> _Proc:
        p = _Proc(list(args), {**env, **(extra_env or {})}, tmp_path)
        procs.append(p)
        return p

    yield _start
    for p in procs:
        p.stop()


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _live(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url + "/livez", timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _until(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_worker_counts_real_messages_and_reports_lag(env: dict[str, str], start: Callable[..., _Proc]) -> None:
    bus = SQLiteBus(Path(env["PIPELINE_DATA_DIR"]) / "bus.sqlite3")
    bus.publish(TOPIC_RAW, [OutMessage(a.id, a.to_dict()) for a in map(_article, range(5))])
    bus.publish(TOPIC_RAW, [OutMessage("bad", {"schema_version": 99})])
    bus.close()
    w = start("worker", "enrich", "--metrics-port", "0", "--poll-timeout", "0.2")
    assert w.url.startswith("http://127.0.0.1:")  # loopback unless told otherwise

    def done() -> bool:
        s = _scrape(w.url)
        return (_value(s, "newswatch_messages_processed_total", stage="enrich") == 5
                and _value(s, "newswatch_consumer_lag", stage="enrich", topic=TOPIC_RAW) == 0)

    _until(done, "5 processed and lag 0")
    s = _scrape(w.url)
    assert _value(s, "newswatch_messages_deadlettered_total", stage="enrich") == 1
    assert _value(s, "newswatch_messages_failed_total", stage="enrich") >= 1
    assert _value(s, "newswatch_batch_duration_seconds_count", stage="enrich") >= 1
    assert _value(s, "newswatch_consumer_lag_sampled_timestamp_seconds") > 0
    assert _value(s, "process_resident_memory_bytes") > 0  # the standard process collector comes along
    status, body = _live(w.url)
    assert status == 200 and body["live"] is True
    code, out = w.stop()
    assert code == 0 and "5 processed, 1 dead-lettered" in out


class _SilentServer:
    """Accepts TCP connections and never answers, until ``release()`` closes them all."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted = threading.Event()
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            self.accepted.set()

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        for c in self._conns:
            c.close()
        self.sock.close()


def test_liveness_flips_while_the_loop_is_stuck(env: dict[str, str], start: Callable[..., _Proc]) -> None:
    silent = _SilentServer()
    try:
        enriched = EnrichedArticle(article=_article(1), tags=TagResult(), enriched_at="2026-11-20T10:00:01+00:00")
        bus = SQLiteBus(Path(env["PIPELINE_DATA_DIR"]) / "bus.sqlite3")
        bus.publish(TOPIC_ENRICHED, [OutMessage(enriched.id, enriched.to_dict())])
        bus.close()
        w = start("worker", "index", "--metrics-port", "0", "--liveness-timeout", "3", "--poll-timeout", "0.2",
                  extra_env={"PIPELINE_INDEX": "elasticsearch", "ELASTICSEARCH_URL": f"http://127.0.0.1:{silent.port}"})
        assert silent.accepted.wait(60), w.stderr()
        _until(lambda: _live(w.url)[0] == 503, "/livez to report the stuck loop")
        status, body = _live(w.url)
        assert status == 503 and body["live"] is False and float(str(body["seconds_since_progress"])) >= 3
        silent.release()  # the request fails, the worker retries the batch: the loop comes around again
        _until(lambda: _live(w.url)[0] == 200, "/livez to recover")
        assert _value(_scrape(w.url), "newswatch_batch_retries_total", stage="index") >= 1
        code, _ = w.stop()
        assert code == 0
        assert "transient failure, retrying the batch" in w.stderr()
    finally:
        if not silent._stop.is_set():
            silent.release()


def test_run_counts_fetch_outcomes_and_stage_messages(env: dict[str, str], tmp_path: Path,
                                                      start: Callable[..., _Proc]) -> None:
    with Newsroom() as room:
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text("feeds:\n" + "".join(f"  - url: {f.url}\n" for f in room.feeds_config()))
        r = start("run", "--metrics-port", "0", "--json", extra_env={"PIPELINE_FEEDS": str(feeds)})

        def passed() -> bool:
            s = _scrape(r.url)
            return (_value(s, "newswatch_messages_processed_total", stage="index") > 0
                    and _value(s, "newswatch_consumer_lag", stage="index", topic=TOPIC_ENRICHED) == 0)

        _until(passed, "one pass of run through the index stage", timeout=120)
        s = _scrape(r.url)
        assert _value(s, "newswatch_fetch_outcomes_total", stage="extract", outcome="extracted") >= 5
        assert _value(s, "newswatch_fetch_outcomes_total", stage="fetch", outcome="http_404") >= 1
        assert _value(s, "newswatch_fetch_outcomes_total", stage="extract", outcome="not_article") >= 1
        assert _value(s, "newswatch_messages_processed_total", stage="enrich") >= 5
        assert _value(s, "newswatch_alert_deliveries_total", channel="file", outcome="sent") >= 1
        assert _live(r.url)[0] == 200
        code, out = r.stop()
    assert code == 0 and '"published"' in out


def test_bad_metrics_options_are_one_line_errors(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["worker", "enrich", "--metrics-port", "99999"])
    assert exc.value.code == 2
    assert "expected a port number" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert main(["worker", "enrich", "--until-idle", "--metrics-port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot listen on 127.0.0.1" in err and "Traceback" not in err
