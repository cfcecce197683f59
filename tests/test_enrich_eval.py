"""``eval-tags``: the labelled set always; the shared sets when ../shared is present."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.enrich import evaluate
from pipeline.enrich.evaluate import centcom_gold, labelled_docs, run_evaluation, score
from pipeline.enrich.tagger import Tagger


def test_labelled_set_covers_the_issue_and_meets_the_targets() -> None:
    docs = labelled_docs()
    texts = " ".join(d.text + " " + d.title for d in docs)
    for needed in ("At Tanf", "al\u2011Tanf", "Tanf garrison", "al-Tanaf", "التنف", "Deirezzor", "Dayz Az Zawr",
                   "Dawr az Zawr", "Dayr Ar Zawr", "دير الزور", "Tanforan", "Stanford", "Tanfield", "Deir Yassin",
                   "Deir el-Balah", "Deir Hafer", "Deir al-Qamar", "Az-Zour", "SDF", "SAA", "PMU"):
        assert needed in texts, needed
    result = score(Tagger.load(), docs)
    assert result["passed"], result["topics"]


def test_centcom_gold_rule() -> None:
    assert centcom_gold("Near At Tanf") == {"al-tanf"}
    assert centcom_gold(" Dayr Az Zawr") == {"deir-ez-zor"}
    assert centcom_gold("Dayz Ar Awr") == {"deir-ez-zor"}
    assert centcom_gold("Albu Kamal") == {"deir-ez-zor"}
    assert centcom_gold("Ar Raqqah") == frozenset()
    assert centcom_gold("Al Qaim") == frozenset()


def test_eval_without_shared_data_skips_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(evaluate, "default_shared_dir", lambda: tmp_path / "absent")
    report = run_evaluation(throughput=False)
    assert set(report["sets"]) == {"labelled"}
    assert set(report["skipped"]) == {"seeds", "centcom", "fakes", "feedback"}
    assert report["passed"]
    assert "skipped: shared data not found" in evaluate.format_report(report)
    (tmp_path / "seeds").mkdir()
    code = main(["eval-tags", "--shared", str(tmp_path), "--no-throughput"])
    _, err = capsys.readouterr()
    assert code == 2 and "not a shared data dir" in err


@pytest.mark.shared
@pytest.mark.slow
def test_eval_on_shared_data_meets_every_target(shared_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval-tags", "--shared", str(shared_dir), "--json"])
    out, _ = capsys.readouterr()
    report = json.loads(out)
    assert set(report["sets"]) == {"seeds", "centcom", "fakes", "labelled"}
    for name, s in report["sets"].items():
        for topic, m in s["topics"].items():
            assert m["passed"], (name, topic, m)
    thr = report["throughput"]
    assert thr["bytes"] >= 5_000_000
    # eval-tags judges quality only: throughput is reported (make bench holds its 5 MB/s target), so the
    # exit code follows precision/recall whatever the machine's load
    assert thr["target_met"] == (thr["mb_per_cpu_second"] >= evaluate.TARGET_MBPS)
    assert report["memory"]["tagger_rss_mb"] > 0
    assert code == 0 and report["passed"]
    assert report["sets"]["centcom"]["docs"] == 1606
