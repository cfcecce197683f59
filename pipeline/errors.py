"""newswatch's exception hierarchy.

Adapters translate third-party exceptions (kafka, elasticsearch, smtplib, urllib3,
sqlite3) into these at the boundary, so nothing above an adapter imports a client
library to catch its errors.

Expected drops ("not an article", "too short", "duplicate") are *values* with a
reason (see ``pipeline.models.Outcome``), never exceptions.
"""

from __future__ import annotations

__all__ = [
    "PipelineError",
    "ConfigError",
    "InputError",
    "FetchError",
    "BlockedURLError",
    "FetchTimeoutError",
    "TooLargeError",
    "HTTPStatusError",
    "BusError",
    "TransientBusError",
    "SearchIndexError",
    "TransientIndexError",
    "PermanentIndexError",
    "NotifyError",
    "TransientNotifyError",
    "PermanentNotifyError",
    "CatalogueError",
    "EngineError",
    "EngineUnavailableError",
    "StateError",
    "RunLockedError",
    "EXIT_ERROR",
    "EXIT_BUSY",
]

#: exit status of a command that could not run: bad usage, bad configuration, unusable data directory or state
EXIT_ERROR = 2
#: exit status when another process holds the data directory (``run`` without ``--wait``); sysexits' EX_TEMPFAIL
EXIT_BUSY = 75


class PipelineError(Exception):
    """Base of every error newswatch raises on purpose."""

    #: Whether retrying the same operation later may succeed.
    transient: bool = False
    #: The command line's exit status when this error ends a command.
    exit_code: int = EXIT_ERROR


class ConfigError(PipelineError):
    """A configuration file or environment value is invalid.

    The message is one line naming the file (or variable), the key and the problem.
    """


class InputError(PipelineError):
    """Bad user input on the command line or in a file given to a command."""


class CatalogueError(ConfigError):
    """The gazetteer catalogue in ``seeds/`` is invalid; the message names the entry."""


class StateError(PipelineError):
    """The run-state database (or the data directory holding it) cannot be opened or written:
    not a database, held by another process, disk full. The message names the file."""


class RunLockedError(PipelineError):
    """Another process holds the data directory's run lock (see :mod:`pipeline.runlock`)."""

    transient = True
    exit_code = EXIT_BUSY

    def __init__(self, message: str, *, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class FetchError(PipelineError):
    """A fetch failed. ``reason`` is a short machine-readable outcome name."""

    reason = "fetch_error"
    transient = True

    def __init__(self, message: str, *, url: str = "", reason: str | None = None) -> None:
        super().__init__(message)
        self.url = url
        if reason is not None:
            self.reason = reason


class BlockedURLError(FetchError):
    """The URL is not allowed: bad scheme, non-public address, robots.txt."""

    reason = "blocked"
    transient = False


class FetchTimeoutError(FetchError):
    """Connect/read timeout or the total deadline passed."""

    reason = "timeout"


class TooLargeError(FetchError):
    """The (decompressed) body exceeded the size cap."""

    reason = "too_large"
    transient = False


class HTTPStatusError(FetchError):
    """The server answered with a non-success status."""

    reason = "http_status"

    def __init__(self, message: str, *, url: str = "", status: int = 0, retry_after: float | None = None) -> None:
        super().__init__(message, url=url, reason=f"http_{status}")
        self.status = status
        self.retry_after = retry_after
        self.transient = status in (408, 425, 429, 500, 502, 503, 504)


class BusError(PipelineError):
    """The message bus failed (publish not acknowledged, commit failed, ...)."""


class TransientBusError(BusError):
    transient = True


class SearchIndexError(PipelineError):
    """The search index failed."""


class TransientIndexError(SearchIndexError):
    transient = True


class PermanentIndexError(SearchIndexError):
    """The document can never be indexed (e.g. a mapping error); dead-letter it."""


class NotifyError(PipelineError):
    """An alert could not be delivered on one channel."""


class TransientNotifyError(NotifyError):
    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentNotifyError(NotifyError):
    transient = False


class EngineError(PipelineError):
    """A development engine (``pipeline.engines``: Kafka, OpenSearch) failed to start or stop."""


class EngineUnavailableError(EngineError):
    """An engine cannot be had here: no Java 17+, no Maven, or its jars cannot be resolved."""
