"""``kibana objects`` and ``kibana import``: the saved objects for Kibana 8 or OpenSearch Dashboards.

    python -m pipeline kibana objects [--flavor kibana|opensearch-dashboards] [-o FILE]
    python -m pipeline kibana import --url http://localhost:5601 [--overwrite] [--space ID] [--flavor ...]

Both build the objects from the configuration in force (index prefix, watch topics); ``--file`` imports a
file instead (e.g. one edited by hand).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import InputError

__all__ = ["register", "render"]

FLAVORS = ("kibana", "opensearch-dashboards")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("kibana", help="saved objects (data views, searches, map, dashboard) for Kibana 8 "
                                      "or OpenSearch Dashboards")
    kib = p.add_subparsers(dest="kibana_command", metavar="ACTION")
    kib.required = True

    o = kib.add_parser("objects", help="print the saved objects as ndjson")
    _common(o)
    o.add_argument("--output", "-o", type=Path, help="write to this file instead of stdout")
    o.set_defaults(func=cmd_objects)

    i = kib.add_parser("import", help="send the saved objects through the saved-objects import API")
    _common(i)
    i.add_argument("--url", default=os.environ.get("KIBANA_URL"),
                   help="Kibana base URL, e.g. http://localhost:5601 (default $KIBANA_URL); credentials may be "
                        "given as user:pass@host, or in KIBANA_USERNAME/KIBANA_PASSWORD or KIBANA_API_KEY")
    i.add_argument("--overwrite", action="store_true", help="replace objects that already exist (same ids)")
    i.add_argument("--space", help="Kibana space id (default: the default space)")
    i.add_argument("--file", type=Path, help="import this ndjson file instead of the objects built from the config")
    i.set_defaults(func=cmd_import)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--flavor", choices=FLAVORS, default="kibana",
                   help="kibana (8.8 or later; default) or opensearch-dashboards (2.x)")
    p.add_argument("--index-prefix", help="index prefix of the data views (default: elasticsearch.index_prefix "
                                          "from the settings, normally newswatch)")


def render(flavor: str, index_prefix: str | None = None) -> str:
    """The ndjson for ``flavor`` from the configuration in force."""
    from ..config import load_settings, load_watchlist
    from . import kibana8, opensearch_dashboards
    from .common import Names, to_ndjson, topics_of

    settings = load_settings()
    names = Names(index_prefix or settings.elasticsearch.index_prefix)
    topics = topics_of(load_watchlist(settings))
    build = kibana8.build if flavor == "kibana" else opensearch_dashboards.build
    return to_ndjson(build(names, topics))


def cmd_objects(args: argparse.Namespace) -> int:
    text = render(args.flavor, args.index_prefix)
    if args.output:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--output: cannot write {args.output}: {exc.strerror or exc}") from None
        print(f"wrote {text.count(chr(10))} objects to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from .importer import import_objects, public_url

    if not args.url:
        raise InputError("--url: required (or set KIBANA_URL), e.g. --url http://localhost:5601")
    if args.file:
        try:
            data = args.file.read_bytes()
        except OSError as exc:
            raise InputError(f"--file: cannot read {args.file}: {exc.strerror or exc}") from None
        filename = args.file.name
    else:
        data = render(args.flavor, args.index_prefix).encode("utf-8")
        filename = "newswatch.ndjson"
    result = import_objects(args.url, data, flavor=args.flavor, overwrite=args.overwrite, space=args.space,
                            filename=filename)
    where = public_url(args.url) + (f" (space {args.space})" if args.space else "")
    print(f"kibana import: {result.imported} objects imported into {where}")
    for line in result.errors:
        print(f"kibana import: error: {line}", file=sys.stderr)
    return 1 if result.errors else 0
