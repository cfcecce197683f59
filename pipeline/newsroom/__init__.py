"""The sample newsroom and the benchmark page server: local HTTP servers on loopback.

``Newsroom`` serves three fictional outlets (feeds, article pages, a section index, a
broken link, robots.txt, conditional GET); ``PageServer`` serves given pages over several
loopback addresses; ``serve_forever`` backs ``python -m pipeline newsroom``.
"""

from __future__ import annotations

from .server import Newsroom, PageServer, serve_forever

__all__ = ["Newsroom", "PageServer", "serve_forever"]
