"""Serving :mod:`pipeline.metrics` over HTTP: ``--metrics-port`` for ``worker`` and ``run``.

Endpoints (plain HTTP, loopback by default):

* ``GET /metrics`` -- Prometheus text exposition format (prometheus_client's ``generate_latest``).
* ``GET /livez`` -- 200 while the processing loop made progress within ``liveness_timeout`` seconds,
  503 once it has not (stuck in a call that never returns, deadlocked); a JSON body says how long
  it has been quiet. A worker that is retrying against a down index or broker stays live: each retry
  is progress of the loop, and restarting it would not help.

Consumer lag is sampled by a background thread with a bus connection of its own (the worker's bus
is never shared with another thread): on start, at most every ``LAG_INTERVAL`` seconds, and soon
after a scrape when the last sample is older than ``LAG_FRESH`` seconds, so a scrape sees values at
most one scrape old without ever waiting on the bus.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import metrics
from .errors import InputError, PipelineError

__all__ = ["MetricsServer", "LagSampler", "add_arguments", "with_metrics", "DEFAULT_LIVENESS_TIMEOUT"]

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = "127.0.0.1"
#: longer than the longest quiet stretch of a healthy loop: a batch with its retries (backoff up to 30 s)
#: or the end-of-pass alert delivery of ``run`` (up to 60 s)
DEFAULT_LIVENESS_TIMEOUT = 180.0
LAG_INTERVAL = 30.0
LAG_FRESH = 2.0


class LagSampler:
    """Samples ``bus.stats`` for the given stages into ``newswatch_consumer_lag`` from its own thread.

    ``stages`` maps a stage name to (consumer group, input topics). ``open_bus`` is called in the
    sampler thread; errors are logged (once per change) and leave the last values in place, with
    ``newswatch_consumer_lag_sampled_timestamp_seconds`` showing how old they are.
    """

    def __init__(self, open_bus: Callable[[], Any], stages: Mapping[str, tuple[str, Sequence[str]]],
                 interval: float = LAG_INTERVAL) -> None:
        self._open_bus = open_bus
        self._stages = dict(stages)
        self._interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_ok = 0.0
        self._last_error = ""
        self._thread = threading.Thread(target=self._run, name="metrics-lag", daemon=True)

    def start(self) -> LagSampler:
        self._thread.start()
        return self

    def refresh_soon(self) -> None:
        """Ask for a new sample if the last one is older than ``LAG_FRESH`` seconds (never waits)."""
        if time.monotonic() - self._last_ok > LAG_FRESH:
            self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _sample(self, bus: Any) -> None:
        groups = [group for group, _ in self._stages.values()]
        lag = {s.topic: s.lag for s in bus.stats(groups)}
        for stage, (group, topics) in self._stages.items():
            for topic in topics:
                metrics.set_lag(stage, topic, lag.get(topic, {}).get(group, 0))
        metrics.LAG_SAMPLED.set(time.time())
        self._last_ok = time.monotonic()

    def _run(self) -> None:
        bus = None
        try:
            while not self._stop.is_set():
                try:
                    if bus is None:
                        bus = self._open_bus()
                    self._sample(bus)
                    if self._last_error:
                        log.warning("metrics: consumer lag sampled again")
                    self._last_error = ""
                except PipelineError as exc:
                    if str(exc) != self._last_error:
                        log.warning("metrics: cannot sample consumer lag: %s", exc)
                    self._last_error = str(exc)
                self._wake.wait(self._interval)
                self._wake.clear()
        finally:
            if bus is not None:
                try:
                    bus.close()
                except PipelineError as exc:
                    log.warning("metrics: closing the lag sampler's bus: %s", exc)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            if self.server.sampler is not None:
                self.server.sampler.refresh_soon()
            self._send(200, CONTENT_TYPE_LATEST, generate_latest())
        elif path in ("/livez", "/healthz"):
            quiet = metrics.HEARTBEAT.silence()
            live = quiet <= self.server.liveness_timeout
            body = {"live": live, "seconds_since_progress": round(quiet, 1),
                    "liveness_timeout_seconds": self.server.liveness_timeout}
            self._send(200 if live else 503, "application/json", json.dumps(body).encode())
        elif path == "/":
            self._send(200, "text/plain; charset=utf-8",
                       b"newswatch: /metrics (Prometheus text format), /livez (200 live, 503 stuck)\n")
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.debug("metrics: %s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    liveness_timeout: float = DEFAULT_LIVENESS_TIMEOUT
    sampler: LagSampler | None = None


class MetricsServer:
    """``/metrics`` and ``/livez`` on ``address:port`` (port 0: any free port) in a daemon thread."""

    def __init__(self, address: str = DEFAULT_ADDRESS, port: int = 0, *,
                 liveness_timeout: float = DEFAULT_LIVENESS_TIMEOUT, sampler: LagSampler | None = None) -> None:
        try:
            self._httpd = _Server((address, port), _Handler)
        except OSError as exc:
            raise InputError(f"--metrics-address/--metrics-port: cannot listen on {address}:{port}: "
                             f"{exc.strerror or exc}") from None
        self._httpd.liveness_timeout = liveness_timeout
        self._httpd.sampler = sampler
        self.sampler = sampler
        host, bound = self._httpd.server_address[:2]
        self.address = str(host)
        self.port = int(bound)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="metrics-http", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}"

    def start(self) -> MetricsServer:
        metrics.beat()  # starting counts as progress: liveness is measured from here
        self._thread.start()
        if self.sampler is not None:
            self.sampler.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)
        if self.sampler is not None:
            self.sampler.stop()


def _port(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = -1
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535 (0 = any free port), got {value!r}")
    return n


def _seconds(value: str) -> float:
    try:
        n = float(value)
    except ValueError:
        n = 0.0
    if not n > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}")
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--metrics-port``, ``--metrics-address`` and ``--liveness-timeout`` on a subcommand."""
    parser.add_argument("--metrics-port", type=_port, default=None, metavar="PORT",
                        help="serve Prometheus metrics on /metrics and liveness on /livez (0 = any free port)")
    parser.add_argument("--metrics-address", default=DEFAULT_ADDRESS, metavar="ADDR",
                        help=f"address the metrics server binds (default {DEFAULT_ADDRESS}; 0.0.0.0 in a container)")
    parser.add_argument("--liveness-timeout", type=_seconds, default=DEFAULT_LIVENESS_TIMEOUT, metavar="SECONDS",
                        help="/livez answers 503 when the loop made no progress for this long "
                             f"(default {DEFAULT_LIVENESS_TIMEOUT:.0f})")


