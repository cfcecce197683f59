"""CLI: ``serve [--port 8000] [--host 127.0.0.1]``: the web page and JSON API until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from typing import Any

from ..errors import InputError

__all__ = ["register"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 8000


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("serve", help="the web page (search, topics, map, alerts, feeds) and its JSON API")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; beyond loopback, writes need PIPELINE_WEB_TOKEN)")
    p.set_defaults(func=cmd_serve)


def _listen(host: str, port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise InputError(f"--port: not a port number: {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InputError(f"--host: cannot resolve {host!r}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def cmd_serve(args: argparse.Namespace) -> int:

    from ..config import load_config
    from .app import create_app
    from .context import open_context
    from .security import WebSecurity
    from .server import run_server

    config = load_config()  # the feeds file too: a bad one is a one-line error now, not on the Feeds page
    settings = config.settings
    security = WebSecurity(bind_host=args.host, token=settings.web.token)
    sock = _listen(args.host, args.port)
    ctx = open_context(config, security)
    try:
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        where = f"sqlite {settings.index_db}" if settings.index == "sqlite" else settings.index
        print(f"newswatch web page on http://{shown}:{port}/  (API docs /api/docs; index: {where}; "
              f"alerts: {settings.alerts_db}; feeds: {ctx.feeds_file}; Ctrl-C stops)", flush=True)
        if security.token_required and security.token is None:
            print("newswatch: warning: listening beyond loopback without PIPELINE_WEB_TOKEN: the page is read-only",
                  file=sys.stderr, flush=True)
        run_server(create_app(ctx), sock, verbose=logging.getLogger().getEffectiveLevel() <= logging.INFO)
    finally:
        sock.close()
        ctx.close()
    return 0
