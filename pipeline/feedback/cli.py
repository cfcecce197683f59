"""CLI: ``feedback false-hit|confirmed|missed|list|export`` (a thin client of :mod:`pipeline.feedback.store`).

``feedback false-hit ALERT_ID|DOC_ID [--topic T] [--note TEXT]``
``feedback confirmed ALERT_ID|DOC_ID [--topic T] [--note TEXT]``
``feedback missed DOC_ID|URL --topic T [--note TEXT]``
``feedback list``                      one line per judgement
``feedback export [-o FILE]``          JSON lines (every judgement with the document's title and text)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("feedback", help="record analysts' judgements of the tagger (false hits, confirmed, misses)",
                       description="Judgements are stored in the data directory and scored by eval-tags. A document "
                                   "and topic keep one judgement: the latest replaces an earlier one.")
    fsub = p.add_subparsers(dest="feedback_command", metavar="ACTION")
    fsub.required = True
    for name, func, help_text in (("false-hit", cmd_false_hit, "a topic fired and should not have"),
                                  ("confirmed", cmd_confirmed, "a topic fired and was right to (confirm the alert)")):
        f = fsub.add_parser(name, help=help_text)
        f.add_argument("target", help="alert id or document id")
        f.add_argument("--topic", help="the topic judged (needed when the document fired several)")
        f.add_argument("--note", default="", help="why (free text)")
        f.set_defaults(func=func)
    m = fsub.add_parser("missed", help="a topic should have fired and did not")
    m.add_argument("target", help="document id or the article's URL")
    m.add_argument("--topic", required=True, help="the topic that should have fired")
    m.add_argument("--note", default="", help="why (free text)")
    m.set_defaults(func=cmd_missed)
    ls = fsub.add_parser("list", help="every judgement, one line each")
    ls.set_defaults(func=cmd_list)
    ex = fsub.add_parser("export", help="every judgement as JSON lines")
    ex.add_argument("--output", "-o", type=Path, help="write to this file instead of stdout")
    ex.set_defaults(func=cmd_export)


def _open() -> Any:
    from ..config import load_config
    from ..index import open_index
    from .store import FeedbackStore

    config = load_config()
    topics = {t.id for t in config.watchlist.topics}
    return config, topics, FeedbackStore(config.settings.feedback_db), open_index(config.settings)


def _check_topic(topic: str | None, topics: set[str]) -> None:
    if topic is not None and topic not in topics:
        from ..search import suggest

        raise InputError(f"feedback: unknown topic {topic!r}{suggest(topic, topics)}")


def _done(j: Any) -> int:
    print(f"recorded {j.kind} for topic {j.topic} on document {j.doc_id}"
          f"{f' (alert {j.alert_id})' if j.alert_id else ''}: {j.title or j.url}")
    return 0


def _record_fired(args: argparse.Namespace, record: Any) -> int:
    from ..alerts.store import AlertStore

    config, topics, store, index = _open()
    _check_topic(args.topic, topics)
    alerts = AlertStore(config.settings.alerts_db) if config.settings.alerts_db.exists() else None
    try:
        j = record(store, index, args.target, topic=args.topic, note=args.note,
                   get_alert=alerts.get_alert if alerts is not None else None)
    finally:
        store.close()
        index.close()
        if alerts is not None:
            alerts.close()
    return _done(j)


def cmd_false_hit(args: argparse.Namespace) -> int:
    from .store import record_false_hit

    return _record_fired(args, record_false_hit)


def cmd_confirmed(args: argparse.Namespace) -> int:
    from .store import record_confirmed

    return _record_fired(args, record_confirmed)


def cmd_missed(args: argparse.Namespace) -> int:
    from .store import record_missed

    _, topics, store, index = _open()
    _check_topic(args.topic, topics)
    try:
        j = record_missed(store, index, args.target, topic=args.topic, note=args.note)
    finally:
        store.close()
        index.close()
    return _done(j)


def cmd_list(args: argparse.Namespace) -> int:
    from ..config import load_settings
    from .store import FeedbackStore

    store = FeedbackStore(load_settings().feedback_db)
    try:
        items = store.all()
    finally:
        store.close()
    if not items:
        print("no feedback recorded")
    for j in items:
        print(f"{j.created_at}  {j.kind:9} {j.topic:14} {j.doc_id}  {j.title[:60] or j.url}"
              f"{f'  ({j.note})' if j.note else ''}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..commands import write_jsonl
    from ..config import load_settings
    from .store import FeedbackStore

    store = FeedbackStore(load_settings().feedback_db)
    try:
        write_jsonl(store.export(), args.output, "judgements")
    finally:
        store.close()
    return 0
