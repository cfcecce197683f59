"""The Elasticsearch adapter: Elasticsearch 8 or 9 through the official client.

Everything above the HTTP request (layout, mappings, bulk outcomes, queries) is shared with
the OpenSearch adapter in :class:`~pipeline.index.rest_index.RestSearchIndex`; this module
only talks to the server:

* Versions: the v9 client marks every request ``compatible-with=9``, which an ES 8 server
  refuses. On first use we ask ``GET /`` as ``compatible-with=8`` (which ES 8 and ES 9 both
  accept), read the server's major version and from then on send
  ``application/vnd.elasticsearch+json; compatible-with=<major>`` ourselves through
  ``perform_request``.
* Errors: elastic-transport's connection errors and timeouts -> TransientIndexError; HTTP
  errors by status (:func:`~pipeline.index.rest_index.error_for_status`).
"""

from __future__ import annotations

from typing import Any

from elastic_transport import ConnectionError as ESConnectionError
from elastic_transport import ConnectionTimeout, TransportError
from elasticsearch import ApiError, Elasticsearch

from ..config import ElasticsearchSettings
from ..errors import ConfigError, PermanentIndexError, TransientIndexError
from .rest_index import RestSearchIndex, error_for_status, error_reason, public_url

__all__ = ["ElasticsearchIndex", "public_url"]

_CREDENTIALS = "ELASTICSEARCH_URL/ELASTICSEARCH_API_KEY"


class ElasticsearchIndex(RestSearchIndex):
    """``SearchIndex`` on Elasticsearch. Connects lazily: construction never touches the network."""

    engine = "elasticsearch"

    def __init__(self, settings: ElasticsearchSettings, *, bulk_retries: int = 3, retry_backoff: float = 0.5,
                 client: Elasticsearch | None = None) -> None:
        if settings.url is None and client is None:
            raise ConfigError("environment variable ELASTICSEARCH_URL: elasticsearch.url: required when "
                              "index is elasticsearch")
        url = settings.url.get_secret_value() if settings.url else ""
        super().__init__(where=public_url(url) if url else "elasticsearch", index_prefix=settings.index_prefix,
                         bulk_retries=bulk_retries, retry_backoff=retry_backoff)
        self.settings = settings
        self.server_major: int | None = None
        self._headers: dict[str, str] = {}
        if client is None:
            client = Elasticsearch(
                url,
                api_key=settings.api_key.get_secret_value() if settings.api_key else None,
                verify_certs=settings.verify_certs,
                request_timeout=settings.request_timeout,
                max_retries=1,
                retry_on_timeout=False,
            )
        self._es = client

    def _send(self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
              ndjson: bool = False) -> Any:
        return self._raw(method, path, body=body, params=params, ndjson=ndjson, headers=self._headers)

    def _raw(self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
             ndjson: bool = False, headers: dict[str, str]) -> Any:
        if params:
            path = path + "?" + "&".join(f"{k}={v}" for k, v in params.items())
        hdrs = dict(headers)
        if body is not None:
            hdrs["content-type"] = hdrs["accept"].replace("+json", "+x-ndjson") if ndjson else hdrs["accept"]
        what = f"{self.where}: {method} {path.split('?')[0]}"
        try:
            resp = self._es.perform_request(method, path, headers=hdrs, body=body)
        except (ESConnectionError, ConnectionTimeout) as exc:
            raise TransientIndexError(f"{what}: {type(exc).__name__}: {exc.message}") from None
        except ApiError as exc:
            reason = error_reason(exc.body) or str(exc.message)
            raise error_for_status(exc.meta.status, f"{what}: HTTP {exc.meta.status}: {reason}",
                                   _CREDENTIALS) from None
        except TransportError as exc:
            raise TransientIndexError(f"{what}: {exc}") from None
        return resp.body

    def _connect(self) -> str:
        """Detect the server's major version and set the compatibility headers."""
        info = None
        last: Exception | None = None
        for major in (8, 9):
            accept = f"application/vnd.elasticsearch+json; compatible-with={major}"
            try:
                info = self._raw("GET", "/", headers={"accept": accept})
                break
            except PermanentIndexError as exc:  # 400/406: this server wants another version
                last = exc
        if info is None:
            raise PermanentIndexError(f"{self.where}: cannot agree on an API version: {last}")
        number = str((info.get("version") or {}).get("number", "0"))
        major = int(number.split(".")[0] or 0)
        if major not in (8, 9):
            raise ConfigError(f"environment variable ELASTICSEARCH_URL: {self.where} runs Elasticsearch {number}; "
                              "newswatch needs 8 or 9")
        self._headers = {"accept": f"application/vnd.elasticsearch+json; compatible-with={major}"}
        self.server_major = major
        return f"Elasticsearch {number}"

    def _close_client(self) -> None:
        self._es.close()
