"""End to end in a real browser: the demo, then `serve`, driven in Debian's headless Chromium by Playwright.

Search in any spelling finds every Deir ez-Zor article; the map has markers; an alert is marked
a false hit with its button, which the feedback store (library and `feedback export`) then holds
and the page shows; the Feeds page lists a feed that is down (ops told) before the demo's feeds.
Screenshots of every page are saved under ``var/screenshots/`` (gitignored) for a person to look
at. Skips with one line where Chromium is not installed; with ``CI=true`` that is a failure instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_demo_e2e import _free_port_block

from pipeline.cli import main

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHOTS = PROJECT_ROOT / "var" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# What the probe of this machine needed (no sandbox as root; nothing reaching out to the network).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _need_browser() -> Any:
    problem = None
    if not Path(CHROMIUM).exists():
        problem = "Chromium is not installed (apt-get install -y chromium)"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            problem = "the playwright package is not installed (make test installs it)"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser test cannot run in CI: {problem}")
        pytest.skip(f"browser test skipped: {problem}")
    return sync_playwright


@pytest.fixture
def playwright_api() -> Any:
    return _need_browser()  # before the demo runs: a skip should cost nothing


DOWN_FEED_NAME = "Closed Port Wire"


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released): connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _second_pass_with_a_feed_down(port: int, tmp_path: Path, project_root: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """After the demo: its feeds plus one on a closed port, polled once more by `run --once` (the first
    feed answers 304 this time); ops are told the closed one is down (after 0.06 s of failing, in a
    config dir whose settings say so). PIPELINE_FEEDS and PIPELINE_CONFIG_DIR stay set for `serve`."""
    from pipeline.alerts.ops import check_feeds
    from pipeline.commands import demo_feeds_file
    from pipeline.config import FeedConfig, load_config, load_feeds_file, load_settings, save_feeds_file
    from pipeline.feedhealth import health_of
    from pipeline.newsroom import Newsroom

    cfg = tmp_path / "config"
    shutil.copytree(project_root / "config", cfg)
    settings = yaml.safe_load((cfg / "settings.yaml").read_text()) or {}
    settings["ops"] = {"feed_failing_minutes": 0.001}
    (cfg / "settings.yaml").write_text(yaml.safe_dump(settings))
    monkeypatch.setenv("PIPELINE_CONFIG_DIR", str(cfg))
    down = FeedConfig(url=f"http://127.0.0.1:{_closed_port()}/feed.xml", name=DOWN_FEED_NAME)
    feeds_file = tmp_path / "feeds.yaml"
    save_feeds_file(feeds_file, [*load_feeds_file(demo_feeds_file(load_settings())), down])
    monkeypatch.setenv("PIPELINE_FEEDS", str(feeds_file))
    room = Newsroom(port=port)  # the demo's ports again, so its feeds answer (the first one 304)
    room.start()
    try:
        assert main(["run", "--once"]) == 1, "one feed of four could not be read"
    finally:
        room.stop()
    config = load_config()
    (failing,) = [h for h in health_of(config) if h.status == "failing"]
    assert failing.failing_since is not None
    time.sleep(max(0.0, failing.failing_since.timestamp() + 0.1 - time.time()))  # past 0.06 s of failing
    check_feeds(config)  # what `run` does after each pass (it may have told ops already: then nothing more)
    assert load_config().settings.alerts_path.read_text().count("[newswatch ops] feed down: " + DOWN_FEED_NAME) == 1


@pytest.fixture
def served_demo(playwright_api: Any, env: dict[str, str], tmp_path: Path, project_root: Path,
                monkeypatch: pytest.MonkeyPatch,
                capsys: pytest.CaptureFixture[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The demo's data (in the test's data dir), a second pass with a feed down, then `python -m pipeline
    serve` on a free port."""
    port = _free_port_block()
    assert main(["demo", "--json", "--port", str(port)]) == 0
    summary = json.loads(capsys.readouterr().out)
    _second_pass_with_a_feed_down(port, tmp_path, project_root, monkeypatch)
    capsys.readouterr()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy(), cwd=PROJECT_ROOT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert url, f"serve printed {line!r}; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
        yield url.group(0), summary
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _mark_false_hit(page: Any, row: Any) -> None:
    """Press the row's "False hit" button with a note; the judgement is stored and shown on the alert."""
    from pipeline.config import load_settings
    from pipeline.feedback import FeedbackStore

    alert_id = str(row.get_attribute("id")).removeprefix("alert-")
    title = row.locator("td.article > a").inner_text().strip()
    row.locator("input[name=note]").fill("a look-alike name, not the province")
    with page.expect_navigation(url=re.compile(rf"/alerts#alert-{alert_id}$")):
        row.locator("button[value=false-hit]").click()
    store = FeedbackStore(load_settings().feedback_db)  # the library's view
    try:
        (stored,) = store.all()
    finally:
        store.close()
    assert (stored.kind, stored.alert_id, stored.title, stored.note) == (
        "false-hit", alert_id, title, "a look-alike name, not the province")
    assert stored.text and stored.topic in ("al-tanf", "deir-ez-zor")
    exported = subprocess.run([sys.executable, "-m", "pipeline", "feedback", "export"], capture_output=True,
                              text=True, timeout=120, env=os.environ.copy(), cwd=PROJECT_ROOT, check=True)
    (line,) = exported.stdout.splitlines()  # the CLI's view: one judgement, this one
    assert json.loads(line) | {"fired": None} == stored.to_dict() | {"fired": None}
    shown = page.locator(f"tr#alert-{alert_id} .judgement")
    assert shown.locator(".verdict").inner_text() == "False hit"
    assert shown.locator(".note").inner_text() == "a look-alike name, not the province"
    assert page.locator(f"tr#alert-{alert_id} button.false-hit.chosen").count() == 1
    assert page.locator("table.alerts .judgement").count() == 1


