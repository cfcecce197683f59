"""CLI: ``tag`` (entities and topics of a text) and ``eval-tags`` (precision/recall/throughput).

``tag [FILE|-] [--json] [--jsonl]``
    Tags one text (a file or stdin). ``--json`` prints ``{"entities": [...], "topics": [...]}``;
    without it a readable summary. ``--jsonl`` reads JSON lines ``{"id", "title"?, "text"}`` and
    writes one JSON line per input with the same ``id``; a bad line gives one error line on
    stderr naming its line number, the others are still processed, and the exit status is 2
    (bad input). The watchlist is the configured one (``$PIPELINE_CONFIG_DIR/watchlist.yaml``),
    checked against the catalogue first: an unknown entity id is an error naming file and key.
``eval-tags [--shared PATH] [--json]``
    See :mod:`pipeline.enrich.evaluate`; exits 1 when a quality target is missed (throughput is
    reported only: ``make bench`` holds its target).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import EXIT_ERROR, InputError
from ..models import TagResult

__all__ = ["register", "cmd_tag", "cmd_eval_tags", "result_json"]

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("tag", help="tag places, actors and watch topics in a text",
                              description="Find catalogue entities and the watch topics they fire.")
    p.add_argument("file", nargs="?", default="-", help="text file, or - for stdin (default)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--jsonl", action="store_true", help='read JSON lines {"id","title"?,"text"}, write one per input')
    p.add_argument("--title", default="", help="title of the text (single-text mode)")
    p.add_argument("--catalogue", type=Path, default=None, help="catalogue YAML (default seeds/catalogue.yaml)")
    p.add_argument("--overlay", type=Path, default=None,
                   help="user overlay YAML (default $PIPELINE_CONFIG_DIR/catalogue-overlay.yaml)")
    p.set_defaults(func=cmd_tag)

    e = subparsers.add_parser("eval-tags", help="precision/recall of the watch topics and tagging throughput",
                              description="Evaluate the tagger on the seeds, CENTCOM, FA-KES and the labelled set.")
    e.add_argument("--shared", type=Path, default=None, help="the shared data dir (default ../shared of the project)")
    e.add_argument("--json", action="store_true", help="print the report as JSON")
    e.add_argument("--no-throughput", action="store_true", help="skip the throughput/memory measurement")
    e.set_defaults(func=cmd_eval_tags)


def result_json(result: TagResult) -> dict[str, Any]:
    """The ``tag --json`` document: entities with their mentions, topics with their reasons."""
    return {
        "entities": [
            {"id": e.id, "type": e.type, "kind": e.kind, "name": e.name, "lat": e.lat, "lon": e.lon,
             "governorate": e.governorate,
             "mentions": [{"text": m.text, "start": m.start, "end": m.end, "field": m.field, "variant": m.variant,
                           "fuzzy": m.fuzzy} for m in e.mentions]}
            for e in result.entities
        ],
        "topics": [
            {"id": t.id, "name": t.name,
             "reasons": [{"entity": r.entity_id, "entity_name": r.entity_name, "relation": r.relation,
                          "variant": r.variant, "text": r.text, "start": r.start, "end": r.end, "field": r.field}
                         for r in t.reasons]}
            for t in result.topics
        ],
    }


def _summary(result: TagResult, out: IO[str]) -> None:
    if not result.entities:
        print("no entities found", file=out)
    for e in result.entities:
        spans = ", ".join(f"{m.text!r}@{m.field}:{m.start}-{m.end}{' ~' if m.fuzzy else ''}" for m in e.mentions[:5])
        more = f" (+{len(e.mentions) - 5} more)" if len(e.mentions) > 5 else ""
        print(f"{e.id:32} {e.type:22} {e.name}: {spans}{more}", file=out)
    if result.topics:
        for t in result.topics:
            first = t.reasons[0]
            print(f"topic {t.id}: fired by {first.relation} {first.entity_id} via {first.variant!r} "
                  f"({first.text!r} at {first.field}:{first.start}-{first.end}); {len(t.reasons)} reason(s)", file=out)
    else:
        print("no topic fired", file=out)


def _read_input(name: str) -> str:
    if name == "-":
        try:
            return sys.stdin.read()
        except UnicodeDecodeError as exc:
            raise InputError(f"stdin: not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        return Path(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{name}: cannot read: {exc}") from None


def _read_lines(name: str) -> Iterator[str | UnicodeDecodeError]:
    """The lines of a file or stdin, decoded one by one: a badly encoded line is yielded as its error."""
    if name == "-":
        buffer = getattr(sys.stdin, "buffer", None)
        if buffer is None:  # a text stream without bytes underneath (tests, embedding)
            yield from sys.stdin
            return
        yield from _decode(buffer)
        return
    try:
        fh = open(name, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc}") from None
    with fh:
        yield from _decode(fh)


def _decode(lines: Iterable[bytes]) -> Iterator[str | UnicodeDecodeError]:
    for raw in lines:
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield exc


def cmd_tag(args: argparse.Namespace) -> int:
    from ..config import load_settings, load_watchlist
    from .tagger import Tagger

    tagger = Tagger.load(args.catalogue, load_watchlist(load_settings()), overlay=args.overlay)
    if not args.jsonl:
        text = _read_input(args.file)
        result = tagger.tag(text, args.title)
        if args.json:
            json.dump(result_json(result), sys.stdout, ensure_ascii=False, indent=2)
            sys.stdout.write("\n")
        else:
            _summary(result, sys.stdout)
        return 0
    bad = 0
    for lineno, line in enumerate(_read_lines(args.file), 1):
        try:
            if isinstance(line, UnicodeDecodeError):
                raise ValueError(f"not UTF-8: {line.reason} at byte {line.start}")
            if not line.strip():
                continue
            item = json.loads(line)
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                raise ValueError('expected an object with a string "text"')
            title = item.get("title") or ""
            if not isinstance(title, str):
                raise ValueError('"title" must be a string')
        except ValueError as exc:  # JSONDecodeError is a ValueError
            bad += 1
            print(f"newswatch: error: {args.file}: line {lineno}: {exc}", file=sys.stderr)
            continue
        doc = {"id": item.get("id"), **result_json(tagger.tag(item["text"], title))}
        sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
    log.info("tag --jsonl: done input=%s bad_lines=%d", args.file, bad)
    return EXIT_ERROR if bad else 0


def cmd_eval_tags(args: argparse.Namespace) -> int:
    from ..config import load_config
    from .evaluate import format_report, run_evaluation
    from .tagger import Tagger

    config = load_config()
    tagger = Tagger.load(watchlist=config.watchlist, overlay=config.settings.catalogue_overlay)
    report = run_evaluation(shared=args.shared, throughput=not args.no_throughput,
                            feedback=config.settings.feedback_db, tagger=tagger)
    if args.json:
        json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_report(report))
    return 0 if report["passed"] else 1
