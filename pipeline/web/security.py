"""Safe defaults for the web page: host check, security headers, CSRF, and the write token.

* **Reads** are open on the address the server is bound to. Bound to loopback (the
  default), only requests whose ``Host`` names a loopback address are answered, so a
  page elsewhere cannot read ours through DNS rebinding.
* **Writes** (any POST, PUT, PATCH or DELETE route that depends on :func:`require_write`)
  need, when the server is bound beyond loopback, the token from ``PIPELINE_WEB_TOKEN``:
  ``Authorization: Bearer <token>`` from a script, or the cookie that ``POST /login`` sets
  in a browser. Without the variable such a server is read-only.
* **CSRF**: every browser write also carries the per-browser token of the
  ``newswatch_csrf`` cookie (``SameSite=Strict``, ``HttpOnly``) back as the form field
  ``csrf_token`` (templates: ``{{ csrf_input(request) }}``) or the header ``X-CSRF-Token``
  (double submit), and a cross-site ``Origin`` or ``Sec-Fetch-Site`` is refused. A request
  carrying the bearer token is exempt: a browser never adds that header on its own.
* **Headers**: a Content-Security-Policy that allows no script at all and nothing from
  another origin, ``nosniff``, no framing, and ``Referrer-Policy: same-origin``: links to
  articles elsewhere carry no referrer (they must not leak our URLs), while our own forms keep
  their ``Origin`` (under ``no-referrer`` Chromium sends ``Origin: null`` on a same-origin POST,
  which the CSRF check rightly refuses).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from fastapi import HTTPException, Request
from markupsafe import Markup, escape
from pydantic import SecretStr
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import PlainTextResponse, Response

__all__ = ["WebSecurity", "SecurityMiddleware", "require_write", "require_same_site", "write_access", "csrf_input",
           "csrf_token", "is_loopback", "CSRF_COOKIE", "AUTH_COOKIE"]

CSRF_COOKIE = "newswatch_csrf"
AUTH_COOKIE = "newswatch_auth"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1), with or without brackets."""
    host = host.strip().strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_of(header: str) -> str:
    """The host part of a ``Host`` header (``[::1]:8000`` -> ``::1``, ``a.b:80`` -> ``a.b``)."""
    header = header.strip()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


@dataclass
class WebSecurity:
    """What the server was started with: where it listens and the write token, if any."""

    bind_host: str = "127.0.0.1"
    token: SecretStr | None = None
    # secret for derived values (the auth cookie): random per process unless given
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    @property
    def loopback_only(self) -> bool:
        return is_loopback(self.bind_host)

    @property
    def token_required(self) -> bool:
        return not self.loopback_only

    def host_allowed(self, host_header: str) -> bool:
        return not self.loopback_only or is_loopback(_host_of(host_header))

    def auth_cookie_value(self) -> str:
        assert self.token is not None
        return hmac.new(self.secret, self.token.get_secret_value().encode(), hashlib.sha256).hexdigest()

    def token_matches(self, candidate: str) -> bool:
        return self.token is not None and hmac.compare_digest(candidate.encode(),
                                                              self.token.get_secret_value().encode())


def csrf_token(request: Request) -> str:
    """This browser's CSRF token (from its cookie, or the one the response is about to set)."""
    return str(getattr(request.state, "csrf", "") or request.cookies.get(CSRF_COOKIE, ""))


def csrf_input(request: Request) -> Markup:
    """The hidden form field every POST form carries."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, escape(csrf_token(request)))


class SecurityMiddleware(BaseHTTPMiddleware):
    """Refuses foreign ``Host`` headers on a loopback server, hands out the CSRF cookie, sets headers."""

    def __init__(self, app: object, security: WebSecurity) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.security = security

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if not self.security.host_allowed(request.headers.get("host", "")):
            response: Response = PlainTextResponse("unknown host: this server answers only to loopback names\n",
                                                   status_code=421)
        else:
            issued = None
            if not request.cookies.get(CSRF_COOKIE):
                issued = request.state.csrf = secrets.token_urlsafe(32)
            response = await call_next(request)
            if issued:
                response.set_cookie(CSRF_COOKIE, issued, httponly=True, samesite="strict", path="/")
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        return response


def _same_origin(request: Request) -> bool:
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not every browser sends Origin on same-origin posts; the CSRF token still has to match
    return origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


async def require_same_site(request: Request) -> None:
    """FastAPI dependency: the request comes from one of our own pages (CSRF check), or from a script
    holding the token. Raises 403 with a one-line reason."""
    security: WebSecurity = request.app.state.security
    bearer = _bearer(request)
    if bearer is not None and security.token_matches(bearer):
        return  # a script with the token: not a browser riding on ambient cookies
    if not _same_origin(request):
        raise HTTPException(403, "cross-site request refused")
    expected = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        sent = str((await request.form()).get(CSRF_FIELD) or "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise HTTPException(403, "the form has expired or did not come from this site: reload the page and retry")


def write_access(request: Request) -> Literal["open", "sign-in", "read-only"]:
    """May this request change things, as far as the token rule goes (CSRF is checked on the write)?

    ``open``: loopback server, or the token was given (sign-in cookie or bearer); ``sign-in``:
    the token is needed and not given; ``read-only``: beyond loopback with no token configured.
    Pages use it to show the feedback buttons, a sign-in link or nothing.
    """
    security: WebSecurity = request.app.state.security
    if not security.token_required:
        return "open"
    if security.token is None:
        return "read-only"
    bearer = _bearer(request)
    if hmac.compare_digest(request.cookies.get(AUTH_COOKIE, "").encode(), security.auth_cookie_value().encode()) or (
            bearer is not None and security.token_matches(bearer)):
        return "open"
    return "sign-in"


async def require_write(request: Request) -> None:
    """FastAPI dependency for every state-changing route: the token (beyond loopback), then the CSRF check.

    Raises 403 with a one-line reason; the error handlers render it as a page or JSON.
    """
    access = write_access(request)
    if access == "read-only":
        raise HTTPException(403, "this server is read-only: it listens beyond loopback and "
                                 "PIPELINE_WEB_TOKEN is not set")
    if access == "sign-in":
        raise HTTPException(403, "a token is needed: sign in at /login, or send Authorization: Bearer <token>")
    await require_same_site(request)