def _overflowing(page: Any) -> list[str]:
    """Tables wider than their box (cut off on the right, to be scrolled): a page that is not tidy."""
    return list(page.eval_on_selector_all(  # evaluated through DevTools: the page itself runs no script
        ".table-wrap", "els => els.filter(e => e.scrollWidth > e.clientWidth + 1)"
                       ".map(e => `${e.scrollWidth} > ${e.clientWidth}`)"))


def _titles(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("article.hit h3 > a:first-child").all_inner_texts()]


def _index_truth() -> dict[str, list[str]]:
    """Titles per topic, straight from the index (what the pages must show)."""
    from pipeline.config import load_settings
    from pipeline.index import open_index

    index = open_index(load_settings())
    try:
        out: dict[str, list[str]] = {}
        for doc in index.export():
            for topic in doc.get("topics") or []:
                out.setdefault(topic, []).append(doc["title"])
        return out
    finally:
        index.close()


def _check_feeds_page(page: Any) -> None:
    """The feed that is down comes first, with its error and ops told; then the demo's feeds, all ok."""
    page.click("nav[aria-label=main] >> text=Feeds")
    page.wait_for_url(re.compile(r"/feeds$"))
    rows = page.locator("table.feeds tbody tr")
    assert rows.count() == 4
    first = rows.nth(0)
    assert first.get_attribute("class") == "failing" and first.locator(".name").inner_text() == DOWN_FEED_NAME
    assert first.locator("code.reason").inner_text() and first.locator(".error-line").inner_text()
    assert first.locator("td.ops .badge.failed").inner_text() == "alerted"
    assert first.locator("td.ops .channel .badge").count() >= 1, "the ops message's delivery is shown"
    assert [rows.nth(i).get_attribute("class") for i in range(1, 4)] == ["ok"] * 3
    assert page.locator("a.stat.failing b").inner_text() == "1" and page.locator("a.stat.ok b").inner_text() == "3"
    assert page.locator("span.stat.ops b").inner_text() == "1"
    assert _overflowing(page) == []
    page.screenshot(path=str(SHOTS / "9-feeds.png"), full_page=True)
    page.click("a.stat.failing")
    page.wait_for_url(re.compile(r"/feeds\?status=failing$"))
    assert rows.count() == 1 and rows.locator(".name").inner_text() == DOWN_FEED_NAME


