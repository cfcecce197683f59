"""What the failure benchmark reads after a run: worker logs, documents, alerts, deliveries.

* :func:`read_log` splits a slot's log into incarnations (at the supervisor's marker lines) and
  picks out, with their times, the lines that matter: tracebacks, transient errors, batches
  committed, partition assignments, deliveries.
* :func:`diff_documents` compares the chaos run's documents with the clean run's, id by id, on
  ``text``, ``entities`` and ``topics``.
* :func:`duplicates` counts what a peer received more than once.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline.bus.kafka_health import CONNECTIVITY

from .chaos_peers import Received
from .chaos_procs import START_MARK

__all__ = ["LogLine", "SlotLog", "diff_documents", "duplicates", "read_log", "first_after"]

_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+): (.*)$")
_MARK = re.compile(re.escape(START_MARK) + r" (\d+) of \S+ at ([\d.]+)")

#: kinds of lines, first match wins
KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("batch", re.compile(r"stage \w+: batch ")),
    ("assigned", re.compile(r"kafka consumer \S+: assigned partitions")),
    ("revoked", re.compile(r"kafka consumer \S+: revoked partitions")),
    ("batch_retry", re.compile(r"transient failure, retrying the batch")),
    ("commit_failed", re.compile(r"commit failed, batch will be redelivered")),
    ("waiting", re.compile(r"waiting for|not reachable|unavailable|retrying in")),
    ("sent", re.compile(r"channel=\w+ attempt=\d+: sent")),
    ("delivery_retry", re.compile(r"channel=\w+ attempt=\d+: transient failure")),
    ("recovered", re.compile(r"(?i)recovered|reachable again|sampled again|back after")),
    ("consuming", re.compile(r"stage \w+: consuming ")),
    ("stopped", re.compile(r"stage \w+: stopped: ")),
)
TRANSIENT_KINDS = frozenset({"batch_retry", "commit_failed", "waiting", "delivery_retry", "kafka_error",
                             "index_error"})


@dataclass
class LogLine:
    at: float
    level: str
    logger: str
    kind: str
    text: str
    incarnation: int


@dataclass
class SlotLog:
    slot: str
    lines: list[LogLine] = field(default_factory=list)
    tracebacks: int = 0
    incarnations: int = 0
    errors: int = 0  # ERROR lines
    unparsed: int = 0  # lines that are neither log lines nor markers nor traceback bodies

    def of(self, *kinds: str) -> list[LogLine]:
        return [ln for ln in self.lines if ln.kind in kinds]


def _stamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()  # local time, as logging writes it


def _kind(logger: str, level: str, message: str) -> str:
    for kind, pattern in KINDS:
        if pattern.search(message):
            return kind
    if logger.startswith("kafka") and level in ("WARNING", "ERROR") and (
            CONNECTIVITY.search(message) or "unreachable" in message):
        return "kafka_error"
    if logger.startswith(("opensearch", "pipeline.index")) and level in ("WARNING", "ERROR"):
        return "index_error"
    if level in ("WARNING", "ERROR"):
        return "warning"
    return "info"


def read_log(slot: str, text: str) -> SlotLog:
    out = SlotLog(slot)
    incarnation = 0
    in_traceback = False
    for raw in text.splitlines():
        mark = _MARK.search(raw)
        if mark:
            incarnation = int(mark.group(1))
            out.incarnations = max(out.incarnations, incarnation)
            in_traceback = False
            continue
        if raw.startswith("Traceback (most recent call last)"):
            out.tracebacks += 1
            in_traceback = True
            continue
        m = _STAMP.match(raw)
        if not m:
            if not in_traceback and raw.strip() and not raw.startswith(("newswatch: metrics on", "worker ")):
                out.unparsed += 1
            continue
        in_traceback = False
        stamp, level, logger, message = m.groups()
        if level in ("ERROR", "CRITICAL"):
            out.errors += 1
        out.lines.append(LogLine(_stamp(stamp), level, logger, _kind(logger, level, message), message, incarnation))
    return out


def first_after(lines: Iterable[LogLine], at: float, *kinds: str) -> LogLine | None:
    return next((ln for ln in sorted(lines, key=lambda x: x.at) if ln.at >= at and ln.kind in kinds), None)


def _norm(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def diff_documents(clean: Sequence[dict[str, Any]], chaos: Sequence[dict[str, Any]],
                   fields: Sequence[str] = ("text", "entities", "topics")) -> dict[str, Any]:
    """Lost (in clean, not in chaos), extra, duplicated ids, and documents whose ``fields`` differ."""
    clean_by = {d["id"]: d for d in clean}
    chaos_count = Counter(d["id"] for d in chaos)
    chaos_by = {d["id"]: d for d in chaos}
    differing: dict[str, list[str]] = {}
    for doc_id in clean_by.keys() & chaos_by.keys():
        bad = [f for f in fields if _norm(clean_by[doc_id].get(f)) != _norm(chaos_by[doc_id].get(f))]
        if bad:
            differing[doc_id] = bad
    return {
        "lost": sorted(clean_by.keys() - chaos_by.keys()),
        "extra": sorted(chaos_by.keys() - clean_by.keys()),
        "duplicated": sorted(i for i, n in chaos_count.items() if n > 1),
        "differing": differing,
        "compared_fields": ["id", *fields],
    }


def duplicates(received: Sequence[Received]) -> dict[str, int]:
    """newswatch message id -> times received, for those received more than once."""
    counts = Counter(r.msg_id for r in received)
    return {k: n for k, n in sorted(counts.items()) if n > 1}
