"""Sending saved objects through the saved-objects import API of Kibana or OpenSearch Dashboards.

``POST <url>[/s/<space>]/api/saved_objects/_import[?overwrite=true]`` with a ``multipart/form-data``
body whose ``file`` part is the ndjson, and the CSRF header the server wants (``kbn-xsrf`` for Kibana,
``osd-xsrf`` for OpenSearch Dashboards). Credentials come from the URL (``https://user:pass@host``) or the
environment (``KIBANA_USERNAME``/``KIBANA_PASSWORD``, or ``KIBANA_API_KEY``); they are sent as an
``Authorization`` header and never appear in a log line or an error message (only the URL without them).

The answer is ``{"success", "successCount", "errors": [...]}``: every object that failed is returned
as one line (type, id, title, why); a conflict names ``--overwrite``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ..errors import ConfigError, InputError, PipelineError

__all__ = ["ImportResult", "import_objects", "XSRF_HEADERS", "public_url"]

log = logging.getLogger(__name__)

XSRF_HEADERS = {"kibana": "kbn-xsrf", "opensearch-dashboards": "osd-xsrf"}
TIMEOUT = 60.0


@dataclass
class ImportResult:
    imported: int
    errors: list[str] = field(default_factory=list)


def public_url(url: str) -> str:
    """``url`` without user and password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _target(url: str, space: str | None, overwrite: bool) -> tuple[str, str | None, str | None]:
    """(endpoint without credentials, user, password) of the import API under ``url``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"--url: expected http(s)://host:port of Kibana, got {public_url(url) or url!r}")
    try:
        port = parts.port
    except ValueError:
        raise InputError(f"--url: bad port in {public_url(url)!r}") from None
    netloc = (f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname) + (f":{port}" if port else "")
    path = parts.path.rstrip("/")
    if space:
        path += f"/s/{quote(space, safe='')}"
    path += "/api/saved_objects/_import"
    query = "overwrite=true" if overwrite else ""
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return urlunsplit((parts.scheme, netloc, path, query, "")), user, password


def _authorization(user: str | None, password: str | None, env: Mapping[str, str]) -> str | None:
    if user is None and env.get("KIBANA_USERNAME"):
        user, password = env["KIBANA_USERNAME"], env.get("KIBANA_PASSWORD", "")
    if user is not None:
        return "Basic " + base64.b64encode(f"{user}:{password or ''}".encode()).decode()
    if env.get("KIBANA_API_KEY"):
        return "ApiKey " + env["KIBANA_API_KEY"]
    return None


def _multipart(ndjson: bytes, filename: str) -> tuple[bytes, str]:
    boundary = "newswatch-" + secrets.token_hex(12)
    head = (f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/ndjson\r\n\r\n").encode()
    return head + ndjson + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _object_error(err: Mapping[str, Any]) -> str:
    what = f"{err.get('type', '?')} {err.get('id', '?')}"
    if err.get("title") or (err.get("meta") or {}).get("title"):
        what += f" ({err.get('title') or err['meta']['title']})"
    detail = err.get("error") or {}
    kind = detail.get("type", "error")
    if kind == "conflict" or kind == "ambiguous_conflict":
        return f"{what}: already exists (use --overwrite to replace it)"
    if kind == "missing_references":
        refs = ", ".join(f"{r.get('type')} {r.get('id')}" for r in detail.get("references", []))
        return f"{what}: missing references: {refs}"
    if kind == "unsupported_type":
        return f"{what}: this server does not know the type {err.get('type')!r} (is it the right --flavor?)"
    message = detail.get("message") or detail.get("reason") or json.dumps(detail)[:300]
    return f"{what}: {kind}: {' '.join(str(message).split())}"


def _server_message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return " ".join(body.decode("utf-8", "replace").split())[:300]
    if isinstance(data, dict):
        return " ".join(str(data.get("message") or data.get("error") or data).split())[:300]
    return str(data)[:300]


def import_objects(url: str, ndjson: bytes, *, flavor: str = "kibana", overwrite: bool = False,
                   space: str | None = None, env: Mapping[str, str] | None = None,
                   filename: str = "newswatch.ndjson", timeout: float = TIMEOUT) -> ImportResult:
    """Import ``ndjson`` into the Kibana (or OpenSearch Dashboards) at ``url``.

    Raises :class:`~pipeline.errors.InputError` for a bad URL, :class:`ConfigError` when the credentials
    are refused, and :class:`PipelineError` when the server cannot be reached or answers with an error;
    objects the server refused one by one come back in ``ImportResult.errors``.
    """
    endpoint, user, password = _target(url, space, overwrite)
    where = public_url(url)
    body, content_type = _multipart(ndjson, filename)
    headers = {XSRF_HEADERS[flavor]: "true", "Content-Type": content_type, "Accept": "application/json"}
    auth = _authorization(user, password, os.environ if env is None else env)
    if auth:
        headers["Authorization"] = auth
    request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
    log.info("importing saved objects into %s (space %s, overwrite %s)", where, space or "default", overwrite)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=ssl.create_default_context()) as resp:
            answer = resp.read()
    except urllib.error.HTTPError as exc:
        detail = _server_message(exc.read())
        if exc.code in (401, 403):
            raise ConfigError(f"{where}: HTTP {exc.code}: {detail} (credentials: user:password in --url, "
                              "KIBANA_USERNAME/KIBANA_PASSWORD or KIBANA_API_KEY)") from None
        if exc.code == 404:
            raise PipelineError(f"{where}: HTTP 404: no saved-objects import API here (is it the Kibana URL, "
                                "and does the space exist?)") from None
        raise PipelineError(f"{where}: HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PipelineError(f"{where}: cannot connect: {reason}") from None
    try:
        data = json.loads(answer)
        count = int(data.get("successCount", 0))
        errors = [_object_error(e) for e in data.get("errors") or []]
    except (ValueError, TypeError, AttributeError):
        raise PipelineError(f"{where}: unexpected answer from the import API: {_server_message(answer)}") from None
    return ImportResult(imported=count, errors=errors)
