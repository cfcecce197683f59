"""One run per data directory: advisory ``flock`` locks on files in the data directory.

Two ``run --once`` on one data directory would both fetch every new article (each site hit
twice), both drain the SQLite bus, and print summaries that contradict each other. So:

* ``run`` and ``demo`` hold ``run.lock`` for their whole life (a continuous ``run`` too);
  a second one says ``another run is in progress (pid N)`` and exits 75, or waits with ``--wait``;
* on the SQLite bus a stage has one consumer per data directory (two would both read
  everything): ``worker enrich|alert|index`` holds ``stage-<name>.lock``, and ``run``/``demo``,
  which drain every stage on that bus, hold all three.

Read-only commands (``search``, ``export``, ``status``, ``alerts``) take no lock: SQLite in
WAL mode lets them read beside a run. ``alerts --deliver`` needs none either: the outbox
leases each row it sends. Airflow's ingest tasks do not take it: a DAG run maps batches of
feeds in parallel on purpose (``max_active_runs=1`` keeps DAG runs apart); do not point a
CLI ``run`` and Airflow at one data directory.

``flock`` locks belong to the open file: the kernel drops them when the process dies, however
it dies, so a lock is never stale. The file holds the holder's pid and command, for the message.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

from .errors import RunLockedError

__all__ = ["DataDirLock", "hold", "RUN_LOCK", "stage_lock", "WAIT_POLL_S"]

log = logging.getLogger(__name__)

RUN_LOCK = "run.lock"
WAIT_POLL_S = 0.5


def stage_lock(stage: str) -> str:
    return f"stage-{stage}.lock"


class DataDirLock:
    """An exclusive lock on ``data_dir / name``; ``what`` names the holder in messages ("run is in progress")."""

    def __init__(self, data_dir: Path, name: str, what: str, command: str) -> None:
        self.path = Path(data_dir) / name
        self.what = what
        self.command = command
        self._fh: IO[str] | None = None

    def holder(self) -> tuple[int | None, str]:
        """(pid, command) written by the process holding the lock, as far as the file says."""
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return None, ""
        pid_text, _, command = text.partition(" ")
        return (int(pid_text) if pid_text.isdigit() else None), command

    def try_acquire(self) -> bool:
        fh = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return False
        except BaseException:
            fh.close()
            raise
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()} {self.command}\n")
        fh.flush()
        self._fh = fh
        return True

    def busy_message(self) -> str:
        pid, command = self.holder()
        who = f"pid {pid}" if pid else "pid unknown"
        if command and command != self.command:
            who += f", `{command}`"
        subject, _, rest = self.what.partition(" is ")
        return f"{subject} is {rest} ({who}) on data directory {self.path.parent}"

    def acquire(self, *, wait: bool = False, stop: threading.Event | None = None,
                on_wait: Callable[[str], None] | None = None) -> None:
        """Take the lock; RunLockedError when held elsewhere, unless ``wait`` (then poll until free or ``stop``)."""
        if self.try_acquire():
            return
        message = self.busy_message()
        if not wait:
            raise RunLockedError(f"another {message}; try again later, or use --wait", pid=self.holder()[0])
        if on_wait is not None:
            on_wait(f"waiting: another {message}")
        while not self.try_acquire():
            if stop is not None and stop.wait(WAIT_POLL_S):
                raise RunLockedError(f"stopped while waiting: another {message}", pid=self.holder()[0])
            if stop is None:
                time.sleep(WAIT_POLL_S)

    def release(self) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            fh.close()


@contextmanager
def hold(data_dir: Path, command: str, *, run: bool, stages: Sequence[str] = (), wait: bool = False,
         stop: threading.Event | None = None, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the run lock (``run``) and the given stage locks for the ``with`` block.

    Locks are always taken in one order (run, then stages in sorted order), so two commands
    waiting for each other's locks cannot deadlock."""
    locks: list[DataDirLock] = []
    if run:
        locks.append(DataDirLock(data_dir, RUN_LOCK, "run is in progress", command))
    locks += [DataDirLock(data_dir, stage_lock(s), f"{s} consumer is running",
                          command) for s in sorted(stages)]
    with ExitStack() as stack:
        for lock in locks:
            lock.acquire(wait=wait, stop=stop, on_wait=on_wait)
            stack.callback(lock.release)
        log.debug("holding %s", ", ".join(str(lk.path) for lk in locks))
        yield
