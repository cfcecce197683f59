"""Every name a module exports in ``__all__`` exists, and nothing above the adapters imports a client library."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import pipeline

MODULES = sorted(m.name for m in pkgutil.walk_packages(pipeline.__path__, "pipeline.")
                 if not m.name.startswith("pipeline.airflow")  # airflow glue: tested in test_airflow_support
                 and m.name != "pipeline.__main__")  # runs the CLI when imported


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    for exported in getattr(module, "__all__", []):
        assert hasattr(module, exported), f"{name}.__all__ names {exported!r}, which does not exist"


# Third-party clients may be imported only by their adapter modules (STYLE 5).
ADAPTERS = {
    "kafka": {"pipeline/bus/kafka.py", "pipeline/bus/kafka_consumer.py"},
    "elasticsearch": {"pipeline/index/elasticsearch.py", "pipeline/index/es_mapping.py"},
    "elastic_transport": {"pipeline/index/elasticsearch.py"},
    "opensearchpy": {"pipeline/index/opensearch.py"},
    "smtplib": {"pipeline/alerts/notifiers/smtp.py"},
    "urllib3": {"pipeline/fetch/http.py", "pipeline/fetch/deadline.py", "pipeline/fetch/body.py", "pipeline/fetch/netpolicy.py",
                "pipeline/fetch/politeness.py", "pipeline/fetch/robots.py", "pipeline/alerts/notifiers/slack.py"},
}


def test_client_libraries_are_imported_only_by_their_adapters(project_root: Path) -> None:
    offenders = []
    for path in sorted((project_root / "pipeline").rglob("*.py")):
        rel = path.relative_to(project_root).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for n in names:
                top = n.split(".")[0]
                if top in ADAPTERS and rel not in ADAPTERS[top]:
                    offenders.append(f"{rel} imports {n}")
    assert not offenders, offenders
