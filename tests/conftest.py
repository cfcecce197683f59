"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = PROJECT_ROOT.parent / "shared"


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
                "SMTP_URL", "SLACK_WEBHOOK_URL"):
        monkeypatch.delenv(var, raising=False)
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values
