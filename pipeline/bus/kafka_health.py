"""The broker's reachability as this process sees it, told in the log as one episode.

kafka-python reports a broker that went away line by line from its network layer: ERROR
"Connection failed: ECONNREFUSED", "Connection lost", "Metadata refresh: failed", a traceback
for every reset socket, and a WARNING "No node available for metadata refresh" ten times a
second, for as long as the broker is down (about 800 lines and 40 tracebacks per worker for a
15 s restart, measured by the failure benchmark). All of it is the client reconnecting as it
should. :func:`install` attaches :class:`ConnectionNoise` to kafka-python's loggers; it turns
such an episode into:

* one WARNING when it starts (``kafka: broker unreachable (...): transient, the client
  reconnects``), without traceback;
* one WARNING a minute while it lasts (``still unreachable after N s``);
* one WARNING when it ends (``kafka: broker reachable again after N s (M connection errors)``),
  logged by :func:`note_ok`, which the adapter calls whenever the broker answered (a publish
  acknowledged, records fetched, offsets committed, partitions assigned, offsets read).

For :data:`SETTLE` seconds after an episode ended, connection errors are counted but open no new
episode: a broker that has just come back still refuses a metadata refresh or two while its
listeners and the client's connections settle, which would otherwise read as three outages in ten
seconds. An outage that lasts past that window opens its episode then.

kafka-python 3 also warns whenever a task of its IO loop ran longer than 0.1 s ("It is blocking
the event loop"): on a busy machine, several times a minute. Those are kept to one line per
:data:`SLOW_LOOP_EVERY` seconds, with the count since the last one.

A third kind: kafka-python's IO loop logs "Unhandled exception in task" with a traceback when a
read task waits on a socket that another path has just closed (``Invalid file descriptor: -1``,
``is not registered``): a race inside the client on a connection that is going away anyway (seen
once in a 10-minute failure benchmark). Those become one WARNING line without the traceback; any
other unhandled exception keeps its traceback.

Other records pass through untouched. The state is one per process (every client of the process
talks to the same cluster).
"""

from __future__ import annotations

import logging
import re
import threading
import time

__all__ = ["ConnectionNoise", "install", "note_ok", "episode"]

log = logging.getLogger(__name__)

#: kafka-python messages that say "the broker cannot be reached (yet)"
CONNECTIVITY = re.compile(
    r"ECONNREFUSED|Connection refused|Connection reset|socket disconnected|Connection lost|Connection failed"
    r"|No node available|[Bb]ootstrap|Marking the coordinator dead|Error sending \w+Request|Fetch to node \S+ failed"
    r"|Metadata refresh|NodeNotReady|KafkaConnectionError|Error receiving network data|Abort \(|not ready"
    r"|Coordinator \S* ?(?:unknown|not available)|timed out|Timeout"
)
REMIND_EVERY = 60.0
SETTLE = 30.0
SLOW_LOOP = re.compile(r"blocking the event loop")
CLOSED_SOCKET_RACE = re.compile(r"Invalid file descriptor: -1|is not registered")
SLOW_LOOP_EVERY = 600.0


class _Episode:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.since: float | None = None
        self.ended: float | None = None  # when the last episode ended
        self.errors = 0
        self.reminded = 0.0
        self.slow_logged: float | None = None
        self.slow_count = 0


_STATE = _Episode()
_INSTALLED = threading.Lock()
_installed_on: set[str] = set()


def episode() -> tuple[float | None, int]:
    """(start of the current unreachable episode or None, connection errors counted in it)."""
    with _STATE.lock:
        return _STATE.since, _STATE.errors


class ConnectionNoise(logging.Filter):
    """Turns kafka-python's connection errors into one line per episode (see the module doc)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        now = time.monotonic()
        if SLOW_LOOP.search(message):
            return self._slow_loop(record, now)
        if message.startswith("Unhandled exception in task") and record.exc_info:
            exc = record.exc_info[1]
            if exc is not None and CLOSED_SOCKET_RACE.search(str(exc)):
                _rewrite(record, "kafka: an IO task of the client met a socket closed under it (%s: %s); "
                                 "the connection was being closed, the client goes on", (type(exc).__name__, exc))
            return True
        if not CONNECTIVITY.search(message):
            return True
        with _STATE.lock:
            _STATE.errors += 1
            if _STATE.since is None and _STATE.ended is not None and now - _STATE.ended < SETTLE:
                return False  # the broker is settling after an episode: counted, not a new outage yet
            if _STATE.since is None:
                _STATE.since = _STATE.reminded = now
                _rewrite(record, "kafka: broker unreachable (%s): transient, the client reconnects and retries",
                         (" ".join(message.split())[:240],))
                return True
            if now - _STATE.reminded >= REMIND_EVERY:
                _STATE.reminded = now
                _rewrite(record, "kafka: broker still unreachable after %.0f s (%d connection errors)",
                         (now - _STATE.since, _STATE.errors))
                return True
        return False

    @staticmethod
    def _slow_loop(record: logging.LogRecord, now: float) -> bool:
        with _STATE.lock:
            _STATE.slow_count += 1
            if _STATE.slow_logged is not None and now - _STATE.slow_logged < SLOW_LOOP_EVERY:
                return False
            _STATE.slow_logged, count = now, _STATE.slow_count
            _STATE.slow_count = 0
        if count > 1:
            record.msg = f"{record.msg} ({count} such warnings in the last {SLOW_LOOP_EVERY:.0f} s; one logged)"
        return True


def _rewrite(record: logging.LogRecord, msg: str, args: tuple[object, ...]) -> None:
    record.msg, record.args = msg, args
    record.levelno, record.levelname = logging.WARNING, "WARNING"
    record.exc_info = record.exc_text = None
    record.stack_info = None


def note_ok() -> None:
    """The broker answered: close the unreachable episode, if one is open, with one line."""
    if _STATE.since is None:  # the common case, without taking the lock
        return
    with _STATE.lock:
        if _STATE.since is None:
            return
        now = time.monotonic()
        seconds, errors = now - _STATE.since, _STATE.errors
        _STATE.since, _STATE.ended, _STATE.errors = None, now, 0
    log.warning("kafka: broker reachable again after %.1f s (%d connection errors)", seconds, errors)


def install() -> None:
    """Attach the filter to every kafka-python logger that exists now (they are made at import), once each."""
    with _INSTALLED:
        names = [n for n in list(logging.Logger.manager.loggerDict) if n == "kafka" or n.startswith("kafka.")]
        for name in names:
            if name in _installed_on:
                continue
            logging.getLogger(name).addFilter(ConnectionNoise())
            _installed_on.add(name)
