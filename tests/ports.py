"""Blocks of consecutive free loopback ports, for the demo's sample sites (which take N consecutive ports).

Chosen below the kernel's ephemeral range (``ip_local_port_range``, 32768-60999 here): ports handed out
for outgoing connections, and those left in TIME_WAIT by the many loopback connections of a test session
(Kafka, OpenSearch, HTTP), crowd the ephemeral range, where three consecutive free ports can be hard to
find. Each port is checked the way the servers bind (``SO_REUSEADDR``, as ``http.server`` sets).
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

__all__ = ["free_port_block"]


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(n: int = 3) -> int:
    """A port p such that p..p+n-1 are free now."""
    high = max(_ephemeral_low(), 12000) - n
    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(10000, high)
        if all(_free(base + i) for i in range(n)):
            return base
    raise RuntimeError(f"no block of {n} free ports below {high + n}")
