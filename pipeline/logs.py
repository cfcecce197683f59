"""Logging for the entry points: level from ``-v`` or ``PIPELINE_LOG_LEVEL``, and no library tracebacks.

Client libraries log their own retries with the exception attached: the Elasticsearch client
(``elastic_transport``) logs "Retrying request after failure" with a three-part traceback
every time the cluster refuses a connection, although we translate that failure into one
:class:`~pipeline.errors.TransientIndexError` line at the adapter. :class:`OneLineTracebacks`
keeps such a record but replaces its traceback by the exception's one-line text, unless we run
at DEBUG (``-vv``), where the traceback is what one wants. It is installed on the loggers of
the client libraries (not on a handler), so it holds whatever handlers are configured: the
CLI's, Airflow's task log, an embedding application's.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from .errors import ConfigError

__all__ = ["configure_logging", "quiet_library_tracebacks", "OneLineTracebacks", "LIBRARY_LOGGERS", "parse_level"]

#: loggers of client libraries whose records may carry tracebacks of failures we translate ourselves
#: (a logger's filters see only the records made on that very logger, so each emitting logger is named)
LIBRARY_LOGGERS = (
    "elastic_transport.transport", "elastic_transport.node_pool", "elastic_transport.node", "opensearch",
)
_NOISY = ("trafilatura", "htmldate", "courlan", "kafka", "elastic_transport", "opensearch", "urllib3")
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class OneLineTracebacks(logging.Filter):
    """Drops the traceback of a record (keeping it, with the exception's one line appended) unless
    the root logger is at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and logging.getLogger().getEffectiveLevel() > logging.DEBUG:
            exc = record.exc_info[1]
            if exc is not None:
                text = " ".join(str(exc).split())[:300]
                record.msg = f"{record.getMessage()}: {type(exc).__name__}: {text}"
                record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


_FILTER = OneLineTracebacks()


def quiet_library_tracebacks() -> None:
    """Install :class:`OneLineTracebacks` on the client libraries' loggers (idempotent)."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def parse_level(value: str, source: str = "environment variable PIPELINE_LOG_LEVEL") -> int:
    """A level name (any case) or number; anything else is a ConfigError naming ``source``."""
    text = value.strip().upper()
    if text in _LEVELS:
        return int(getattr(logging, text))
    if text.isdigit():
        return int(text)
    raise ConfigError(f"{source}: unknown log level {value!r} (use one of {', '.join(_LEVELS)})")


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


def configure_logging(verbosity: int, env: dict[str, str] | None = None) -> None:
    """Configure the root logger for a command (``-v`` INFO, ``-vv`` DEBUG, or ``PIPELINE_LOG_LEVEL``)."""
    env = dict(os.environ if env is None else env)
    level = logging.WARNING - 10 * verbosity
    env_level = env.get("PIPELINE_LOG_LEVEL")
    if env_level:
        level = parse_level(env_level)
    logging.basicConfig(
        level=max(level, logging.DEBUG),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[_StderrHandler()],
    )
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, level))
    quiet_library_tracebacks()
