"""SIGINT/SIGTERM for ``run`` and ``demo``: stop taking new work, finish what is in flight, say so.

The first signal sets :attr:`StopOnSignals.event`: ingest polls no more feeds and starts no more
fetches; the fetches and extractions in flight finish (each bounded by the fetch deadline),
their articles are published and their entries marked seen, and what was published is tagged,
indexed and alerted (without waiting for delivery retries). Entries that were not fetched are
not marked seen, so the next run finds them again. The command then says what it left and exits
``128 + signal`` (130 for SIGINT, 143 for SIGTERM), as shells do.

A second signal aborts at once (``os._exit``), which is as safe as a crash: every write is a
committed transaction or redone by the next run, and the extraction processes follow their
parent (:mod:`pipeline.procguard`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

__all__ = ["StopOnSignals"]


class StopOnSignals:
    """Context manager: SIGINT/SIGTERM set ``event``; a second one exits the process at once."""

    def __init__(self, what: str = "run") -> None:
        self.what = what
        self.event = threading.Event()
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    @property
    def exit_code(self) -> int:
        """``128 + signal`` once stopped by a signal, else 0."""
        return 128 + self.signum if self.signum else 0

    def _say(self, text: str) -> None:
        prefix = "\r\x1b[K" if sys.stderr.isatty() else ""  # over a progress line, if any
        sys.stderr.write(f"{prefix}newswatch: {text}\n")
        sys.stderr.flush()

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.event.is_set():
            self._say(f"second {name}: aborting now; the next run redoes what was not finished")
            sys.stdout.flush()
            os._exit(128 + signum)
        self.signum = signum
        self.event.set()
        self._say(f"{name} received: finishing the work in flight, starting nothing new "
                  f"(send it again to abort at once)")

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()
