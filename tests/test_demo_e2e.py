"""End to end on the embedded backends: the demo, twice; and the CLI over its results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ports import free_port_block

from pipeline.cli import main


def _free_port_block(n: int = 3) -> int:
    return free_port_block(n)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_demo_twice_alerts_once_and_adds_nothing(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    port = str(_free_port_block())
    code, out, _ = _run(capsys, "demo", "--json", "--port", port)
    assert code == 0
    first = json.loads(out)
    ing, dr = first["ingest"], first["drain"]
    assert ing["feeds_polled"] >= 3
    assert ing["extracted"] >= 6 and ing["published"] == ing["extracted"]
    assert ing["not_extracted"] >= 1, "the non-article page is recorded, not dropped"
    assert ing["fetch_failed"] >= 1 and "http_404" in ing["outcomes"], "the broken link is recorded with its reason"
    assert dr["enriched"] == ing["published"] and dr["indexed"] >= ing["published"] - 1
    topics = {a["topic"] for a in dr["alerts"]}
    assert topics == {"al-tanf", "deir-ez-zor"}
    alert_keys = [(a["topic"], a["story_id"]) for a in dr["alerts"]]
    assert len(alert_keys) == len(set(alert_keys))

    code, out, _ = _run(capsys, "export", "--jsonl")
    docs = [json.loads(line) for line in out.splitlines()]
    assert len(docs) == dr["indexed"]
    assert len({d["id"] for d in docs}) == len(docs)
    titles = " ".join(d["title"] for d in docs).lower()
    assert "stanford" in titles or "tanforan" in titles, "look-alike stories are indexed too"
    for d in docs:
        lowered = (d["title"] + " " + d["text"]).lower()
        if "tanforan" in lowered or "stanford" in lowered:
            if "tanf " not in lowered and "tanf," not in lowered:
                assert "al-tanf" not in d["topics"], f"look-alike fired al-tanf: {d['title']}"

    code, out, _ = _run(capsys, "demo", "--json", "--port", port)
    second = json.loads(out)
    assert second["drain"]["alerts_raised"] == 0
    assert second["drain"]["indexed"] == 0
    assert second["ingest"]["published"] == 0
    code, out, _ = _run(capsys, "export", "--jsonl")
    assert len(out.splitlines()) == len(docs)

    code, out, _ = _run(capsys, "search", "garrison", "--topic", "al-tanf", "--json")
    assert code == 0
    hits = json.loads(out)
    assert hits and all("al-tanf" in h["topics"] for h in hits)

    code, out, _ = _run(capsys, "alerts", "--json")
    assert code == 0
    assert len(json.loads(out)) == len(dr["alerts"])


def test_demo_human_output(env: dict[str, str], capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = _run(capsys, "demo", "--port", str(_free_port_block()))
    assert code == 0
    assert "demo summary" in out and "feeds polled" in out and "alerts" in out
    assert "al-tanf" in out and "deir-ez-zor" in out
    feeds_file = Path(env["PIPELINE_DATA_DIR"]) / "demo-feeds.yaml"  # the demo's feeds, for feeds/status/serve
    assert f"3 feeds, listed in {feeds_file}" in out
    monkeypatch.setenv("PIPELINE_FEEDS", str(feeds_file))
    code, out, _ = _run(capsys, "feeds", "--json")
    assert code == 0
    assert [(f["name"], f["status"]) for f in json.loads(out)] == [
        ("The Levant Observer", "ok"), ("Desert Wire", "ok"), ("Gulf Ledger", "ok")]


def test_run_without_feeds_is_one_line_error(env: dict[str, str], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds: []\n")
    monkeypatch.setenv("PIPELINE_FEEDS", str(feeds))
    code, _, err = _run(capsys, "run", "--once")
    assert code == 2
    assert err.count("\n") == 1 and "no feeds configured" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("var", "value", "needle"),
    [
        ("PIPELINE_BUS", "rabbitmq", "PIPELINE_BUS"),
        ("PIPELINE_FEEDS", "/nonexistent/feeds.yaml", "file not found"),
        ("PIPELINE_FETCH_DELAY", "-1", "PIPELINE_FETCH_DELAY"),
    ],
)
def test_bad_configuration_exits_2_with_one_line(env: dict[str, str], capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch, var: str, value: str,
                                                  needle: str) -> None:
    monkeypatch.setenv(var, value)
    code, _, err = _run(capsys, "run", "--once")
    assert code == 2
    assert needle in err and err.count("\n") == 1 and err.startswith("newswatch: error:")


def test_search_on_empty_index_and_bad_date(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "search", "al-Tanf")
    assert code == 2 and out == "", "no data directory: not an empty answer"
    assert f"data directory {env['PIPELINE_DATA_DIR']} (from environment variable PIPELINE_DATA_DIR)" in err
    assert "does not exist" in err and err.count("\n") == 1
    Path(env["PIPELINE_DATA_DIR"]).mkdir()
    code, out, _ = _run(capsys, "search", "al-Tanf")
    assert code == 0 and out.startswith("no results among 0 documents in index ")
    with pytest.raises(SystemExit) as exc:
        main(["search", "x", "--since", "yesterday"])
    assert exc.value.code == 2
    assert "not a date" in capsys.readouterr().err
