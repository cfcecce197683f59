"""Digests: one message per recipient per period (hourly or daily), stories grouped by topic.

An alert goes into a recipient's digest when the recipient (or the topic, for Slack and
the file channel) is in ``hourly``/``daily`` mode, or when the topic went over its
``max_alerts_per_hour`` (the overflow goes to the hourly digest of every immediate
recipient). :func:`collect_digests` turns waiting items into digest messages in the
outbox; the digest id is ``hash(recipient, period, bucket)`` with the bucket being the
hour or the day of ``now``, so at most one digest per recipient per period is ever
created: items arriving after it wait for the next bucket.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from ..ids import stable_hash
from .store import AlertStore

__all__ = ["PERIODS", "bucket_of", "digest_id", "channel_of", "recipients_of", "collect_digests"]

log = logging.getLogger(__name__)

PERIODS = ("hourly", "daily")


def bucket_of(period: str, now: datetime) -> str:
    now = now.astimezone(timezone.utc)
    return now.strftime("%Y-%m-%dT%H") if period == "hourly" else now.strftime("%Y-%m-%d")


def digest_id(recipient: str, period: str, bucket: str) -> str:
    return stable_hash("digest", recipient, period, bucket)


def channel_of(recipient: str) -> str:
    """``email:a@b`` -> ``email``; ``slack`` -> ``slack``; ``file`` -> ``file``."""
    return recipient.partition(":")[0]


def recipients_of(recipient: str) -> list[str]:
    name, _, address = recipient.partition(":")
    return [address] if name == "email" else []


def collect_digests(store: AlertStore, period: str, now: datetime, channels: set[str]) -> list[str]:
    """Create the digests of ``period`` due at ``now`` and enqueue them; returns the new digest ids."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}, got {period!r}")
    ts = now.timestamp()
    bucket = bucket_of(period, now)
    created: list[str] = []
    for recipient, alert_ids in store.waiting_digest_items(period, ts).items():
        channel = channel_of(recipient)
        if channel not in channels:
            continue  # that channel is not configured in this process; keep the items waiting
        did = digest_id(recipient, period, bucket)
        with store.transaction():
            if not store.create_digest(did, recipient, period, bucket, alert_ids, ts):
                continue
            store.enqueue(did, channel, "digest", recipients_of(recipient), ts)
        created.append(did)
        log.info("digest %s: %s %s bucket=%s with %d alert(s)", did, period, recipient, bucket, len(alert_ids))
    return created
