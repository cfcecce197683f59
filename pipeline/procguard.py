"""Child processes die with the process that started them, even when it is SIGKILLed.

The extraction pool (``multiprocessing`` forkserver) leaves three kinds of process behind a
killed parent: the workers block forever reading their call queue (they hold its write end
themselves, so they never see end-of-file); the forkserver waits for its "alive" pipe, whose
write end every worker holds too; the resource tracker waits for its pipe, held by all of
them. So it is enough that the **workers** notice the parent is gone: the forkserver and the
resource tracker then see end-of-file and exit on their own.

:func:`exit_with_parent` is the pool's ``initializer``: a daemon thread in each worker waits on
a pidfd of the parent (Linux >= 5.3: readable the moment that process exits; no polling, no
pid-reuse race, since it is opened while the parent is alive) and ends the worker at once
with ``os._exit``. Without pidfd it checks every second whether the parent still exists.
``PR_SET_PDEATHSIG`` does not fit here: it follows the parent *thread* (the pool is started
from a helper thread that ends early) and the workers' parent is the forkserver, not us.

Standard library only: the forkserver preloads this module next to ``pipeline.extract``.
"""

from __future__ import annotations

import os
import select
import threading
import time

__all__ = ["exit_with_parent", "POLL_SECONDS"]

#: how often the fallback (no pidfd) checks that the parent is alive
POLL_SECONDS = 1.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_for_exit(pid: int, pidfd: int | None) -> None:
    if pidfd is not None:
        select.select([pidfd], [], [])
    else:
        while _alive(pid):
            time.sleep(POLL_SECONDS)
    os._exit(1)  # the parent is gone: nobody will read what this process would produce


def exit_with_parent(pid: int) -> None:
    """Start watching ``pid``; this process exits as soon as ``pid`` does (a pool ``initializer``)."""
    pidfd: int | None = None
    opener = getattr(os, "pidfd_open", None)
    if opener is not None:
        try:
            pidfd = opener(pid)
        except ProcessLookupError:
            os._exit(1)  # already gone
        except OSError:
            pidfd = None  # kernel without pidfd (ENOSYS) or not permitted: poll instead
    threading.Thread(target=_wait_for_exit, args=(pid, pidfd), name="parent-watch", daemon=True).start()
