from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import (
    FeedConfig,
    load_config,
    load_feeds,
    load_feeds_file,
    load_settings,
    load_watchlist,
    save_feeds_file,
)
from pipeline.errors import ConfigError


def _write(p: Path, text: str) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_from_project_config(env: dict[str, str]) -> None:
    config = load_config()
    s = config.settings
    assert s.bus == "sqlite" and s.index == "sqlite"
    assert str(s.data_dir) == env["PIPELINE_DATA_DIR"]
    assert s.fetch.allow_hosts == ["127.0.0.1", "localhost"]
    assert s.fetch.delay_seconds == 0
    assert {t.id for t in config.watchlist.topics} >= {"al-tanf", "deir-ez-zor"}


def test_env_overrides_and_secrets_hidden(tmp_path: Path) -> None:
    s = load_settings({
        "PIPELINE_CONFIG_DIR": str(tmp_path),
        "PIPELINE_BUS": "kafka",
        "KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
        "KAFKA_API_VERSION": "2.0",
        "SMTP_URL": "smtps://user:hunter2@mail.example:465",
        "SLACK_WEBHOOK_URL": "https://hooks.example/T000/B000/XXXX",
        "PIPELINE_ALLOW_HOSTS": " 127.0.0.1 , intranet.local ,",
    })
    assert s.bus == "kafka"
    assert s.kafka.bootstrap_servers == "k1:9092,k2:9092" and s.kafka.api_version == "2.0"
    assert s.fetch.allow_hosts == ["127.0.0.1", "intranet.local"]
    assert s.alerts.smtp_url is not None and s.alerts.smtp_url.get_secret_value().endswith("465")
    dumped = repr(s) + str(s.model_dump())
    assert "hunter2" not in dumped and "XXXX" not in dumped


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"PIPELINE_BUS": "rabbit"}, "environment variable PIPELINE_BUS: bus:"),
        ({"PIPELINE_FETCH_DELAY": "soon"}, "environment variable PIPELINE_FETCH_DELAY: fetch.delay_seconds:"),
        ({"PIPELINE_INDEX": "solr"}, "environment variable PIPELINE_INDEX: index:"),
    ],
)
def test_bad_env_value_is_one_line_naming_variable_and_key(tmp_path: Path, env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings({"PIPELINE_CONFIG_DIR": str(tmp_path), **env})
    msg = str(exc.value)
    assert needle in msg and "\n" not in msg


def test_bad_settings_file_names_file_and_key(tmp_path: Path) -> None:
    path = _write(tmp_path / "settings.yaml", "fetch:\n  per_host_concurrency: 9\n")
    with pytest.raises(ConfigError, match=r"settings\.yaml: fetch\.per_host_concurrency: must be at most 4 \(got 9\)"):
        load_settings({"PIPELINE_CONFIG_DIR": str(tmp_path)})
    path.write_text("fetch:\n  typo_key: 1\n")
    with pytest.raises(ConfigError, match=r"settings\.yaml: fetch\.typo_key: unknown key; known keys: connect_timeout"):
        load_settings({"PIPELINE_CONFIG_DIR": str(tmp_path)})
    path.write_text("fetch: [unclosed\n")
    with pytest.raises(ConfigError, match=r"settings\.yaml: line \d+ column \d+: invalid YAML"):
        load_settings({"PIPELINE_CONFIG_DIR": str(tmp_path)})
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_settings({"PIPELINE_CONFIG_DIR": str(tmp_path)})


def test_feeds_file_validation(tmp_path: Path) -> None:
    ok = _write(tmp_path / "f.yaml", "feeds:\n  - url: https://example.org/rss\n    name: Ex\n  - url: http://b.example/atom\n")
    feeds = load_feeds_file(ok)
    assert [f.name for f in feeds] == ["Ex", ""]
    bad = _write(tmp_path / "g.yaml", "feeds:\n  - url: ftp://example.org/rss\n")
    with pytest.raises(ConfigError, match=r"g\.yaml: feeds\.0\.url: .*http"):
        load_feeds_file(bad)
    missing = _write(tmp_path / "h.yaml", "feeds:\n  - name: no url\n")
    with pytest.raises(ConfigError, match=r"h\.yaml: feeds\.0\.url: required, but missing"):
        load_feeds_file(missing)
    dup = _write(tmp_path / "i.yaml", "feeds:\n  - url: https://a.example/\n  - url: https://a.example/\n")
    with pytest.raises(ConfigError, match="duplicate feed"):
        load_feeds_file(dup)
    with pytest.raises(ConfigError, match="file not found"):
        load_feeds_file(tmp_path / "nope.yaml")


def test_saved_feeds_file_reads_back_equal(tmp_path: Path) -> None:
    feeds = [FeedConfig(url="https://example.org/rss", name="Ex: «ملف» <b>"),
             FeedConfig(url="http://b.example/atom", interval_minutes=15)]
    path = tmp_path / "out" / "feeds.yaml"
    save_feeds_file(path, feeds, "written by a test\n\nsecond paragraph")
    assert load_feeds_file(path) == feeds
    assert path.read_text(encoding="utf-8").startswith("# written by a test\n#\n# second paragraph\nfeeds:\n")
    save_feeds_file(path, feeds[:1])  # replaced whole
    assert load_feeds_file(path) == feeds[:1] and [p.name for p in path.parent.iterdir()] == ["feeds.yaml"]


def test_watchlist_validation(tmp_path: Path) -> None:
    _write(tmp_path / "watchlist.yaml", "topics:\n  - id: Bad Id\n")
    s = load_settings({"PIPELINE_CONFIG_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"watchlist\.yaml: topics\.0\.id:"):
        load_watchlist(s)
    _write(tmp_path / "watchlist.yaml", "topics:\n  - id: a\n  - id: a\n")
    with pytest.raises(ConfigError, match="duplicate topic id a"):
        load_watchlist(s)


def test_poll_pace_floor_and_per_feed_interval(tmp_path: Path) -> None:
    feeds = _write(tmp_path / "feeds.yaml", "feeds:\n  - url: https://a.example/rss\n    interval_seconds: 15\n"
                                            "  - url: https://b.example/rss\n")
    base = {"PIPELINE_CONFIG_DIR": str(tmp_path), "PIPELINE_FEEDS": str(feeds)}
    with pytest.raises(ConfigError, match=r"feeds\.yaml: feeds\.0\.interval_seconds: 15 s is under "
                                          r"feeds\.min_interval_seconds \(60 s"):
        load_feeds(load_settings(base))  # the default floor
    _write(tmp_path / "settings.yaml", "feeds:\n  min_interval_seconds: 10\n")
    settings = load_settings(base)
    assert settings.feeds.min_interval_seconds == 10
    assert [f.interval_seconds for f in load_feeds(settings)] == [15, None]
    _write(tmp_path / "settings.yaml", "feeds:\n  min_interval_seconds: 5\n")
    with pytest.raises(ConfigError, match=r"settings\.yaml: feeds\.min_interval_seconds: must be at least 10"):
        load_settings(base)
    with pytest.raises(ConfigError, match=r"PIPELINE_MIN_INTERVAL: feeds\.min_interval_seconds: must be at least 10"):
        load_settings({**base, "PIPELINE_MIN_INTERVAL": "1"})
    _write(tmp_path / "settings.yaml", "poll_interval_seconds: 30\n")
    with pytest.raises(ConfigError, match=r"settings\.yaml: poll_interval_seconds: 30 s is under "
                                          r"feeds\.min_interval_seconds \(60 s\)"):
        load_settings(base)
    with pytest.raises(ConfigError, match=r"environment variable PIPELINE_POLL_INTERVAL: poll_interval_seconds: 20 s"):
        load_settings({**base, "PIPELINE_POLL_INTERVAL": "20"})
    both = _write(tmp_path / "both.yaml", "feeds:\n  - url: https://a.example/rss\n    interval_seconds: 60\n"
                                          "    interval_minutes: 2\n")
    with pytest.raises(ConfigError, match=r"both\.yaml: feeds\.0: interval_seconds and interval_minutes: give one"):
        load_feeds_file(both)
    short = _write(tmp_path / "short.yaml", "feeds:\n  - url: https://a.example/rss\n    interval_seconds: 5\n")
    with pytest.raises(ConfigError, match=r"short\.yaml: feeds\.0\.interval_seconds: must be at least 10"):
        load_feeds_file(short)
