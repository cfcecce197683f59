"""``python -m pipeline.engines kafka|opensearch``: run one engine in the foreground (``make kafka``,
``make opensearch``).

Prints one line when the engine accepts connections, then waits; Ctrl-C or SIGTERM stops it
cleanly (the engine's own shutdown), a second one kills it. Port: ``--port``, else
``KAFKA_PORT`` / ``OPENSEARCH_PORT``, else 9092 / 9200. Data and the log file live in
``--home`` (default ``$PIPELINE_DATA_DIR/engines/<name>``, i.e. ``var/engines/<name>``) and
survive restarts.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from ..errors import ConfigError, EngineError, EngineUnavailableError
from . import ENGINES, JavaEngine, KafkaEngine, OpenSearchEngine, port_is_free

PORT_VARS = {"kafka": "KAFKA_PORT", "opensearch": "OPENSEARCH_PORT"}


def _env_port(var: str, default: int) -> int:
    raw = os.environ.get(var, "").strip()
    if not raw:
        return default
    port = int(raw) if raw.isdigit() else 0
    if not 0 < port < 65536:
        raise ConfigError(f"environment variable {var}: expected a TCP port, got {raw!r}")
    return port


def _ready_line(engine: JavaEngine) -> str:
    if isinstance(engine, KafkaEngine):
        where = f"KAFKA_BOOTSTRAP_SERVERS={engine.bootstrap_servers}"
    elif isinstance(engine, OpenSearchEngine):
        where = f"OPENSEARCH_URL={engine.url}"
    else:
        where = f"127.0.0.1:{engine.port}"
    return (f"{engine.name} ready after {engine.ready_seconds:.1f} s: {where} (pid {engine.pid}, "
            f"log {engine.log_file}); Ctrl-C stops it")


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.engines",
                                     description="run a development engine in the foreground")
    parser.add_argument("engine", choices=sorted(ENGINES))
    parser.add_argument("--port", type=int, help="TCP port on 127.0.0.1 (default: KAFKA_PORT/OPENSEARCH_PORT, "
                                                 "else 9092/9200)")
    parser.add_argument("--home", type=Path, help="data, configuration and log (default var/engines/NAME)")
    parser.add_argument("--heap", default="512m", help="JVM heap (default 512m)")
    args = parser.parse_args(argv)
    cls = ENGINES[args.engine]
    port = args.port or _env_port(PORT_VARS[args.engine], cls.default_port)
    home = args.home or Path(os.environ.get("PIPELINE_DATA_DIR") or "var") / "engines" / args.engine
    if not port_is_free(port):
        raise ConfigError(f"{PORT_VARS[args.engine]}: 127.0.0.1:{port} is already in use; choose another port")
    engine = cls(home, port=port, heap=args.heap)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            engine.kill()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    print(f"{engine.name}: starting on 127.0.0.1:{port} (first start resolves its jars from Maven Central; "
          f"log {engine.log_file})", flush=True)
    engine.spawn()
    while not stop.is_set() and not engine.poll_ready():
        stop.wait(0.2)
    if not stop.is_set():
        print(_ready_line(engine), flush=True)
    while not stop.is_set() and engine.running():
        stop.wait(0.5)
    if not engine.running() and not stop.is_set():
        raise EngineError(f"{engine.name} exited by itself (status {engine.proc.returncode if engine.proc else '?'}); "
                          f"log {engine.log_file}: {engine.log_tail()}")
    code = engine.stop()
    how = "cleanly" if code in (0, 128 + signal.SIGINT, 128 + signal.SIGTERM) else "by SIGKILL" if code == -9 else ""
    print(f"{engine.name}: stopped {how} (exit status {code})".replace("  ", " "), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(argv)
    except ConfigError as exc:
        print(f"engines: error: {exc}", file=sys.stderr)
        return 2
    except EngineUnavailableError as exc:
        print(f"engines: cannot run: {exc}", file=sys.stderr)
        return 2
    except EngineError as exc:
        print(f"engines: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
