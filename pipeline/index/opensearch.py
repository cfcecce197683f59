"""The OpenSearch adapter: OpenSearch 2 or 3 through opensearch-py.

Everything above the HTTP request (layout, mappings, bulk outcomes, queries) is shared with
the Elasticsearch adapter in :class:`~pipeline.index.rest_index.RestSearchIndex`; this module
only talks to the server:

* ``OPENSEARCH_URL`` (``settings.opensearch.url``) may carry ``user:password@``; otherwise
  ``OPENSEARCH_USERNAME`` / ``OPENSEARCH_PASSWORD`` give basic-auth credentials. Log lines and
  errors show the URL without them (:func:`~pipeline.index.rest_index.public_url`).
* On first use ``GET /`` must answer ``version.distribution: opensearch`` with major 2 or 3
  (composable index templates, the query DSL we send); anything else is a ConfigError.
* Errors: opensearch-py's connection errors and timeouts -> TransientIndexError; HTTP errors by
  status (:func:`~pipeline.index.rest_index.error_for_status`). opensearch-py also logs each
  failed connection as a WARNING with its traceback; since the error is raised to the caller,
  who logs it in one line, that copy is dropped (:class:`FailedConnectionNoise`).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import SerializationError, TransportError

from ..config import OpenSearchSettings
from ..errors import ConfigError, TransientIndexError
from .rest_index import RestSearchIndex, error_for_status, error_reason, public_url

__all__ = ["OpenSearchIndex"]

_CREDENTIALS = "OPENSEARCH_URL/OPENSEARCH_USERNAME/OPENSEARCH_PASSWORD"
_NDJSON = {"content-type": "application/x-ndjson"}
_CLIENT_LOGGER = "opensearch"  # opensearch-py's request log
_install_lock = threading.Lock()


class FailedConnectionNoise(logging.Filter):
    """Drops opensearch-py's WARNING for a request that failed without an answer (refused, reset, timed
    out): it carries the whole traceback of the connection error, which :meth:`OpenSearchIndex._send`
    raises as TransientIndexError for its caller to log in one line. Failed answers (HTTP status) pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno >= logging.WARNING and record.exc_info)


def _quiet_failed_connections() -> None:
    with _install_lock:
        client_log = logging.getLogger(_CLIENT_LOGGER)
        if not any(isinstance(f, FailedConnectionNoise) for f in client_log.filters):
            client_log.addFilter(FailedConnectionNoise())


def _split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without ``user:password@``, and those credentials (None when absent)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, (unquote(parts.username or ""), unquote(parts.password or ""))


class OpenSearchIndex(RestSearchIndex):
    """``SearchIndex`` on OpenSearch. Connects lazily: construction never touches the network."""

    engine = "opensearch"

    def __init__(self, settings: OpenSearchSettings, *, bulk_retries: int = 3, retry_backoff: float = 0.5) -> None:
        if settings.url is None:
            raise ConfigError("environment variable OPENSEARCH_URL: opensearch.url: required when index is opensearch")
        _quiet_failed_connections()
        url, auth = _split_credentials(settings.url.get_secret_value())
        if auth is None and settings.username:
            auth = (settings.username, settings.password.get_secret_value() if settings.password else "")
        super().__init__(where=public_url(url), index_prefix=settings.index_prefix, bulk_retries=bulk_retries,
                         retry_backoff=retry_backoff)
        self.settings = settings
        self.server_version = ""
        self._client = OpenSearch(hosts=[url], http_auth=auth, verify_certs=settings.verify_certs,
                                  timeout=settings.request_timeout, max_retries=1, retry_on_timeout=False)

    def _send(self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
              ndjson: bool = False) -> Any:
        headers = None
        if ndjson and body is not None:
            body = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in body)
            headers = _NDJSON
        what = f"{self.where}: {method} {path}"
        try:
            return self._client.transport.perform_request(method, path, params=dict(params or {}), body=body,
                                                          headers=headers)
        except SerializationError as exc:  # e.g. Elasticsearch 8/9 answering application/vnd.elasticsearch+json
            raise ConfigError(f"environment variable OPENSEARCH_URL: {what}: not an OpenSearch answer ({exc})"
                              ) from None
        except OSConnectionError as exc:  # refused, reset, timed out (ConnectionTimeout), TLS
            raise TransientIndexError(f"{what}: {type(exc).__name__}: {_cause(exc)}") from None
        except TransportError as exc:
            status = exc.status_code if isinstance(exc.status_code, int) else 0
            if not status:
                raise TransientIndexError(f"{what}: {type(exc).__name__}: {_cause(exc)}") from None
            reason = error_reason(exc.info) or str(exc.error)
            raise error_for_status(status, f"{what}: HTTP {status}: {reason}", _CREDENTIALS) from None

    def _connect(self) -> str:
        info = self._send("GET", "/")
        version = (info or {}).get("version") or {}
        distribution, number = version.get("distribution", "elasticsearch"), str(version.get("number", "0"))
        major = int(number.split(".")[0] or 0) if number.split(".")[0].isdigit() else 0
        if distribution != "opensearch" or major not in (2, 3):
            raise ConfigError(f"environment variable OPENSEARCH_URL: {self.where} runs {distribution} {number}; "
                              "PIPELINE_INDEX=opensearch needs OpenSearch 2 or 3")
        self.server_version = number
        return f"OpenSearch {number}"

    def _close_client(self) -> None:
        self._client.close()


def _cause(exc: Exception) -> str:
    """The underlying reason of an opensearch-py connection error, one line, without the URL's credentials."""
    info = getattr(exc, "info", None)
    text = str(info) if info is not None else str(exc)
    return " ".join(text.split())[:300]
