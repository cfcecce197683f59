"""Processes of the failure benchmark: supervised workers and the metrics scraper.

:class:`Supervised` is one worker slot (``python -m pipeline worker STAGE --metrics-port P``), as a
service manager runs it: started, SIGKILLed by the benchmark and started again, and restarted
(after a pause, counted as a crash) if it ever exits on its own. Every incarnation appends to the
slot's log file after a marker line, so the log analysis can tell incarnations apart.

:class:`Scraper` reads every slot's ``/metrics`` and ``/livez`` every few seconds in a thread and keeps
the samples: the proof that the endpoint answers during the run, and one source of recovery times.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from prometheus_client.parser import text_string_to_metric_families

from pipeline.engines import die_with_parent

__all__ = ["Exit", "Sample", "Scraper", "Supervised", "START_MARK"]

PROJECT = Path(__file__).resolve().parents[1]
START_MARK = "== chaos: incarnation"
CRASH_RESTART_DELAY = 2.0
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Exit:
    """How one incarnation ended."""

    incarnation: int
    at: float
    code: int
    cause: str  # "killed" (SIGKILL by the benchmark), "stopped" (SIGTERM at the end), "crashed" (on its own)


@dataclass
class Supervised:
    """One worker slot. ``name`` is the slot (``index-a``), ``stage`` the worker's stage."""

    name: str
    stage: str
    env: dict[str, str]
    log_path: Path
    metrics_port: int
    incarnation: int = 0
    started_at: list[float] = field(default_factory=list)
    exits: list[Exit] = field(default_factory=list)
    kills: list[float] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _expected: str = ""

    @property
    def argv(self) -> list[str]:
        return [sys.executable, "-m", "pipeline", "worker", self.stage, "--metrics-port", str(self.metrics_port),
                "--poll-timeout", "0.5"]

    def start(self) -> None:
        with self._lock:
            self._start()

    def _start(self) -> None:
        self.incarnation += 1
        if self._log is None:
            self._log = self.log_path.open("ab")
        now = time.time()
        self._log.write(f"{START_MARK} {self.incarnation} of {self.name} at {now:.3f}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(self.argv, cwd=PROJECT, env=self.env, stdin=subprocess.DEVNULL,  # noqa: S603
                                     stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        self.started_at.append(now)
        self._expected = ""

    def kill(self) -> float:
        """SIGKILL the running incarnation (a crash as the kernel's OOM killer or a power cut does it)."""
        with self._lock:
            at = time.time()
            if self.proc is not None and self.proc.poll() is None:
                self._expected = "killed"
                self.proc.send_signal(signal.SIGKILL)
                code = self.proc.wait(30)
                self.exits.append(Exit(self.incarnation, at, code, "killed"))
                self.kills.append(at)
            self.proc = None
            return at

    def restart(self) -> None:
        with self._lock:
            if self.proc is None or self.proc.poll() is not None:
                self._start()

    def check(self) -> Exit | None:
        """Notice an incarnation that ended on its own; restart it after a pause, as a supervisor would."""
        with self._lock:
            if self.proc is None or self.proc.poll() is None or self._expected:
                return None
            ended = Exit(self.incarnation, time.time(), int(self.proc.returncode), "crashed")
            self.exits.append(ended)
            self.proc = None
        time.sleep(CRASH_RESTART_DELAY)
        self.restart()
        return ended

    def stop(self, timeout: float = 90.0) -> int | None:
        """SIGTERM (finish and commit the current batch), SIGKILL after ``timeout``; the exit code."""
        with self._lock:
            proc, self.proc = self.proc, None
            if proc is None:
                return None
            self._expected = "stopped"
            code: int | None
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    code = proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    code = proc.wait(30)
            else:
                code = proc.returncode
            self.exits.append(Exit(self.incarnation, time.time(), int(code), "stopped"))
            return code

    def close(self) -> None:
        with self._lock:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(30)
            self.proc = None
            if self._log is not None:
                self._log.close()
                self._log = None

    def text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""


@dataclass
class Sample:
    """One scrape of one slot."""

    at: float
    slot: str
    metrics_ok: bool
    live_status: int  # HTTP status of /livez, 0 when unreachable
    values: dict[str, float]


WANTED = {
    "newswatch_messages_processed_total": "processed",
    "newswatch_messages_failed_total": "failed",
    "newswatch_messages_deadlettered_total": "deadlettered",
    "newswatch_batch_retries_total": "batch_retries",
    "newswatch_consumer_lag": "consumer_lag",
    "newswatch_alert_deliveries_total": "deliveries",
    "newswatch_last_progress_timestamp_seconds": "last_progress",
}


def _get(url: str, timeout: float) -> tuple[int, str]:
    try:
        with _NO_PROXY.open(url, timeout=timeout) as resp:
            return int(resp.status), resp.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode("utf-8", errors="replace")
    except (OSError, ValueError):
        return 0, ""


def parse_metrics(text: str) -> dict[str, float]:
    """The benchmark's series of a scrape, summed over labels except ``channel``/``outcome``/``topic``."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            short = WANTED.get(sample.name)
            if short is None:
                continue
            key = short
            for label in ("channel", "outcome", "topic"):
                if label in sample.labels:
                    key += f"{{{label}={sample.labels[label]}}}"
            out[key] = out.get(key, 0.0) + float(sample.value)
    return out


class Scraper:
    """Scrapes every slot's endpoints every ``interval`` seconds in a thread."""

    def __init__(self, slots: list[Supervised], interval: float = 2.0) -> None:
        self.slots = slots
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scraper", daemon=True)

    def scrape(self, slot: Supervised) -> Sample:
        base = f"http://127.0.0.1:{slot.metrics_port}"
        status, text = _get(base + "/metrics", 3.0)
        values: dict[str, float] = {}
        if status == 200:
            with contextlib.suppress(ValueError):
                values = parse_metrics(text)
        live, _ = _get(base + "/livez", 3.0)
        return Sample(time.time(), slot.name, status == 200, live, values)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            for slot in self.slots:
                self.samples.append(self.scrape(slot))

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def summary(self) -> dict[str, Any]:
        """Per slot: scrapes, answered, /livez 200 and 503 counts (unreachable: the process was restarting), the
        counters summed over the slot's incarnations (each restart starts them at 0), the largest lag seen, and
        the last values scraped."""
        out: dict[str, Any] = {}
        for slot in self.slots:
            mine = [s for s in self.samples if s.slot == slot.name]
            answered = [s for s in mine if s.metrics_ok]
            last = answered[-1].values if answered else {}
            out[slot.name] = {
                "scrapes": len(mine),
                "metrics_answered": len(answered),
                "livez_200": sum(1 for s in mine if s.live_status == 200),
                "livez_503": sum(1 for s in mine if s.live_status == 503),
                "unreachable": sum(1 for s in mine if s.live_status == 0),
                "max_consumer_lag": max((v for s in answered for k, v in s.values.items()
                                         if k.startswith("consumer_lag")), default=0.0),
                "over_incarnations": {key: _over_restarts([s.values.get(key, 0.0) for s in answered])
                                      for key in ("processed", "batch_retries", "failed", "deadlettered")},
                "last_values": {k: round(v, 3) for k, v in sorted(last.items()) if k != "last_progress"},
            }
        return out

    def around(self, slot: str, at: float) -> dict[str, Any] | None:
        """The scrape of ``slot`` nearest to ``at`` that answered: when, /livez, the values."""
        answered = [s for s in self.samples if s.slot == slot and s.metrics_ok]
        if not answered:
            return None
        s = min(answered, key=lambda x: abs(x.at - at))
        return {"at": round(s.at, 1), "livez": s.live_status,
                "values": {k: round(v, 1) for k, v in sorted(s.values.items()) if k != "last_progress"}}


def _over_restarts(values: list[float]) -> float:
    """A counter's total over a sequence of scrapes in which each process restart set it back to 0."""
    total, previous = 0.0, 0.0
    for v in values:
        total += v - previous if v >= previous else v
        previous = v
    return total


def worker_env(base: dict[str, str]) -> dict[str, str]:
    """The environment of a worker: the benchmark's settings over this process's environment."""
    env = {**os.environ, **base}
    env.pop("KAFKA_API_VERSION", None)
    return env
