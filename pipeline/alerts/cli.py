"""CLI: ``alerts [--json]`` (delivery state of every alert) and ``watchlist test TOPIC FILE`` (dry run)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..config import load_config
from ..errors import ConfigError, InputError
from .render import one_line

__all__ = ["register", "format_table"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("alerts", help="every alert with each channel's delivery status")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--deliver", action="store_true", help="deliver due outbox rows first")
    p.add_argument("--max-seconds", type=float, default=None, help="with --deliver: keep retrying this long")
    p.add_argument("--digest", choices=("hourly", "daily"), help="send this period's digests first")
    p.set_defaults(func=_cmd_alerts)

    w = subparsers.add_parser("watchlist", help="watchlist tools")
    wsub = w.add_subparsers(dest="watchlist_command", metavar="SUBCOMMAND")
    wsub.required = True
    t = wsub.add_parser("test", help="dry run: would FILE fire TOPIC, why, and the exact messages (nothing is sent)")
    t.add_argument("topic", metavar="TOPIC")
    t.add_argument("file", metavar="FILE", type=Path, help="article as text, HTML or JSON {title, text, url}")
    t.set_defaults(func=_cmd_watchlist_test)


def _channel_cell(ch: dict[str, Any]) -> str:
    return f"{ch['status']}({ch['attempts']})"


def format_table(alerts: list[dict[str, Any]]) -> str:
    """A readable table: one line per alert, then one indented line per channel error."""
    if not alerts:
        return "no alerts\n"
    lines = [f"{'created':20} {'topic':12} {'delivery':10} {'channels':32} title"]
    for a in alerts:
        cells = " ".join(f"{name}:{_channel_cell(ch)}" for name, ch in sorted(a["channels"].items()))
        if a["digests"]:
            cells += f" digests:{len(a['digests'])}"
        lines.append(f"{a['created_at'][:19]:20} {a['topic'][:12]:12} {a['delivery']:10} {cells or '-':32} "
                     f"{one_line(a['title'])[:60]}")
        for name, ch in sorted(a["channels"].items()):
            if ch["last_error"]:
                lines.append(f"{'':22}{name}: {one_line(ch['last_error'])[:150]}")
        if a["other_sources"]:
            lines.append(f"{'':22}also: {one_line(', '.join(a['other_sources']))[:150]}")
    return "\n".join(lines) + "\n"


def _cmd_alerts(args: argparse.Namespace) -> int:
    from ..preflight import require_data_dir
    from .service import AlertService

    cfg = load_config()
    require_data_dir(cfg.settings)
    with AlertService(cfg.settings, cfg.watchlist) as service:
        if args.digest:
            service.send_digests(args.digest)
        if args.deliver:
            r = service.deliver_pending(max_seconds=args.max_seconds)
            print(f"delivered: sent={r.sent} retry_later={r.retry_later} failed={r.failed}", file=sys.stderr)
        alerts = service.list_alerts()
    if args.json:
        json.dump(alerts, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_table(alerts))
    return 0


def _cmd_watchlist_test(args: argparse.Namespace) -> int:
    from .dryrun import dry_run, read_article_file

    cfg = load_config()
    try:
        topic = cfg.watchlist.topic(args.topic)
    except KeyError:
        known = ", ".join(t.id for t in cfg.watchlist.topics)
        raise InputError(f"unknown topic {args.topic!r} (watchlist has: {known})") from None
    title, text, url = read_article_file(args.file)
    try:
        from ..enrich import Tagger
    except ImportError as exc:
        raise ConfigError(f"the tagger is not available: {exc}") from None
    tags = Tagger.load(watchlist=cfg.watchlist).tag(text, title)
    result = dry_run(topic, title, text, url, tags, sender=cfg.settings.alerts.smtp_from)
    out = sys.stdout
    if not result.fires:
        found = ", ".join(sorted({e.name for e in tags.entities})) or "none"
        out.write(f"topic {topic.id}: does NOT fire for {args.file}\nentities found: {found}\n")
        return 1
    assert result.record is not None and result.email is not None
    out.write(f"topic {topic.id}: FIRES for {args.file}\n\nwhy:\n")
    for r in result.record.reasons:
        out.write(f"  - {r.entity_name} ({r.relation}): matched {r.text!r} in the {r.field} "
                  f"[{r.start}:{r.end}] via variant {r.variant!r}\n")
    out.write("\nwould be delivered as:\n" + "".join(f"  - {line}\n" for line in result.delivery))
    out.write("\n===== email (not sent) =====\n")
    out.write(result.email.as_string().replace("\r\n", "\n"))
    if result.slack is not None:
        out.write("\n===== slack payload (not sent) =====\n")
        out.write(json.dumps(result.slack, indent=2, ensure_ascii=False) + "\n")
    return 0
