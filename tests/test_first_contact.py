"""First contact: a clean install, a demo that says where things went, and commands that say where they look."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from test_demo_e2e import _free_port_block

from pipeline.cli import main
from pipeline.config import load_settings

PROJECT = Path(__file__).resolve().parents[1]


def test_pyproject_has_an_spdx_license_and_builds_without_deprecation_warnings() -> None:
    """What `make run` prints while pip builds the package: setuptools warns on a license table."""
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    cwd = os.getcwd()
    os.chdir(PROJECT)  # setuptools resolves readme and packages from the project folder
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            dist = apply_configuration(Distribution(), PROJECT / "pyproject.toml")
    finally:
        os.chdir(cwd)
    assert dist.metadata.license_expression == "Apache-2.0"


def _plain_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "ELASTICSEARCH_", "SMTP_", "SLACK_"))}


def test_from_another_directory_a_read_command_says_where_it_looked(tmp_path: Path) -> None:
    cfg = tmp_path / "project" / "config"
    cfg.mkdir(parents=True)
    (cfg / "settings.yaml").write_text("data_dir: ../var\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run([sys.executable, "-m", "pipeline", "search", "al-Tanf"], cwd=elsewhere, text=True,
                          capture_output=True, timeout=60, env={**_plain_env(), "PIPELINE_CONFIG_DIR": str(cfg)})
    assert proc.returncode == 2 and proc.stdout == ""
    data = tmp_path / "project" / "var"
    assert proc.stderr == (f"newswatch: error: no data here: data directory {data} (from {cfg / 'settings.yaml'}: "
                           "data_dir) does not exist; run `demo` or `run --once` first, or point PIPELINE_DATA_DIR at "
                           "your data\n")
    assert list(elsewhere.iterdir()) == [], "no ./var created where the command was run"
    assert not data.exists()


def test_without_a_local_config_the_project_config_and_its_var_are_used(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.config import default_config_dir, project_config_dir

    monkeypatch.chdir(tmp_path)
    assert default_config_dir() == project_config_dir() == PROJECT / "config"
    s = load_settings({})
    assert s.config_dir == PROJECT / "config"
    assert s.data_dir == PROJECT / "var", "settings.yaml's data_dir is relative to its own folder"
    assert s.origin("data_dir") == f"{PROJECT / 'config' / 'settings.yaml'}: data_dir"
    (tmp_path / "config").mkdir()
    assert default_config_dir() == tmp_path / "config", "a ./config here wins"
    s = load_settings({"PIPELINE_DATA_DIR": "rel/var"})
    assert s.data_dir == tmp_path / "rel" / "var", "a relative variable is relative to where you are"
    assert s.origin("data_dir") == "environment variable PIPELINE_DATA_DIR"


def test_the_demo_ends_with_where_the_alerts_went_and_what_to_try_next(
        env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--port", str(_free_port_block())])
    out = capsys.readouterr().out
    assert code == 0
    alerts_file = Path(env["PIPELINE_DATA_DIR"]) / "alerts.jsonl"
    assert f"alerts were written to {alerts_file} (no SMTP_URL or SLACK_WEBHOOK_URL set" in out
    assert alerts_file.exists()
    tail = out[out.index("try next:"):]
    for command in (" search ", " alerts ", " tag ", " status "):
        assert command in tail
    steps = [line for line in tail.splitlines() if " -m pipeline " in line or line.strip().startswith("make ")]
    assert steps[-1].rstrip().endswith(" serve") and "PIPELINE_FEEDS=" in steps[-1], "the last step is the command that serves the web page over this data"
    assert " -m pipeline " in tail