@pytest.mark.slow
def test_pages_in_headless_chromium(playwright_api: Any, served_demo: tuple[str, dict[str, Any]]) -> None:
    sync_playwright = playwright_api
    base, summary = served_demo
    truth = _index_truth()
    deir = sorted(truth["deir-ez-zor"])
    assert len(deir) >= 3, "the demo indexes several Deir ez-Zor stories"
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("response", lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)

            page.goto(base + "/")
            page.screenshot(path=str(SHOTS / "1-search-home.png"), full_page=True)
            page.fill("input[name=q]", "Deir Ezzor")
            page.press("input[name=q]", "Enter")
            page.wait_for_url(re.compile(r"/search\?q=Deir\+Ezzor"))
            assert sorted(_titles(page)) == deir  # every Deir ez-Zor article, whatever spelling it uses
            assert page.locator("p.understood a.chip").inner_text() == "Deir ez-Zor"
            page.screenshot(path=str(SHOTS / "2-search-deir-ezzor.png"), full_page=True)
            for spelling in ("Dayr az-Zawr", "دير الزور"):
                page.fill("input[name=q]", spelling)
                page.press("input[name=q]", "Enter")
                page.wait_for_url(re.compile(r"/search\?q=.+"))
                assert sorted(_titles(page)) == deir, spelling

            page.select_option("select[name=topic]", "deir-ez-zor")  # the topic filter finds every spelling
            page.fill("input[name=q]", "")
            page.click("form.search button[type=submit]")
            page.wait_for_url(re.compile(r"topic=deir-ez-zor"))
            assert sorted(_titles(page)) == deir
            spelled = page.locator("article.hit").first
            assert spelled.locator("ul.chips a.chip").count() >= 1, "entities found are shown"
            page.screenshot(path=str(SHOTS / "3-search-topic-deir-ez-zor.png"), full_page=True)

            page.goto(base + "/search?q=" + "Deir ez-Zor")
            assert sorted(_titles(page)) == deir
            assert page.locator("article.hit mark").count() >= 1, "matches are highlighted"
            page.goto(base + "/search?topic=deir-ezzor")
            assert "did you mean deir-ez-zor" in page.locator("p.notice").inner_text()
            assert problems and all("400" in p for p in problems), problems  # a 400 page, as it should be
            page.screenshot(path=str(SHOTS / "2b-search-unknown-topic.png"), full_page=True)
            problems.clear()

            page.click("nav[aria-label=main] >> text=Map")
            page.wait_for_url(re.compile(r"/map$"))
            markers = page.locator("a.marker circle")
            assert markers.count() >= 5
            page.screenshot(path=str(SHOTS / "4-map.png"), full_page=True)
            page.click("a.marker[data-place=deir-ez-zor] circle")
            page.wait_for_url(re.compile(r"/search\?entity=deir-ez-zor"))
            assert set(_titles(page)) & set(deir)

            page.click("nav[aria-label=main] >> text=Alerts")
            page.wait_for_url(re.compile(r"/alerts$"))
            rows = page.locator("table.alerts tbody tr")
            assert rows.count() == len(summary["drain"]["alerts"]) > 0
            assert page.locator("table.alerts .badge.sent").count() >= 1
            assert page.locator("table.alerts .judgement").count() == 0
            assert _overflowing(page) == []
            page.screenshot(path=str(SHOTS / "5-alerts.png"), full_page=True)
            _mark_false_hit(page, rows.nth(0))
            second = str(rows.nth(1).get_attribute("id"))
            with page.expect_navigation(url=re.compile(rf"/alerts#{second}$")):
                rows.nth(1).locator("button[value=confirmed]").click()
            assert rows.nth(1).locator(".judgement .verdict").inner_text() == "Confirmed"
            assert _overflowing(page) == []
            page.screenshot(path=str(SHOTS / "5b-alerts-judged.png"), full_page=True)
            page.select_option("select[name=judged]", "false-hit")
            page.click("form.filters button[type=submit]")
            page.wait_for_url(re.compile(r"judged=false-hit"))
            assert rows.count() == 1 and rows.locator(".judgement.false-hit").count() == 1

            page.click("table.alerts tbody tr >> a.tag >> nth=0")
            page.wait_for_url(re.compile(r"/topics/[a-z-]+$"))
            assert page.locator("svg.chart rect.bar:not(.zero)").count() >= 1
            assert page.locator("table.alerts tbody tr").count() >= 1 and page.locator("td.why li").count() >= 1
            assert _overflowing(page) == []
            page.screenshot(path=str(SHOTS / "6-topic.png"), full_page=True)

            page.click("article.hit h3 > a:first-child >> nth=0")
            page.wait_for_url(re.compile(r"/articles/[0-9a-f]+$"))
            assert len(page.locator("article.full .text").inner_text()) > 200
            page.screenshot(path=str(SHOTS / "7-article.png"), full_page=True)

            for topic in ("al-tanf", "deir-ez-zor"):  # whichever the alert row opened above: both are tidy
                page.goto(f"{base}/topics/{topic}")
                assert _overflowing(page) == [], topic
            _check_feeds_page(page)
            page.goto(base + "/api/docs")
            page.screenshot(path=str(SHOTS / "8-api-docs.png"), full_page=True)
            assert problems == [], problems  # no blocked resource, no script error
        finally:
            browser.close()
