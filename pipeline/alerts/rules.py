"""Who hears about a topic, and how: recipients, digest modes and the hourly cap.

``WatchTopic.email`` entries are addresses, optionally with a per-recipient digest mode:

* ``"ops@example.com"``               -> the topic's ``digest`` mode (default ``immediate``);
* ``"ops@example.com?digest=daily"``  -> this recipient gets one daily digest instead.

Slack (``slack: true``) and the file notifier follow the topic's ``digest`` mode.
A digest *recipient key* names one digest stream: ``email:<address>``, ``slack`` or ``file``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from ..config import Watchlist, WatchTopic
from ..errors import ConfigError

__all__ = ["Mode", "MODES", "Recipient", "Route", "parse_recipient", "route_for", "validate_watchlist"]

Mode = Literal["immediate", "hourly", "daily"]
MODES: tuple[Mode, ...] = ("immediate", "hourly", "daily")

# deliberately strict: no spaces, quotes, commas, angle brackets or control characters
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*$")


@dataclass(frozen=True)
class Recipient:
    address: str
    mode: Mode

    @property
    def key(self) -> str:
        return f"email:{self.address}"


def parse_recipient(entry: str, default_mode: Mode, *, where: str = "watchlist") -> Recipient:
    """Parse one ``email`` entry; raise ConfigError naming ``where`` if it is invalid."""
    raw = entry.strip()
    mode: str = default_mode
    if "?" in raw:
        raw, _, option = raw.partition("?")
        name, _, value = option.partition("=")
        if name.strip() != "digest" or value.strip() not in MODES:
            raise ConfigError(f"{where}: invalid option {option!r}: expected digest=immediate|hourly|daily")
        mode = value.strip()
    if not _ADDRESS.match(raw):
        raise ConfigError(f"{where}: invalid email address {raw!r}")
    return Recipient(raw, mode)  # type: ignore[arg-type]


@dataclass
class Route:
    """Where one topic's alerts go."""

    topic: str
    immediate_emails: list[str] = field(default_factory=list)
    digest_emails: list[Recipient] = field(default_factory=list)
    slack: bool = False
    mode: Mode = "immediate"  # the topic's mode: slack and file follow it
    max_per_hour: int = 30

    def digest_keys(self, channels: set[str], *, throttled: bool) -> dict[str, Mode]:
        """Digest recipient key -> period for an alert on this topic.

        ``throttled``: the alert is over the hourly cap, so every immediate recipient gets it
        in the hourly digest instead.
        """
        keys: dict[str, Mode] = {}
        if "email" in channels:
            for r in self.digest_emails:
                keys[r.key] = r.mode
            if throttled:
                for addr in self.immediate_emails:
                    keys[f"email:{addr}"] = "hourly"
        for name, wanted in (("slack", self.slack), ("file", True)):
            if name in channels and wanted and (self.mode != "immediate" or throttled):
                keys[name] = self.mode if self.mode != "immediate" else "hourly"
        return keys

    def immediate_channels(self, channels: set[str]) -> dict[str, list[str]]:
        """Channel -> recipients for an alert sent at once (not throttled)."""
        out: dict[str, list[str]] = {}
        if "email" in channels and self.immediate_emails:
            out["email"] = list(self.immediate_emails)
        if self.mode == "immediate":
            if "slack" in channels and self.slack:
                out["slack"] = []
            if "file" in channels:
                out["file"] = []
        return out


def route_for(topic: WatchTopic) -> Route:
    """The route of ``topic``; raises ConfigError on an invalid recipient entry."""
    route = Route(topic=topic.id, slack=topic.slack, mode=topic.digest, max_per_hour=topic.max_alerts_per_hour)
    for i, entry in enumerate(topic.email):
        r = parse_recipient(entry, topic.digest, where=f"watchlist.yaml: topics.{topic.id}.email.{i}")
        if r.mode == "immediate":
            if r.address not in route.immediate_emails:
                route.immediate_emails.append(r.address)
        else:
            route.digest_emails.append(r)
    return route


def validate_watchlist(watchlist: Watchlist) -> dict[str, Route]:
    """Every topic's route, validated at start (bad entries fail early, naming the key)."""
    return {t.id: route_for(t) for t in watchlist.topics}
