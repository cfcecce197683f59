"""Fixtures shared by the whole suite, and the session's real engines (see ``engines_pool``)."""

from __future__ import annotations

import gc
import threading
from pathlib import Path
from typing import cast

import pytest
from engines_pool import EnginePool, engines_needed

from pipeline.engines import KafkaEngine, OpenSearchEngine

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = PROJECT_ROOT.parent / "shared"
_POOL = pytest.StashKey[EnginePool]()
_OPEN_CLIENTS = pytest.StashKey[list[str]]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Spawn the real engines the selected tests need, so they boot while the first tests run."""
    needed = engines_needed(session.items)
    if not needed or session.config.option.collectonly:
        return
    pool = session.config.stash[_POOL] = EnginePool()
    pool.spawn(needed)


def _open_kafka_clients() -> list[str]:
    """kafka-python clients still running (each has an IO thread): a client left open goes on reconnecting,
    and logging about it, once the session's broker is gone."""
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("kafka-io"))


def pytest_sessionfinish(session: pytest.Session) -> None:
    gc.collect()
    session.config.stash[_OPEN_CLIENTS] = _open_kafka_clients()
    pool = session.config.stash.get(_POOL, None)
    if pool is not None:
        pool.stop_all()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    pool = config.stash.get(_POOL, None)
    if pool is not None:
        terminalreporter.write_line(pool.summary())
    left = config.stash.get(_OPEN_CLIENTS, [])
    if left:
        terminalreporter.write_line(f"Kafka clients left open by the tests: {len(left)} ({', '.join(left)})",
                                    yellow=True)


def _pool(config: pytest.Config) -> EnginePool:
    if _POOL not in config.stash:
        config.stash[_POOL] = EnginePool()
    return config.stash[_POOL]


@pytest.fixture(scope="session")
def real_kafka(request: pytest.FixtureRequest) -> KafkaEngine:
    """The session's Kafka 4 broker (KRaft, one node), ready: ``.bootstrap_servers``."""
    return cast(KafkaEngine, _pool(request.config).get("kafka"))


@pytest.fixture(scope="session")
def real_opensearch(request: pytest.FixtureRequest) -> OpenSearchEngine:
    """The session's OpenSearch 2.19 node, ready: ``.url``."""
    return cast(OpenSearchEngine, _pool(request.config).get("opensearch"))


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the project; tests needing it skip with a clear reason if absent."""
    if not (SHARED_DIR / "data").is_dir() or not (SHARED_DIR / "seeds").is_dir():
        pytest.skip(f"../shared (seeds and third-party test data) not found at {SHARED_DIR}")
    return SHARED_DIR


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An isolated environment: data in tmp_path, the project's config, no real services."""
    values = {
        "PIPELINE_DATA_DIR": str(tmp_path / "var"),
        "PIPELINE_CONFIG_DIR": str(PROJECT_ROOT / "config"),
        "PIPELINE_BUS": "sqlite",
        "PIPELINE_INDEX": "sqlite",
        "PIPELINE_ALLOW_HOSTS": "127.0.0.1,localhost",
        "PIPELINE_FETCH_DELAY": "0",
    }
    for var in ("PIPELINE_FEEDS", "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_API_VERSION", "ELASTICSEARCH_URL",
                "ELASTICSEARCH_API_KEY", "OPENSEARCH_URL", "OPENSEARCH_USERNAME", "OPENSEARCH_PASSWORD",
                "SMTP_URL", "SLACK_WEBHOOK_URL"):
        monkeypatch.delenv(var, raising=False)
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values
