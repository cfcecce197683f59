"""Issue 13, item 6: exit codes that say what happened, and a pass that ends with what was not
fetched, read or delivered (``run --once``, ``demo``), against local sites and a closed SMTP port."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from test_demo_e2e import _free_port_block
from test_fetch_support import LocalServer
from test_ingest import _article_html, _feed, _page

from pipeline import exitcodes
from pipeline.alerts.store import ChannelDelivery
from pipeline.cli import main
from pipeline.exitcodes import StageTally, exit_code
from pipeline.passreport import pass_report


def test_exit_code_rule() -> None:
    ok = StageTally("feeds", succeeded=3)
    assert exit_code([ok, StageTally("articles"), StageTally("delivery")]) == exitcodes.OK == 0
    assert exit_code([ok, StageTally("articles", succeeded=5, failed=1)]) == exitcodes.SOME_FAILED == 1
    assert exit_code([ok, StageTally("articles", failed=264)]) == exitcodes.NOTHING_SUCCEEDED == 3
    assert exit_code([StageTally("feeds", failed=2)]) == 3
    assert exitcodes.USAGE == 2, "bad usage or configuration keeps exit 2"


def test_report_counts_dead_links_apart_and_owed_messages_as_failures() -> None:
    ingest = {"feeds_polled": 3, "feeds_failed": 0, "fetched": 14,
              "not_ok": {"fetch:http_404": 1, "extract:not_article": 1}}
    report = pass_report(ingest, [ChannelDelivery("email", sent=0, owed=7, last_error="refused")])
    assert report.dead_links == {"http_404": 1} and report.articles.failed == 0
    assert report.exit_code == 3
    assert any(line.startswith("not delivered     email: 7 owed") and "refused" in line for line in report.lines())
    assert report.lines()[-1] == "result            nothing succeeded: no alert message was delivered (exit 3)"
    healthy = pass_report(ingest, [ChannelDelivery("file", sent=7)])
    assert healthy.exit_code == 0 and healthy.lines()[-1] == "result            all good (exit 0)"


@pytest.fixture
def site() -> Iterator[LocalServer]:
    """Two good stories, a dead link, a page that keeps answering 503, and a feed URL that answers 500."""
    s = LocalServer()
    try:
        for name in ("a1", "a2"):
            s.route(f"/{name}", _page(_article_html(f"Story {name}")))
        s.route("/missing", _page(b"gone", status=404))
        s.route("/busy", _page(b"busy", status=503, headers={"Retry-After": "0"}))
        s.route("/good.xml", _feed(s, [s.url("/a1"), s.url("/a2"), s.url("/missing"), s.url("/busy")]))
        s.route("/busy.xml", _feed(s, [s.url("/busy")]))
        s.route("/broken.xml", _page(b"oops", status=500))
        yield s
    finally:
        s.close()


def _feeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *urls: str) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(yaml.safe_dump({"feeds": [{"url": u} for u in urls]}))
    monkeypatch.setenv("PIPELINE_FEEDS", str(path))


def test_run_once_with_some_failures_exits_1_and_says_what(env: dict[str, str], site: LocalServer, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    _feeds(tmp_path, monkeypatch, site.url("/good.xml"), site.url("/broken.xml"))
    assert main(["run", "--once"]) == 1
    out = capsys.readouterr().out
    assert "not read          1 of 2 feeds (http_500 1)" in out
    assert "not fetched       1 of 3 articles (http_503 1)" in out
    assert "dead links        1 (http_404 1)" in out
    assert out.rstrip().endswith("result            some failures (exit 1)")


def test_run_once_when_every_article_fetch_fails_exits_3(env: dict[str, str], site: LocalServer, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    _feeds(tmp_path, monkeypatch, site.url("/busy.xml"))
    assert main(["run", "--once", "--json"]) == 3
    summary = json.loads(capsys.readouterr().out)
    report = summary["report"]
    assert report["exit_code"] == 3 and report["result"] == "nothing succeeded"
    assert report["articles"] == {"succeeded": 0, "failed": 1, "reasons": {"http_503": 1}}
    assert report["feeds"]["failed"] == 0 and report["delivery"]["failed"] == 0
    # the transient failure is retried by the next pass, and is still a failure there
    assert main(["run", "--once"]) == 3
    assert "no article could be fetched (exit 3)" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_with_smtp_down_says_no_email_left_and_exits_3(env: dict[str, str], tmp_path: Path,
                                                           project_root: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from test_alert_servers import free_port

    cfg = tmp_path / "config"
    shutil.copytree(project_root / "config", cfg)
    settings = yaml.safe_load((cfg / "settings.yaml").read_text()) or {}
    settings.setdefault("alerts", {})["base_backoff_seconds"] = 3600  # the first retry is after the demo's wait
    (cfg / "settings.yaml").write_text(yaml.safe_dump(settings))
    monkeypatch.setenv("PIPELINE_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("SMTP_URL", f"smtp://127.0.0.1:{free_port()}")  # nothing listens there
    code = main(["demo", "--port", str(_free_port_block())])
    out = capsys.readouterr().out
    assert code == 3
    raised = int(out.split(" new alert(s):")[0].rsplit("\n", 1)[-1])
    assert raised >= 5
    assert f"not delivered     email: {raised} owed" in out and "Connection refused" in out
    assert "\n  result            nothing succeeded: no alert message was delivered (exit 3)\n" in out
    assert out.rstrip().splitlines()[-1].startswith("  ")  # then where the alerts went and what to try next