def _stage_inputs(names: Sequence[str]) -> dict[str, tuple[str, Sequence[str]]]:
    from .stages import AlertStage, EnrichStage, IndexStage

    classes: dict[str, Any] = {"enrich": EnrichStage, "index": IndexStage, "alert": AlertStage}
    return {n: (classes[n].group, classes[n].topics) for n in names}


def with_metrics(func: Callable[[argparse.Namespace], int], *, stages: Callable[[argparse.Namespace], Sequence[str]]
                 ) -> Callable[[argparse.Namespace], int]:
    """``func`` run with the metrics server up when ``--metrics-port`` was given.

    ``stages(args)`` names the stages whose consumer lag is sampled (a worker: its own; ``run``: all).
    """

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        if getattr(args, "metrics_port", None) is None:
            return func(args)
        from .bus import open_bus
        from .config import load_settings

        settings = load_settings()
        names = stages(args)
        metrics.declare_stages(names)
        sampler = LagSampler(lambda: open_bus(settings), _stage_inputs(names))
        server = MetricsServer(args.metrics_address, args.metrics_port, liveness_timeout=args.liveness_timeout,
                               sampler=sampler).start()
        print(f"newswatch: metrics on {server.url}/metrics, liveness on {server.url}/livez", file=sys.stderr,
              flush=True)
        try:
            return func(args)
        finally:
            server.stop()

    return run
