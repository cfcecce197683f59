"""``python -m bench [NAME ...]``: run every benchmark module present (or the named ones) and print a summary.

Modules that are not installed in this build are skipped; a module that fails is
reported as failed (one line) and the others still run. Exit status 1 if any failed.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

MODULES = ("bench.ingest", "bench.extract_quality", "bench.bus_index", "bench.tagging", "bench.engines", "bench.polling")
SUMMARY_PATH = Path(__file__).resolve().parent / "report-summary.json"


def _headline(name: str, report: Any) -> str:
    if not isinstance(report, dict):
        return "done"
    if report.get("skipped"):
        return f"skipped: {report['skipped']}"
    if name == "bench.ingest":
        return (f"pipeline {report['pipeline_run_once']['pages_per_s']} pages/s vs bare trafilatura "
                f"{report['bare_trafilatura']['pages_per_s']} pages/s (best runs); speedup {report['speedup']}x "
                f"(median of {len(report.get('pair_speedups') or [])} paired runs, target {report.get('target_speedup')}x); "
                f"peak RSS {report['pipeline_run_once']['peak_rss_mb']} MB")
    if name == "bench.polling":
        parts = []
        st, lat = report.get("steady_state"), report.get("latency")
        if st:
            b = st["best_round"]
            parts.append(f"10,000 feeds steady state {st['ratio']}x the bare conditional GETs (target "
                         f"{st['target_ratio']}x; {b['run_once']['seconds']} s vs {b['bare']['seconds']} s, "
                         f"{b['run_once']['connections_opened']} connections); first pass "
                         f"{st['first_pass']['articles_per_s']} articles/s")
        if lat:
            parts.append(f"publication to alert p50 {lat['p50_s']} s, p95 {lat['p95_s']} s at a "
                         f"{lat['interval_seconds']:.0f} s interval (target {lat['target_p95_s']} s)")
        return "; ".join(parts) or "done"
    if name == "bench.chaos":
        failed = [c["check"] for c in report.get("checks", []) if not c["ok"]]
        chaos = report.get("chaos", {})
        return (f"{chaos.get('articles_published')} articles, {chaos.get('documents_in_index')} documents, "
                f"{len(report.get('comparison', {}).get('lost', []))} lost; targets "
                + ("met" if not failed else f"NOT met: {', '.join(failed)}"))
    if name == "bench.extract_quality":
        return "; ".join(f"{r['variant']}: F1 {r['f1']}, {r['pages_per_s']} pages/s" for r in report["results"])
    keys = [k for k, v in report.items() if isinstance(v, int | float) and not isinstance(v, bool)]
    return ", ".join(f"{k}={report[k]}" for k in keys[:6]) or "done"


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("trafilatura", "htmldate", "courlan"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    summary: dict[str, str] = {}
    failed = False
    wanted = [a if a.startswith("bench.") else f"bench.{a}" for a in sys.argv[1:]] or list(MODULES)
    for name in wanted:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                summary[name] = "skipped: not present"
                continue
            raise
        runner = getattr(module, "run", None) or getattr(module, "main", None)
        if runner is None:
            summary[name] = "skipped: no run() or main()"
            continue
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            report = runner()
        except Exception as exc:  # noqa: BLE001 - one failing benchmark must not hide the others
            failed = True
            summary[name] = f"FAILED: {type(exc).__name__}: {exc}"
            continue
        summary[name] = f"{_headline(name, report)} ({time.perf_counter() - t0:.0f} s)"
    print("\n== summary")
    for name, line in summary.items():
        print(f"  {name}: {line}")
    try:  # a run of some modules keeps the other modules' last lines
        previous = json.loads(SUMMARY_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = {}
    merged = {**previous, **summary} if isinstance(previous, dict) else summary
    SUMMARY_PATH.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
