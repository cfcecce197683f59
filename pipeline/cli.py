"""``python -m pipeline`` / ``newswatch``: the command line over the pipeline functions.

Each area registers its own subcommands (``register(subparsers)`` in its ``cli``
module); this module only configures logging, dispatches, and turns our errors into
one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from .errors import PipelineError

__all__ = ["main", "build_parser"]

# modules providing register(subparsers); each adds parsers with set_defaults(func=callable(args) -> int)
_COMMAND_MODULES = (
    "pipeline.commands",  # demo, newsroom, run, search, export
    "pipeline.enrich.cli",  # tag, eval-tags
    "pipeline.workers_cli",  # worker, status
    "pipeline.alerts.cli",  # alerts, watchlist
    "pipeline.kibana.cli",  # kibana objects, kibana import
    "pipeline.feedback.cli",  # feedback
    "pipeline.web.cli",  # serve
    "pipeline.feeds_cli",  # feeds
)

EXIT_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="newswatch", description="newswatch: news ingestion with alerting")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # area not installed in this build
            raise
        module.register(sub)
    return parser


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time (not the stream it was created with), so
    a caller that swaps stderr (tests capturing output, an embedding app) never leaves us writing
    to a closed stream from a background thread."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING - 10 * verbosity
    env_level = os.environ.get("PIPELINE_LOG_LEVEL")
    if env_level:
        level = getattr(logging, env_level.upper(), level)
    logging.basicConfig(
        level=max(level, logging.DEBUG),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[_StderrHandler()],
    )
    for noisy in ("trafilatura", "htmldate", "courlan", "kafka", "elastic_transport", "opensearch", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, level))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except PipelineError as exc:
        print(f"newswatch: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("newswatch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
