"""Deterministic identifiers: the root of idempotency.

document id = hash of the canonical URL = Kafka message key = Elasticsearch ``_id``.
alert id    = hash of (topic id, story id).
"""

from __future__ import annotations

import functools
import hashlib
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

__all__ = ["canonical_url", "doc_id", "alert_id", "stable_hash"]

# Query parameters that identify a campaign or a click, not a document.
_TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "ga_")
_TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "yclid", "igshid", "mkt_tok", "ref", "ref_src",
     "cmpid", "ocid", "smid", "sr_share", "at_medium", "at_campaign", "rss", "feed", "outputtype"}
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def stable_hash(*parts: str, length: int = 32) -> str:
    """Hex sha256 over the parts joined by a NUL, truncated to ``length`` characters."""
    h = hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()
    return h[:length]


@functools.lru_cache(maxsize=8192)  # a pure function, called several times per feed entry
def canonical_url(url: str) -> str:
    """Normalise a URL so that the same document always gets the same string.

    Lower-cases scheme and host, drops default ports, fragments, tracking
    parameters and empty query values' order, sorts the query, collapses an
    empty path to ``/`` and normalises percent-encoding.
    """
    url = url.strip()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host
    if ":" in host and not host.startswith("["):  # IPv6 literal
        netloc = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    path = quote(unquote(parts.path), safe="/:@!$&'()*+,;=-._~") or "/"
    query_pairs = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in _TRACKING_PARAMS and not k.lower().startswith(_TRACKING_PREFIXES)
    ]
    query = urlencode(sorted(query_pairs))
    return urlunsplit((scheme, netloc, path, query, ""))


def doc_id(url: str) -> str:
    """The document id of the article at ``url`` (canonicalised first)."""
    return stable_hash(canonical_url(url))


def alert_id(topic_id: str, story_id: str) -> str:
    """The id of the alert for ``story_id`` on ``topic_id``; raising it twice is a no-op."""
    return stable_hash("alert", topic_id, story_id)
