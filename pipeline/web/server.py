"""Running the app under uvicorn on a socket ``serve`` has already bound."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import uvicorn

__all__ = ["run_server"]


class _Server(uvicorn.Server):
    """uvicorn's server, but SIGINT/SIGTERM only stop it: ``serve`` then closes the stores and exits 0
    (uvicorn re-raises the signal after its shutdown, which would skip our cleanup)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def stop(signum: int, frame: FrameType | None) -> None:
            if self.should_exit and signum == signal.SIGINT:
                self.force_exit = True  # a second Ctrl-C: don't wait for open connections
            self.should_exit = True

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run_server(app: Any, sock: socket.socket, *, verbose: bool = False) -> None:
    """Serve ``app`` on ``sock`` until SIGINT/SIGTERM. No ``Server`` header, no proxy headers trusted."""
    config = uvicorn.Config(app, log_level="info" if verbose else "warning", access_log=verbose,
                            server_header=False, proxy_headers=False, lifespan="off")
    _Server(config).run(sockets=[sock])
