"""A JVM engine process: start, readiness, clean stop, SIGKILL, restart on the same port and data.

:class:`JavaEngine` is the shared life cycle; :class:`~pipeline.engines.kafka.KafkaEngine` and
:class:`~pipeline.engines.opensearch.OpenSearchEngine` say what to run and when it is ready.

* An engine lives in its ``home`` directory: data, generated configuration, ``engine.json``
  (the ports chosen at the first start, reused by every restart) and ``<name>.log`` (the JVM's
  output, appended across restarts).
* :meth:`JavaEngine.spawn` only starts the process; :meth:`JavaEngine.wait_ready` waits for the
  engine to answer its protocol; :meth:`JavaEngine.start` does both.
* :meth:`JavaEngine.stop` sends SIGTERM (the engine's own clean shutdown: Kafka's controlled
  shutdown, OpenSearch closing its shards) and SIGKILLs after ``timeout``; :meth:`JavaEngine.kill`
  SIGKILLs at once (a crash). Either way :meth:`JavaEngine.start` then restarts it on the same
  port and data.
* On Linux the JVM gets ``PR_SET_PDEATHSIG = SIGKILL``: if the process that started it dies
  (a test run interrupted, a SIGKILLed launcher), the kernel kills the JVM too. That binds the JVM
  to the *thread* that spawned it, so spawn from a thread that lives as long as the engine
  (the main thread, in practice).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from ..errors import EngineError
from .maven import POM_DIR, Classpath, find_java, resolve_classpath

__all__ = ["JavaEngine", "die_with_parent", "free_port", "port_is_free"]

log = logging.getLogger(__name__)

DEFAULT_HEAP = "512m"
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def die_with_parent() -> None:
    """``preexec_fn`` for a child that must not outlive the thread starting it (Linux; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class JavaEngine:
    """One engine JVM. Subclasses set ``name``, ``pom`` and implement the hooks below."""

    name = "engine"
    pom = POM_DIR / "engine-pom.xml"
    default_port = 0

    def __init__(self, home: Path | str, *, port: int | None = None, heap: str = DEFAULT_HEAP,
                 java: str | None = None) -> None:
        self.home = Path(home).resolve()
        self.heap = heap
        self._java = java
        self._state_file = self.home / "engine.json"
        self.state: dict[str, Any] = self._load_state()
        if port is not None:
            self.state["port"] = port
        self.classpath: Classpath | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_handle: IO[bytes] | None = None
        self.started_at = 0.0
        #: seconds from spawn to ready, of the last start
        self.ready_seconds = 0.0

    # -- hooks -------------------------------------------------------------------------------

    def _prepare_home(self) -> None:
        """Write configuration, format storage: whatever must exist before the JVM starts."""

    def _command(self, java: str, classpath: str) -> list[str]:
        raise NotImplementedError

    def _answers(self) -> bool:
        """True once the engine serves requests on its port."""
        raise NotImplementedError

    # -- state -------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self.state["port"])

    @property
    def log_file(self) -> Path:
        return self.home / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _load_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self._state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save_state(self) -> None:
        self._state_file.write_text(json.dumps(self.state, indent=2) + "\n", encoding="utf-8")

    def _choose_port(self, key: str, preferred: int) -> int:
        """The port stored under ``key`` (a restart keeps it), else ``preferred`` if free, else a free one."""
        if key in self.state:
            return int(self.state[key])
        port = preferred if preferred and port_is_free(preferred) else free_port()
        self.state[key] = port
        return port

    # -- life cycle --------------------------------------------------------------------------

    def prepare(self, *, repo_local: Path | None = None) -> Classpath:
        """Find Java and resolve the classpath (cached after the first time). Raises EngineUnavailableError."""
        if self._java is None:
            self._java = find_java()
        if self.classpath is None or repo_local is not None:
            self.home.mkdir(parents=True, exist_ok=True)
            self.classpath = resolve_classpath(self.pom, repo_local=repo_local, log_file=self.log_file)
        return self.classpath

    def spawn(self) -> None:
        """Start the JVM and return at once (see :meth:`wait_ready`)."""
        if self.running():
            raise EngineError(f"{self.name}: already running (pid {self.pid})")
        classpath = self.prepare()
        assert self._java is not None
        self.home.mkdir(parents=True, exist_ok=True)
        if "port" not in self.state or not self.state["port"]:
            self.state["port"] = self._choose_port("port", self.default_port)
        self._prepare_home()
        self._save_state()
        self._close_log()
        self._log_handle = self.log_file.open("ab")
        self._log_handle.write(f"\n== newswatch: starting {self.name} on 127.0.0.1:{self.port}\n".encode())
        self._log_handle.flush()
        cmd = self._command(self._java, str(classpath))
        self.started_at = time.monotonic()
        try:
            self.proc = subprocess.Popen(cmd, cwd=self.home, stdin=subprocess.DEVNULL, stdout=self._log_handle,
                                         stderr=subprocess.STDOUT, preexec_fn=die_with_parent)  # noqa: S603
        except OSError as exc:
            raise EngineError(f"{self.name}: cannot start {cmd[0]}: {exc}") from None
        log.info("engines: %s spawned (pid %d, port %d, log %s)", self.name, self.proc.pid, self.port, self.log_file)

    def poll_ready(self) -> bool:
        """True once the engine answers (and ``ready_seconds`` is set); False while it is starting.
        Raises EngineError, with the log's tail, if the JVM has exited."""
        if self.proc is None:
            raise EngineError(f"{self.name}: not started")
        if self.proc.poll() is not None:
            raise EngineError(f"{self.name} exited with status {self.proc.returncode} before it was ready; "
                              f"log {self.log_file}: {self.log_tail()}")
        if not self._answers():
            return False
        self.ready_seconds = time.monotonic() - self.started_at
        log.info("engines: %s ready on 127.0.0.1:%d after %.1f s", self.name, self.port, self.ready_seconds)
        return True

    def wait_ready(self, timeout: float = 240.0) -> float:
        """Block until the engine answers; returns seconds since spawn. Raises EngineError with the
        log's tail if the JVM exits, or kills it and raises if ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while not self.poll_ready():
            if time.monotonic() > deadline:
                self.kill()
                raise EngineError(f"{self.name} not ready after {timeout:.0f} s; log {self.log_file}: "
                                  f"{self.log_tail()}")
            time.sleep(0.2)
        return self.ready_seconds

    def start(self, timeout: float = 240.0) -> float:
        """Spawn and wait until ready; returns the seconds it took."""
        self.spawn()
        return self.wait_ready(timeout)

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM, then SIGKILL if still alive after ``timeout``. Returns the exit status (None if not running)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("engines: %s did not stop within %.0f s; killing it", self.name, timeout)
                return self.kill()
        code = self.proc.returncode
        self._close_log()
        log.info("engines: %s stopped (status %s)", self.name, code)
        return code

    def kill(self) -> int | None:
        """SIGKILL (a crash: nothing flushed, no clean shutdown). Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait(30)
        self._close_log()
        return self.proc.returncode

    def rss_bytes(self) -> int:
        """Resident memory of the JVM now (0 when not running)."""
        import psutil

        if not self.running():
            return 0
        assert self.proc is not None
        try:
            return int(psutil.Process(self.proc.pid).memory_info().rss)
        except psutil.Error:
            return 0

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        tail = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(tail)[-1500:]

    def _close_log(self) -> None:
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def __enter__(self) -> JavaEngine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _jvm_options(self) -> list[str]:
        return [f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError",
                "-Djava.awt.headless=true", "-Dfile.encoding=UTF-8", f"-Djava.io.tmpdir={self._tmpdir()}"]

    def _tmpdir(self) -> Path:
        tmp = self.home / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp

