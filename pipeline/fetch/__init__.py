"""The fetch stage's I/O seam: one safe HTTP GET for feeds, robots.txt and articles.

Use :class:`SafeFetcher` (thread-safe; share one per process/run)::

    with SafeFetcher(settings.fetch) as fetcher:
        resp = fetcher.fetch(url, robots=True)   # FetchResponse, or a pipeline.errors.FetchError

See :mod:`pipeline.fetch.http` for the guarantees (SSRF guard with pinned IPs,
timeouts and deadline, decompressed size cap, politeness, robots.txt, retries).
"""

from __future__ import annotations

from .http import FetchResponse, SafeFetcher
from .netpolicy import AllowList, is_public_address, vet_url
from .politeness import parse_retry_after

__all__ = ["SafeFetcher", "FetchResponse", "AllowList", "is_public_address", "vet_url", "parse_retry_after"]
