"""Real engines for the test session: one Kafka broker and one OpenSearch node, shared.

Tests that need one are marked ``kafka`` / ``opensearch`` (directly, or through a fixture
parameter) or use the ``real_kafka`` / ``real_opensearch`` fixtures. When collection is over,
the engines those tests need are spawned at once, side by side, on free ports with data in
a temporary directory, so they boot while the first tests run; a fixture waits for its engine
only when a test asks for it. ``pytest_sessionfinish`` (or, after an interrupt, ``atexit``) stops
them; if pytest itself dies, the kernel kills them (``PR_SET_PDEATHSIG``, see
:mod:`pipeline.engines.process`).

Without Java or Maven (or with Maven Central unreachable) those tests skip, all with the same
one-line reason. With ``CI=true`` they fail instead: CI must run them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

import pytest

from pipeline.engines import ENGINES, JavaEngine, free_port
from pipeline.errors import EngineError

ENGINE_FIXTURES = {"real_kafka": "kafka", "real_opensearch": "opensearch"}


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test for ``reason``; with CI=true fail it instead (CI must run the real-engine tests)."""
    if running_in_ci():
        pytest.fail(f"{reason} (CI=true: the real-engine tests must run)", pytrace=False)
    pytest.skip(reason)


def engines_needed(items: Iterable[pytest.Item]) -> set[str]:
    needed: set[str] = set()
    for item in items:
        needed.update(name for name in ENGINES if item.get_closest_marker(name) is not None)
        needed.update(engine for fixture, engine in ENGINE_FIXTURES.items()
                      if fixture in getattr(item, "fixturenames", ()))
    return needed


class EnginePool:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="newswatch-engines-"))
        self.engines: dict[str, JavaEngine] = {}
        self.problems: dict[str, str] = {}
        self.ready: set[str] = set()
        self.resolve_seconds: dict[str, float] = {}
        self.boot_seconds: dict[str, float] = {}  # spawn to first answer, measured in the background
        self._stopped = False
        atexit.register(self.stop_all)

    def spawn(self, names: Iterable[str]) -> None:
        """Resolve and start ``names`` without waiting (call from the main thread: see module doc)."""
        for name in sorted(names):
            if name in self.engines or name in self.problems:
                continue
            engine = ENGINES[name](self.root / name, port=free_port())
            start = time.monotonic()
            try:
                engine.prepare()
                self.resolve_seconds[name] = time.monotonic() - start
                engine.spawn()
            except EngineError as exc:
                self.problems[name] = str(exc)
                continue
            self.engines[name] = engine
            threading.Thread(target=self._time_boot, args=(name, engine), daemon=True).start()

    def _time_boot(self, name: str, engine: JavaEngine) -> None:
        """Probe (never start or stop) the engine until it answers, to report its boot time."""
        while not self._stopped:
            try:
                if engine.poll_ready():
                    self.boot_seconds[name] = engine.ready_seconds
                    return
            except EngineError:
                return
            time.sleep(0.2)

    def get(self, name: str) -> JavaEngine:
        """The engine, ready; skips (fails with CI=true) the test when it cannot be had."""
        if name not in self.engines and name not in self.problems:
            self.spawn([name])
        if name not in self.problems and name not in self.ready:
            try:
                self.engines[name].wait_ready()
                self.ready.add(name)
            except EngineError as exc:
                self.problems[name] = str(exc)
        if name in self.problems:
            skip_or_fail(f"real {name} unavailable: {self.problems[name]}")
        return self.engines[name]

    def summary(self) -> str:
        parts = []
        for name, engine in sorted(self.engines.items()):
            resolved = self.resolve_seconds.get(name, 0.0)
            cp = "cached classpath" if engine.classpath and engine.classpath.cached else f"resolved in {resolved:.1f} s"
            boot = self.boot_seconds.get(name)
            state = f"answered {boot:.1f} s after spawn" if boot is not None else "never answered"
            parts.append(f"{name} on 127.0.0.1:{engine.port} ({cp}, {state})")
        parts.extend(f"{name}: {problem}" for name, problem in sorted(self.problems.items()))
        return "real engines: " + "; ".join(parts)

    def stop_all(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for engine in self.engines.values():
            try:
                engine.stop(timeout=30)
            except (EngineError, OSError):
                engine.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def config_dir_with(tmp_path: Path, *, topic_prefix: str = "", index_prefix: str = "") -> Path:
    """A copy of the project's ``config/`` whose settings give this test its own Kafka topic prefix
    and search-index prefix on the session's shared engines."""
    import yaml

    target = tmp_path / "config"
    shutil.copytree(Path(__file__).resolve().parents[1] / "config", target)
    settings = target / "settings.yaml"
    data = yaml.safe_load(settings.read_text(encoding="utf-8")) or {}
    if topic_prefix:
        data.setdefault("kafka", {})["topic_prefix"] = topic_prefix
    if index_prefix:
        data.setdefault("opensearch", {})["index_prefix"] = index_prefix
    settings.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return target
