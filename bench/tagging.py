"""Tagging benchmark: ``eval-tags``'s throughput (MB of text per CPU second, one core, whole catalogue
loaded), the memory a loaded Tagger takes, and precision/recall on every evaluation set.

Writes ``bench/report-tagging.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.enrich.evaluate import format_report, run_evaluation

__all__ = ["run", "REPORT_PATH"]

REPORT_PATH = Path(__file__).resolve().parent / "report-tagging.json"


def run(report_path: Path = REPORT_PATH) -> dict[str, Any]:
    report = run_evaluation(throughput=True)
    print(format_report(report))
    report_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    t = report.get("throughput", {})
    return {"mb_per_cpu_second": t.get("mb_per_cpu_second"), "tagger_rss_mb": report["memory"].get("tagger_rss_mb"),
            "all_targets_met": report["passed"]}


if __name__ == "__main__":
    run()
