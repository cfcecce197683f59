"""Which URLs and addresses the fetcher may connect to (SSRF guard).

Contract: :func:`vet_url` is called for every hop (the first URL and each redirect
target) *before* any connection is made. It checks the scheme, resolves the host
once with :func:`socket.getaddrinfo` and refuses the URL if ANY resolved address is
not a public unicast address, unless the host name or that address is listed in
``allow_hosts`` (a host name, an IP, or a CIDR network). The caller then connects to
the returned, vetted IP (never re-resolving the name), so DNS rebinding between the
check and the connect is impossible.

:class:`VettedAddresses` keeps what :func:`vet_url` found for a host for a short, fixed
time (``getaddrinfo`` reports no DNS TTL): every hop is still checked, but a host polled a
hundred times in a pass is resolved once per ``ttl`` seconds. Only addresses that passed the
check are kept; a refused host is resolved and refused again each time; an expired entry is
resolved and vetted afresh, so a name that now points somewhere private is refused then.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, quote, urlsplit

from ..errors import BlockedURLError, FetchError

__all__ = ["Target", "AllowList", "VettedAddresses", "vet_url", "is_public_address", "split_url"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SCHEMES = {"http": 80, "https": 443}
# IPv6 prefixes that embed an IPv4 address we must check too (NAT64 well-known prefix).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")


@dataclass(frozen=True)
class Target:
    """A vetted request target: connect to one of ``addresses``, send ``host_header``."""

    url: str
    scheme: str
    host: str  # lower-case ASCII (IDNA) host name or IP literal, without brackets
    port: int
    request_target: str  # path + query, percent-encoded
    host_header: str
    addresses: tuple[str, ...]  # vetted IPs, in resolver order

    @property
    def host_is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


class AllowList:
    """Hosts, IPs and networks that may be fetched although they are not public."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.hosts: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for raw in entries:
            entry = raw.strip().lower().strip("[]")
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.add(entry.rstrip("."))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, addr: IPAddress) -> bool:
        return any(addr.version == net.version and addr in net for net in self.networks)


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def is_public_address(addr: IPAddress) -> bool:
    """True for a globally routable unicast address (IPv6 embedding IPv4 checked too)."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.scope_id:
            return False
        inner = _embedded_ipv4(addr)
        if inner is not None and not is_public_address(inner):
            return False
    if isinstance(addr, ipaddress.IPv4Address) and addr in _CGNAT:
        return False
    return not (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
        or not addr.is_global
    )


def split_url(url: str) -> tuple[SplitResult, str, int]:
    """Split and check the syntax of ``url``: http(s) only, a host, no credentials.

    Returns ``(parts, ascii_host, port)``. Raises BlockedURLError for a refused
    scheme or credentials, FetchError(reason="invalid_url") for an unparsable URL.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise FetchError(f"invalid URL {url!r}: {exc}", url=url, reason="invalid_url") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise BlockedURLError(f"scheme {scheme or '(none)'!r} not allowed (http/https only): {url}", url=url)
    if parts.username is not None or parts.password is not None:
        raise BlockedURLError(f"credentials in URL not allowed: {scheme}://{parts.hostname}/...", url=url)
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise FetchError(f"invalid URL {url!r}: no host", url=url, reason="invalid_url")
    try:
        ascii_host = host.encode("idna").decode("ascii").lower() if not host.isascii() else host.lower()
    except UnicodeError:
        raise FetchError(f"invalid URL {url!r}: bad host name", url=url, reason="invalid_url") from None
    return parts, ascii_host, port or _SCHEMES[scheme]


def _resolve(host: str, port: int, url: str) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve {host}: {exc}", url=url, reason="dns_error") from None
    seen: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        try:
            addr = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        except ValueError:
            continue
        if addr not in seen:
            seen.append(addr)
    if not seen:
        raise FetchError(f"cannot resolve {host}: no addresses", url=url, reason="dns_error")
    return seen


def _vetted_addresses(host: str, port: int, url: str, allow: AllowList) -> tuple[str, ...]:
    """Resolve ``host`` and check every address (see the module docstring); the vetted IPs, in resolver order."""
    addresses = _resolve(host, port, url)
    if not allow.allows_host(host):
        for addr in addresses:
            if not is_public_address(addr) and not allow.allows_address(addr):
                raise BlockedURLError(
                    f"address {addr} of {host} is not public (loopback/private/link-local/reserved); "
                    f"add it to fetch.allow_hosts to allow it: {url}",
                    url=url,
                )
    return tuple(str(a) for a in addresses)


def _target(url: str, parts: SplitResult, host: str, port: int, addresses: tuple[str, ...]) -> Target:
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    bracketed = f"[{host}]" if ":" in host else host
    host_header = bracketed if port == _SCHEMES[parts.scheme.lower()] else f"{bracketed}:{port}"
    return Target(url=url, scheme=parts.scheme.lower(), host=host, port=port, request_target=path,
                  host_header=host_header, addresses=addresses)


def vet_url(url: str, allow: AllowList) -> Target:
    """Check ``url`` and resolve its host; return the pinned :class:`Target`.

    Raises BlockedURLError (reason ``blocked``) for a refused scheme or a non-public
    address that is not allow-listed, FetchError (``dns_error``/``invalid_url``) otherwise.
    """
    parts, host, port = split_url(url)
    return _target(url, parts, host, port, _vetted_addresses(host, port, url, allow))


class VettedAddresses:
    """:func:`vet_url` with the vetted addresses of each host kept for ``ttl`` seconds (thread-safe).

    ``vet(url)`` checks the URL's syntax every time; within ``ttl`` of a successful check of its
    host it reuses the addresses found then, which were vetted (the connection still goes only to
    one of them). Refusals and resolver failures are never kept. ``forget(host)`` drops a host's
    entry (the fetcher calls it when none of the addresses answered: the site may have moved).
    ``ttl`` 0 resolves every time. ``lookups`` counts resolutions (for tests and benchmarks).
    """

    def __init__(self, allow: AllowList, ttl: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.allow = allow
        self.ttl = ttl
        self.lookups = 0
        self._clock = clock
        self._lock = threading.Lock()
        self._hosts: dict[str, tuple[float, tuple[str, ...]]] = {}

    def vet(self, url: str) -> Target:
        parts, host, port = split_url(url)
        now = self._clock()
        with self._lock:
            cached = self._hosts.get(host)
        if cached is not None and cached[0] > now:
            addresses = cached[1]
        else:
            with self._lock:
                self.lookups += 1
            addresses = _vetted_addresses(host, port, url, self.allow)
            if self.ttl > 0:
                with self._lock:
                    self._hosts[host] = (now + self.ttl, addresses)
        return _target(url, parts, host, port, addresses)

    def forget(self, host: str) -> None:
        with self._lock:
            self._hosts.pop(host, None)
