"""What a pass shows while it runs (a terminal line) and when it ends (one line per pass).

``ingest`` reports a :class:`PassState` to its ``progress`` callback on every event (a feed
polled, a page fetched, a page extracted) and on a tick every quarter second, with the host
of the oldest fetch in flight when that fetch has taken more than ``STALL_AFTER_S``.
:class:`TerminalProgress` draws it as one line on a terminal's stderr (at most ten times a
second), e.g. ``feeds 3/12 · fetched 40/57 · extracted 35 · waiting 12s on slow.example``,
and :meth:`TerminalProgress.clear` erases it at the end of the pass. On anything that is not
a terminal there is no progress at all (:func:`terminal_progress` returns None).
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

__all__ = ["PassState", "ProgressFn", "TerminalProgress", "terminal_progress", "pass_line", "STALL_AFTER_S"]

#: a fetch in flight longer than this is shown as the host we are waiting on
STALL_AFTER_S = 5.0


@dataclass
class PassState:
    """Where an ingest pass is. ``stage`` is what just happened: feeds, fetch, extract or tick."""

    stage: str = "tick"
    feeds_done: int = 0
    feeds_total: int = 0
    fetches_done: int = 0
    fetches_total: int = 0
    extracted: int = 0
    waiting_host: str = ""
    waiting_seconds: float = 0.0
    stopping: bool = False


ProgressFn = Callable[[PassState], None]


def _line(state: PassState) -> str:
    parts = [f"feeds {state.feeds_done}/{state.feeds_total}",
             f"fetched {state.fetches_done}/{state.fetches_total}",
             f"extracted {state.extracted}"]
    if state.waiting_host:
        parts.append(f"waiting {state.waiting_seconds:.0f}s on {state.waiting_host}")
    line = " · ".join(parts)
    return f"stopping: finishing work in flight · {line}" if state.stopping else line


class TerminalProgress:
    """Draws a :class:`PassState` as one self-overwriting line on ``stream`` (a terminal)."""

    def __init__(self, stream: IO[str], min_interval: float = 0.1) -> None:
        self.stream = stream
        self.min_interval = min_interval
        self._last = 0.0
        self._drawn = False
        self._text = ""

    def __call__(self, state: PassState) -> None:
        now = time.monotonic()
        if now - self._last < self.min_interval:
            return
        width = max(20, shutil.get_terminal_size((100, 20)).columns - 1)
        text = _line(state)[:width]
        if text == self._text and self._drawn:
            return
        self._last, self._text = now, text
        self.stream.write("\r" + text + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def clear(self) -> None:
        """Erase the line (call at the end of the pass, before printing its summary)."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False
            self._text = ""


def terminal_progress(stream: IO[str] | None = None) -> TerminalProgress | None:
    """A progress line on ``stream`` (default stderr) when it is a terminal; None otherwise."""
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    return TerminalProgress(stream) if isatty is not None and isatty() else None


def pass_line(summary: dict[str, Any], when: datetime) -> str:
    """One line for one pass of a continuous ``run`` (``summary`` as ``RunSummary.to_dict()``)."""
    ing = summary.get("ingest") or {}
    dr = summary.get("drain") or {}
    feeds = f"{ing.get('feeds_polled', 0)} feeds"
    detail = [f"{k.replace('feeds_', '').replace('_', ' ')} {ing[k]}"
              for k in ("feeds_failed", "feeds_not_modified") if ing.get(k)]
    if detail:
        feeds += f" ({', '.join(detail)})"
    fetched = f"{ing.get('fetched', 0)} fetched"
    if ing.get("fetch_failed"):
        fetched += f" ({ing['fetch_failed']} failed)"
    parts = [feeds, f"{ing.get('new_entries', 0)} new", fetched, f"{ing.get('extracted', 0)} extracted",
             f"{ing.get('published', 0)} published"]
    if dr:
        parts += [f"{dr.get('indexed', 0)} indexed", f"{dr.get('alerts_raised', 0)} alerts"]
    if ing.get("left_for_next_run"):
        parts.append(f"{ing['left_for_next_run']} left for the next pass")
    return f"{when:%Y-%m-%d %H:%M:%S}Z pass: " + ", ".join(parts)
