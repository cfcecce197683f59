"""Email over SMTP with smtplib: ``SMTP_URL`` = ``smtp://[user:pass@]host[:port]`` or ``smtps://...``.

* ``smtp://`` (default port 25) upgrades with STARTTLS when the server offers it
  (``smtp_starttls: auto``), insists on it (``require``: a permanent failure if not offered)
  or never uses it (``never``); ``smtps://`` (default port 465) is TLS from the start.
* One connection per message: alerts are rare and a fresh connection makes an outage
  a clean transient error for that one row.
* Errors are translated here: connection errors and 4xx replies are transient, 5xx
  replies are permanent; recipients refused one by one while others were accepted come
  back in ``SendResult.refused`` (the message counts as sent).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Sequence
from typing import Literal
from urllib.parse import unquote, urlsplit

from ...errors import ConfigError, PermanentNotifyError, TransientNotifyError
from ..render import Rendered, build_email
from . import SendResult

__all__ = ["SMTPNotifier", "parse_smtp_url"]

log = logging.getLogger(__name__)


def parse_smtp_url(url: str) -> tuple[bool, str, int, str | None, str | None]:
    """(implicit_tls, host, port, username, password) of an SMTP URL; ConfigError if invalid.

    The error message never repeats the URL (it may hold a password).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ConfigError("SMTP_URL: not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps"):
        raise ConfigError(f"SMTP_URL: scheme must be smtp:// or smtps://, got {scheme or 'none'}")
    if not parts.hostname:
        raise ConfigError("SMTP_URL: no host")
    implicit_tls = scheme == "smtps"
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return implicit_tls, parts.hostname, port or (465 if implicit_tls else 25), user, password


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return f"{code} {' '.join(text.split())}"


class SMTPNotifier:
    channel = "email"

    def __init__(
        self,
        url: str,
        *,
        sender: str,
        starttls: Literal["auto", "require", "never"] = "auto",
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._tls, self.host, self.port, self._user, self._password = parse_smtp_url(url)
        self.sender = sender
        self.starttls = starttls
        self.timeout = timeout
        self._ssl_context = ssl_context

    def __repr__(self) -> str:  # no credentials
        return f"SMTPNotifier({'smtps' if self._tls else 'smtp'}://{self.host}:{self.port})"

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _open(self) -> smtplib.SMTP:
        smtp: smtplib.SMTP
        if self._tls:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            if not self._tls and self.starttls != "never":
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=self._context())
                    smtp.ehlo()
                elif self.starttls == "require":
                    raise PermanentNotifyError(f"{self.host}:{self.port} does not offer STARTTLS (smtp_starttls: require)")
            if self._user:
                smtp.login(self._user, self._password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: Rendered, recipients: Sequence[str]) -> SendResult:
        if not recipients:
            raise PermanentNotifyError("no recipients")
        where = f"{self.host}:{self.port}"
        msg = build_email(message, self.sender, recipients)
        try:
            smtp = self._open()
            try:
                refused = smtp.send_message(msg, from_addr=self.sender, to_addrs=list(recipients))
            finally:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        except smtplib.SMTPRecipientsRefused as exc:
            reasons = {r: _reply(code, m) for r, (code, m) in exc.recipients.items()}
            text = "; ".join(f"{r}: {why}" for r, why in reasons.items())
            if any(400 <= code < 500 for code, _ in exc.recipients.values()):
                raise TransientNotifyError(f"{where}: all recipients refused: {text}") from None
            raise PermanentNotifyError(f"{where}: all recipients refused: {text}") from None
        except smtplib.SMTPResponseException as exc:
            text = f"{where}: {type(exc).__name__}: {_reply(exc.smtp_code, exc.smtp_error)}"
            if 400 <= exc.smtp_code < 500 or exc.smtp_code < 0:
                raise TransientNotifyError(text) from None
            raise PermanentNotifyError(text) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentNotifyError(f"{where}: {exc}") from None
        except (smtplib.SMTPException, OSError) as exc:
            detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise TransientNotifyError(f"{where}: {type(exc).__name__}: {detail}") from None
        result = SendResult(refused={r: _reply(code, m) for r, (code, m) in refused.items()}, detail=where)
        log.info("email %s sent via %s to %d recipient(s), %d refused", message.msg_id, where,
                 len(recipients) - len(result.refused), len(result.refused))
        return result

    def close(self) -> None:
        return None
