"""Every failure a user can cause or meet ends in one plain line and a non-zero exit, never a traceback.

In-process through ``main`` where only our own messages matter; as a real subprocess where what
counts is everything printed on stderr (library logging, threads, the resource tracker).
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_fetch_support import LocalServer

from pipeline.cli import main
from pipeline.config import load_settings

PROJECT = Path(__file__).resolve().parents[1]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("newswatch: error: "), err
    assert "Traceback" not in err
    return lines[0]


def cli(*argv: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 120,
        preexec: Any = None) -> subprocess.CompletedProcess[str]:
    """The real command line in a child process (stderr exactly as a user sees it)."""
    return subprocess.run([sys.executable, "-m", "pipeline", *argv], env=env, cwd=cwd or PROJECT, text=True,
                          capture_output=True, timeout=timeout, preexec_fn=preexec)


def _child_env(env: dict[str, str], **extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "ELASTICSEARCH_", "SMTP_", "SLACK_"))}
    out.update(env)
    out.update(extra)
    return out


@pytest.fixture
def blocked_feeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Path:
    """A feeds file whose only feed is refused before any connection (a private address)."""
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n  - url: http://10.255.255.1/feed.xml\n", encoding="utf-8")
    monkeypatch.setenv("PIPELINE_FEEDS", str(path))
    monkeypatch.setenv("PIPELINE_ALLOW_HOSTS", "")
    env["PIPELINE_FEEDS"] = str(path)
    return path


# -- the data directory and the state database -------------------------------------------------------
def test_a_data_dir_that_is_a_file_is_one_line(tmp_path: Path, env: dict[str, str], blocked_feeds: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(afile))
    code, _, err = _run(capsys, "run", "--once")
    assert code == 2
    line = _one_error_line(err)
    assert f"data directory {afile} (from environment variable PIPELINE_DATA_DIR): is a file" in line
    code, _, err = _run(capsys, "status")
    assert code == 2 and "is a file, not a directory" in _one_error_line(err)


def test_a_data_dir_that_cannot_be_created_is_one_line(tmp_path: Path, env: dict[str, str], blocked_feeds: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "afile" / "var"))
    code, _, err = _run(capsys, "run", "--once")
    assert code == 2
    assert "cannot create it: Not a directory" in _one_error_line(err)


def test_a_garbage_state_database_is_one_line_and_left_alone(env: dict[str, str], blocked_feeds: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    data = Path(env["PIPELINE_DATA_DIR"])
    data.mkdir()
    garbage = os.urandom(8192)
    (data / "state.sqlite3").write_bytes(garbage)
    code, _, err = _run(capsys, "run", "--once")
    assert code == 2
    line = _one_error_line(err)
    assert f"state database {data / 'state.sqlite3'}: cannot open: not a newswatch state database" in line
    assert (data / "state.sqlite3").read_bytes() == garbage


def test_a_state_database_held_by_another_process_is_one_line(env: dict[str, str], blocked_feeds: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    import pipeline.state

    data = Path(env["PIPELINE_DATA_DIR"])
    data.mkdir()
    holder = sqlite3.connect(data / "state.sqlite3", isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")  # what another process's long transaction looks like
    monkeypatch.setattr(pipeline.state, "BUSY_TIMEOUT_S", 0.2, raising=False)
    try:
        code, _, err = _run(capsys, "run", "--once")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 2
    assert "held by another process (database is locked)" in _one_error_line(err)


def _newsroom_env(tmp_path: Path, env: dict[str, str], room: Any) -> dict[str, str]:
    feeds = tmp_path / "newsroom-feeds.yaml"
    feeds.write_text("feeds:\n" + "".join(f"  - url: {f.url}\n" for f in room.feeds_config()), encoding="utf-8")
    return _child_env(env, PIPELINE_FEEDS=str(feeds), PIPELINE_EXTRACT_WORKERS="1")


def _limit_file_size(limit: int) -> Any:
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


def _full_disk_second_run(tmp_path: Path, env: dict[str, str], data: Path, preexec: Any = None,
                          fill: Any = None) -> None:
    """First run fills the data directory; a second run on a full disk fails in one line and loses nothing."""
    from pipeline.newsroom import Newsroom

    with Newsroom(port=0) as room:
        child_env = dict(_newsroom_env(tmp_path, env, room), PIPELINE_DATA_DIR=str(data))
        first = cli("run", "--once", env=child_env)
        assert first.returncode == 0, first.stderr
        docs = sqlite3.connect(data / "index.sqlite3").execute("SELECT COUNT(*) FROM docs").fetchone()[0]
        assert docs >= 6
        if fill is not None:
            fill()
        second = cli("run", "--once", env=child_env, preexec=preexec)
    assert second.returncode == 2, second.stderr
    assert "Traceback" not in second.stderr, second.stderr
    last = second.stderr.strip().splitlines()[-1]
    assert last.startswith("newswatch: error: state database ") or last.startswith("newswatch: error: "), last
    assert any(w in last for w in ("disk is full", "disk I/O error", "File too large", "No space")), last
    after = sqlite3.connect(data / "index.sqlite3").execute("SELECT COUNT(*) FROM docs").fetchone()[0]
    assert after == docs, "nothing already accepted is lost"


def test_a_write_refused_for_size_on_the_second_run_is_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    """RLIMIT_FSIZE makes the kernel refuse any write past 8 KB into a file (EFBIG), as a full disk refuses any
    write (ENOSPC): the second run's first transactions fit in a fresh WAL file, the next ones do not."""
    _full_disk_second_run(tmp_path, env, tmp_path / "var", preexec=_limit_file_size(8192))


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a tmpfs needs root")
def test_a_full_disk_on_the_second_run_is_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    """A real full disk: a small tmpfs, filled up after the first run."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (no CAP_SYS_ADMIN)")
    try:
        def fill() -> None:
            with (mnt / "filler").open("wb") as fh:
                try:
                    while True:
                        fh.write(b"\0" * 65536)
                        fh.flush()
                except OSError:
                    pass
        _full_disk_second_run(tmp_path, env, mnt / "var", fill=fill)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


# -- output files and arguments -----------------------------------------------------------------------
def test_export_into_a_missing_folder_or_onto_a_directory(tmp_path: Path, env: dict[str, str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    Path(env["PIPELINE_DATA_DIR"]).mkdir()
    code, _, err = _run(capsys, "export", "--jsonl", "-o", str(tmp_path / "nowhere" / "x.jsonl"))
    assert code == 2 and f"folder {tmp_path / 'nowhere'} does not exist" in _one_error_line(err)
    code, _, err = _run(capsys, "export", "--jsonl", "-o", str(tmp_path))
    assert code == 2 and "is a directory" in _one_error_line(err)
    code, _, err = _run(capsys, "export", "--jsonl", "-o", str(tmp_path / "out.jsonl"))
    assert code == 0 and (tmp_path / "out.jsonl").exists()


def test_a_huge_search_limit_is_a_usage_error(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    Path(env["PIPELINE_DATA_DIR"]).mkdir()
    for bad in ("99999999999999999999", "0", "-3", "many"):
        with pytest.raises(SystemExit) as exc:
            main(["search", "x", "--limit", bad])
        assert exc.value.code == 2
        assert "--limit: expected a whole number from 1 to 10000" in capsys.readouterr().err
    assert _run(capsys, "search", "x", "--limit", "10000")[0] == 0


# -- configuration --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("var", "value", "needle"), [
    ("PIPELINE_LOG_LEVEL", "LOUD", "environment variable PIPELINE_LOG_LEVEL: unknown log level 'LOUD'"),
    ("PIPELINE_ALLOW_HOSTS", "[[[", "environment variable PIPELINE_ALLOW_HOSTS: fetch.allow_hosts: '[[[' is not a "
                                    "host name"),
    ("PIPELINE_FETCH_DELAY", "soon", "environment variable PIPELINE_FETCH_DELAY: fetch.delay_seconds: must be a "
                                     "number (got 'soon')"),
    ("PIPELINE_BUS", "rabbit", "environment variable PIPELINE_BUS: bus: must be one of 'sqlite' or 'kafka'"),
])
def test_bad_environment_values_are_refused_in_plain_words(env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str], var: str, value: str,
                                                           needle: str) -> None:
    monkeypatch.setenv(var, value)
    Path(env["PIPELINE_DATA_DIR"]).mkdir()
    code, _, err = _run(capsys, "status")
    assert code == 2
    assert needle in _one_error_line(err)


def test_allow_hosts_accepts_hosts_addresses_and_networks() -> None:
    s = load_settings({"PIPELINE_ALLOW_HOSTS": "localhost, 127.0.0.1, [::1], 10.0.0.0/8, intranet.example.",
                       "PIPELINE_DATA_DIR": "/tmp/x"})
    assert len(s.fetch.allow_hosts) == 5


def test_settings_errors_use_plain_words_not_pydantic_wording(tmp_path: Path) -> None:
    from pipeline.errors import ConfigError

    (tmp_path / "settings.yaml").write_text("fetch:\n  dedline: 3\nextract:\n  workers: -1\n")
    with pytest.raises(ConfigError) as exc:
        load_settings({"PIPELINE_CONFIG_DIR": str(tmp_path)})
    msg = str(exc.value)
    assert msg == (f"{tmp_path / 'settings.yaml'}: fetch.dedline: unknown key; did you mean 'deadline'? "
                   "(and 1 more)")
    assert "Extra inputs" not in msg and "Input should" not in msg


def _bad_watchlist_dir(tmp_path: Path) -> Path:
    cfg = tmp_path / "config"
    cfg.mkdir()
    text = (PROJECT / "config" / "watchlist.yaml").read_text(encoding="utf-8")
    (cfg / "watchlist.yaml").write_text(text.replace("core: [al-tanf, ", "core: [al-tanff, "), encoding="utf-8")
    return cfg


def test_a_bad_watchlist_is_found_before_any_fetch_and_by_tag(tmp_path: Path, env: dict[str, str],
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _bad_watchlist_dir(tmp_path)
    server = LocalServer()
    try:
        server.route("/feed.xml", lambda h: h.reply(200, b"<rss/>", {"Content-Type": "application/rss+xml"}))
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(f"feeds:\n  - url: {server.url('/feed.xml')}\n", encoding="utf-8")
        monkeypatch.setenv("PIPELINE_FEEDS", str(feeds))
        monkeypatch.setenv("PIPELINE_CONFIG_DIR", str(cfg))
        code, _, err = _run(capsys, "run", "--once")
        assert server.state.paths() == [], "nothing is fetched with a bad watchlist"
    finally:
        server.close()
    assert code == 2
    line = _one_error_line(err)
    assert f"{cfg / 'watchlist.yaml'}: topics.0.core.0: unknown entity id 'al-tanff'" in line
    assert "did you mean 'al-tanf'?" in line
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("Clashes near At Tanf."))
    code, _, err = _run(capsys, "tag")
    assert code == 2 and "topics.0.core.0: unknown entity id 'al-tanff'" in _one_error_line(err)


# -- what libraries print ---------------------------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_elasticsearch_down_is_one_line_without_library_tracebacks(env: dict[str, str]) -> None:
    proc = cli("search", "al-Tanf", env=_child_env(env, PIPELINE_INDEX="elasticsearch",
                                                   ELASTICSEARCH_URL=f"http://127.0.0.1:{_closed_port()}"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("newswatch: error: http://127.0.0.1:")


def test_library_tracebacks_are_one_line_unless_debugging() -> None:
    import logging

    from pipeline.logs import OneLineTracebacks

    record = logging.LogRecord("elastic_transport.transport", logging.WARNING, __file__, 1,
                               "Retrying request after failure (attempt %d of %d)", (0, 1), None)
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except ConnectionRefusedError:
        record.exc_info = sys.exc_info()
    assert OneLineTracebacks().filter(record)
    assert record.exc_info is None
    assert record.getMessage() == ("Retrying request after failure (attempt 0 of 1): ConnectionRefusedError: "
                                   "[Errno 111] Connection refused")


def test_a_state_write_on_a_full_disk_is_a_state_error_and_rolled_back(tmp_path: Path) -> None:
    """SQLite's own "database or disk is full" (page limit reached) mid-run: one StateError, nothing half-written."""
    from pipeline.errors import StateError
    from pipeline.models import Outcome
    from pipeline.state import StateStore

    store = StateStore(tmp_path / "state.sqlite3")
    try:
        store.record(Outcome("fetch", "https://a.example/1", "http_404", "gone", ok=False))
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StateError, match=r"state\.sqlite3: cannot write: the disk is full"):
            store.record_many([Outcome("fetch", f"https://a.example/{i}", "x", "y" * 900) for i in range(200)])
        assert store.outcome_counts() == {"http_404": 1}, "the failed transaction was rolled back"
    finally:
        store.close()
