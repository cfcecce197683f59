"""Extraction quality and speed on the article-extraction benchmark (181 real pages).

For each extractor variant: pages/s on one core (in-process, sequential) and token-level
precision/recall/F1 against the human ``articleBody``, computed like the upstream
``evaluate.py`` (whitespace tokens, multiset overlap, averaged over pages; a page with no
output scores 0). Used to choose ``pipeline.extract.FAST``; see docs/decisions.md.
"""

from __future__ import annotations

import gzip
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.extract import bare_trafilatura_extract, extract

__all__ = ["load_benchmark", "token_prf", "measure", "run"]

REPORT_PATH = Path(__file__).resolve().parent / "report-extract-quality.json"
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "article-extraction-benchmark"


def load_benchmark(directory: Path = DEFAULT_DIR) -> list[tuple[str, str, bytes, str]]:
    """``(id, url, html bytes, gold articleBody)`` for every page, sorted by id."""
    truth = json.loads((directory / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for path in sorted((directory / "html").glob("*.html.gz")):
        key = path.name.removesuffix(".html.gz")
        gold = truth.get(key)
        if gold is None:
            continue
        pages.append((key, str(gold["url"]), gzip.decompress(path.read_bytes()), str(gold["articleBody"])))
    return pages


def token_prf(predicted: str, gold: str) -> tuple[float, float, float]:
    pred, true = predicted.split(), gold.split()
    if not pred or not true:
        return (0.0, 0.0, 0.0) if pred or true else (1.0, 1.0, 1.0)
    overlap = sum((Counter(pred) & Counter(true)).values())
    p, r = overlap / len(pred), overlap / len(true)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def measure(variants: dict[str, Callable[[bytes, str], str]],
            pages: list[tuple[str, str, bytes, str]]) -> list[dict[str, Any]]:
    """Time and score every variant; variants take turns page by page (rotating order),
    so a burst of load from elsewhere on a shared machine hits all of them alike."""
    names = list(variants)
    seconds = dict.fromkeys(names, 0.0)
    outputs: dict[str, list[str]] = {n: [] for n in names}
    for i, (_, url, html, _) in enumerate(pages):
        for n in names[i % len(names):] + names[:i % len(names)]:
            t0 = time.perf_counter()
            out = variants[n](html, url)
            seconds[n] += time.perf_counter() - t0
            outputs[n].append(out)
    results = []
    n_pages = len(pages)
    for n in names:
        scores = [token_prf(o, gold) for o, (_, _, _, gold) in zip(outputs[n], pages, strict=True)]
        results.append({
            "variant": n,
            "pages": n_pages,
            "seconds": round(seconds[n], 2),
            "pages_per_s": round(n_pages / seconds[n], 1),
            "precision": round(sum(s[0] for s in scores) / n_pages, 4),
            "recall": round(sum(s[1] for s in scores) / n_pages, 4),
            "f1": round(sum(s[2] for s in scores) / n_pages, 4),
            "empty": sum(1 for o in outputs[n] if not o.strip()),
        })
    return results


def _ours(fast: bool) -> Callable[[bytes, str], str]:
    def run_one(html: bytes, url: str) -> str:
        res = extract(html, url, min_text_chars=0, fast=fast)
        return res.text if res.ok else ""
    return run_one


def run(directory: Path = DEFAULT_DIR) -> dict[str, Any]:
    """Measure every variant on the benchmark pages, print a table and write the JSON report."""
    if not (directory / "ground-truth.json").exists():
        print(f"extract quality bench: skipped: benchmark pages not found at {directory}")
        return {"benchmark": "extract_quality", "skipped": f"no data at {directory}"}
    pages = load_benchmark(directory)
    for _, url, html, _ in pages[:3]:  # warm imports and caches
        extract(html, url)
    results = measure({
        "bare trafilatura.extract(html)": lambda h, u: bare_trafilatura_extract(h) or "",
        "pipeline extract fast=True": _ours(True),
        "pipeline extract fast=False": _ours(False),
    }, pages)
    for r in results:
        print(f"{r['variant']:34s} {r['pages_per_s']:6.1f} pages/s  P={r['precision']:.3f} R={r['recall']:.3f} "
              f"F1={r['f1']:.3f}  empty={r['empty']}")
    report = {"benchmark": "extract_quality", "pages": len(pages), "results": results}
    REPORT_PATH.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    run()
