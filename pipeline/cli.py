"""``python -m pipeline`` / ``newswatch``: the command line over the pipeline functions.

Each area registers its own subcommands (``register(subparsers)`` in its ``cli``
module); this module only configures logging, dispatches, and turns our errors into
one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sqlite3
import sys
from collections.abc import Sequence

from .errors import EXIT_ERROR, PipelineError
from .logs import configure_logging

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configure_logging(args.verbose)
        return int(args.func(args) or 0)
    except PipelineError as exc:
        print(f"newswatch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (OSError, sqlite3.Error) as exc:
        # the last resort for what no adapter translated (a full disk, a vanished file): one line, not a traceback
        if args.verbose >= 2:
            logging.getLogger(__name__).exception("unexpected error")
        print(f"newswatch: error: {_one_line(exc)} (run with -vv for the traceback)", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("newswatch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
