"""Typed configuration, loaded once at start.

Sources, later ones winning:
1. ``$PIPELINE_CONFIG_DIR/settings.yaml`` (default ``./config``);
2. environment variables (see ``ENV_VARS``);
and separately ``feeds.yaml`` (or ``$PIPELINE_FEEDS``) and ``watchlist.yaml``.

Any invalid file or value raises :class:`ConfigError` whose message is one line
naming the file (or variable), the key and the problem. Secrets (``SMTP_URL``,
``SLACK_WEBHOOK_URL``, credentials inside ``ELASTICSEARCH_URL`` or ``OPENSEARCH_URL``, ``OPENSEARCH_PASSWORD``) come only from the
environment (or Airflow connections) and are held as ``SecretStr``, so they never
show up in a repr or a log line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .errors import ConfigError

__all__ = [
    "Settings",
    "FetchSettings",
    "ExtractSettings",
    "KafkaSettings",
    "ElasticsearchSettings",
    "OpenSearchSettings",
    "AlertSettings",
    "WebSettings",
    "OpsSettings",
    "FeedConfig",
    "FeedsFile",
    "WatchTopic",
    "Watchlist",
    "Geofence",
    "Config",
    "load_config",
    "load_settings",
    "load_feeds",
    "load_feeds_file",
    "save_feeds_file",
    "load_watchlist",
    "ENV_VARS",
    "yaml_load",
]


_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built in: ~10x faster


def yaml_load(text: str) -> Any:
    """``yaml.safe_load`` with libyaml's C loader when available (same safe semantics)."""
    return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - CSafeLoader/SafeLoader only


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class FetchSettings(_Strict):
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(10.0, gt=0)
    deadline: float = Field(30.0, gt=0, description="total seconds for one fetch, redirects included")
    max_bytes: int = Field(10 * 1024 * 1024, gt=0, description="cap on the decompressed body")
    max_redirects: int = Field(5, ge=0, le=20)
    per_host_concurrency: int = Field(2, ge=1, le=4)
    delay_seconds: float = Field(1.0, ge=0, description="pause between two requests to one host")
    max_retry_after: float = Field(120.0, ge=0, description="longest Retry-After we wait for in-run")
    retries: int = Field(2, ge=0, le=10)
    user_agent: str = "newswatch/0.1 (+https://github.com/newswatch/newswatch)"
    allow_hosts: list[str] = Field(default_factory=list, description="hosts/IPs fetchable although not public")
    respect_robots: bool = True
    concurrency: int = Field(16, ge=1, le=256, description="fetches in flight across all hosts")


class ExtractSettings(_Strict):
    workers: int = Field(0, ge=0, description="extraction processes; 0 = one per core")
    min_text_chars: int = Field(250, ge=0)
    batch_size: int = Field(20, ge=1)


class KafkaSettings(_Strict):
    bootstrap_servers: str = "localhost:9092"
    api_version: str | None = None  # e.g. "2.0"; None = negotiate
    client_id: str = "newswatch"
    topic_prefix: str = ""
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None


class ElasticsearchSettings(_Strict):
    url: SecretStr | None = None  # may carry credentials
    index_prefix: str = "newswatch"
    api_key: SecretStr | None = None
    verify_certs: bool = True
    request_timeout: float = Field(30.0, gt=0)


class OpenSearchSettings(_Strict):
    url: SecretStr | None = None  # may carry user:password@
    username: str | None = None  # basic auth when the URL carries none
    password: SecretStr | None = None
    index_prefix: str = "newswatch"
    verify_certs: bool = True
    request_timeout: float = Field(30.0, gt=0)


class AlertSettings(_Strict):
    smtp_url: SecretStr | None = None
    smtp_from: str = "newswatch@localhost"
    smtp_starttls: Literal["auto", "require", "never"] = "auto"
    slack_webhook_url: SecretStr | None = None
    alerts_file: str | None = None  # default: <data_dir>/alerts.jsonl
    max_attempts: int = Field(8, ge=1)
    base_backoff_seconds: float = Field(2.0, ge=0)
    max_backoff_seconds: float = Field(600.0, ge=0)


class WebSettings(_Strict):
    """``serve``: the web page. The token guards writes when the server listens beyond loopback."""

    token: SecretStr | None = None

    @field_validator("token")
    @classmethod
    def _long_enough(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (e.g. python -c 'import secrets; "
                             "print(secrets.token_urlsafe())')")
        return v
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")


class OpsSettings(_Strict):
    """Who hears about the pipeline's own health (feeds failing or silent), and when."""

    email: list[str] = Field(default_factory=list, description="ops recipients (NEWSWATCH_OPS_EMAIL)")
    slack: bool = Field(True, description="also post ops alerts to the Slack webhook, when one is configured")
    feed_alerts: bool = Field(True, description="raise feed-health alerts at all")
    feed_failing_minutes: float = Field(360.0, gt=0, description="a feed failing this long raises an ops alert")
    feed_silent_factor: float = Field(4.0, ge=1, description="silent for this many usual gaps between new items")
    feed_silent_min_hours: float = Field(6.0, gt=0, description="... and for at least this long")

    @field_validator("email")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        out = [a.strip() for a in v if a.strip()]
        for a in out:
            if not _EMAIL.match(a):
                raise ValueError(f"not an email address: {a!r}")
        return out


class Settings(_Strict):
    data_dir: Path = Path("./var")
    config_dir: Path = Path("./config")
    feeds_file: Path | None = None
    bus: Literal["sqlite", "kafka"] = "sqlite"
    index: Literal["sqlite", "elasticsearch", "opensearch"] = "sqlite"
    poll_interval_seconds: float = Field(300.0, gt=0)
    retention_days: int = Field(365, ge=1)
    fetch_state_retention_days: int = Field(90, ge=1)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    extract: ExtractSettings = Field(default_factory=ExtractSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    elasticsearch: ElasticsearchSettings = Field(default_factory=ElasticsearchSettings)
    opensearch: OpenSearchSettings = Field(default_factory=OpenSearchSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    ops: OpsSettings = Field(default_factory=OpsSettings)

    @property
    def state_db(self) -> Path:
        """SQLite file holding feed state, fetch outcomes and other run state."""
        return self.data_dir / "state.sqlite3"

    @property
    def bus_db(self) -> Path:
        return self.data_dir / "bus.sqlite3"

    @property
    def index_db(self) -> Path:
        return self.data_dir / "index.sqlite3"

    @property
    def alerts_db(self) -> Path:
        return self.data_dir / "alerts.sqlite3"

    @property
    def feedback_db(self) -> Path:
        """Analysts' judgements of the tagger (``feedback`` command, scored by ``eval-tags``)."""
        return self.data_dir / "feedback.sqlite3"

    @property
    def catalogue_overlay(self) -> Path:
        """The user overlay of the gazetteer (extra aliases, blockers, context words)."""
        return self.config_dir / "catalogue-overlay.yaml"

    @property
    def alerts_path(self) -> Path:
        return Path(self.alerts.alerts_file) if self.alerts.alerts_file else self.data_dir / "alerts.jsonl"


class FeedConfig(_Strict):
    url: str
    name: str = ""
    interval_minutes: float | None = Field(None, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        v = v.strip()
        if not v.lower().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return v


class FeedsFile(_Strict):
    feeds: list[FeedConfig]


class Geofence(_Strict):
    """A circle around a catalogue place: any tagged place whose coordinates fall inside fires the topic."""

    entity: str = Field(min_length=1, description="catalogue place at the centre")
    km: float = Field(gt=0, le=2000, description="radius in kilometres")


class WatchTopic(_Strict):
    """A watched topic. The enrich stage decides when it fires; alerts decide who hears."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str = ""
    description: str = ""
    core: list[str] = Field(default_factory=list, description="entity ids: any mention fires the topic")
    scope: list[str] = Field(default_factory=list, description="region entity ids: any place inside fires it")
    related: list[str] = Field(default_factory=list, description="entity ids counted toward related_threshold")
    related_threshold: int = Field(2, ge=1)
    within: Geofence | None = Field(None, description="fire on any tagged place inside this circle")
    email: list[str] = Field(default_factory=list, description="recipients")
    slack: bool = True
    digest: Literal["immediate", "hourly", "daily"] = "immediate"
    max_alerts_per_hour: int = Field(30, ge=1)


class Watchlist(_Strict):
    topics: list[WatchTopic]

    def topic(self, topic_id: str) -> WatchTopic:
        for t in self.topics:
            if t.id == topic_id:
                return t
        raise KeyError(topic_id)


# name -> (dotted settings key, parser)
ENV_VARS: dict[str, str] = {
    "PIPELINE_DATA_DIR": "data_dir",
    "PIPELINE_CONFIG_DIR": "config_dir",
    "PIPELINE_FEEDS": "feeds_file",
    "PIPELINE_BUS": "bus",
    "PIPELINE_INDEX": "index",
    "PIPELINE_ALLOW_HOSTS": "fetch.allow_hosts",
    "PIPELINE_FETCH_DELAY": "fetch.delay_seconds",
    "PIPELINE_POLL_INTERVAL": "poll_interval_seconds",
    "PIPELINE_EXTRACT_WORKERS": "extract.workers",
    "KAFKA_BOOTSTRAP_SERVERS": "kafka.bootstrap_servers",
    "KAFKA_API_VERSION": "kafka.api_version",
    "ELASTICSEARCH_URL": "elasticsearch.url",
    "ELASTICSEARCH_API_KEY": "elasticsearch.api_key",
    "OPENSEARCH_URL": "opensearch.url",
    "OPENSEARCH_USERNAME": "opensearch.username",
    "OPENSEARCH_PASSWORD": "opensearch.password",
    "SMTP_URL": "alerts.smtp_url",
    "SMTP_FROM": "alerts.smtp_from",
    "SLACK_WEBHOOK_URL": "alerts.slack_webhook_url",
    "PIPELINE_WEB_TOKEN": "web.token",
    "NEWSWATCH_OPS_EMAIL": "ops.email",
}
_LIST_KEYS = {"fetch.allow_hosts", "ops.email"}


def _fmt_loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _validation_line(source: str, exc: ValidationError, env_keys: dict[str, str] | None = None) -> str:
    err = exc.errors()[0]
    key = _fmt_loc(err["loc"])
    if env_keys and key in env_keys:
        source = f"environment variable {env_keys[key]}"
    msg = err["msg"]
    extra = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{source}: {key}: {msg}{extra}"


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        return yaml_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where}: invalid YAML: {problem}") from None


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for p in parts[:-1]:
        child = node.get(p)
        if not isinstance(child, dict):
            child = {}
            node[p] = child
        node = child
    node[parts[-1]] = value


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Load ``settings.yaml`` from the config dir and apply environment overrides."""
    env = dict(os.environ if env is None else env)
    config_dir = Path(env.get("PIPELINE_CONFIG_DIR") or "./config")
    path = config_dir / "settings.yaml"
    data: Any = {}
    if path.exists():
        data = _read_yaml(path) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: (top level): expected a mapping, got {type(data).__name__}")
    env_keys: dict[str, str] = {}
    for var, dotted in ENV_VARS.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        value: Any = raw
        if dotted in _LIST_KEYS:
            value = [h.strip() for h in raw.split(",") if h.strip()]
        _set_dotted(data, dotted, value)
        env_keys[dotted] = var
    data.setdefault("config_dir", str(config_dir))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_validation_line(str(path), exc, env_keys)) from None


def load_feeds(settings: Settings) -> list[FeedConfig]:
    """The feeds to poll: ``$PIPELINE_FEEDS`` or ``<config_dir>/feeds.yaml``."""
    path = settings.feeds_file or (settings.config_dir / "feeds.yaml")
    return load_feeds_file(Path(path))


def load_feeds_file(path: Path) -> list[FeedConfig]:
    data = _read_yaml(path)
    if data is None:
        data = {"feeds": []}
    try:
        feeds = FeedsFile.model_validate(data).feeds
    except ValidationError as exc:
        raise ConfigError(_validation_line(str(path), exc)) from None
    seen: set[str] = set()
    for i, f in enumerate(feeds):
        if f.url in seen:
            raise ConfigError(f"{path}: feeds.{i}.url: duplicate feed {f.url}")
        seen.add(f.url)
    return feeds


def save_feeds_file(path: Path, feeds: list[FeedConfig], comment: str = "") -> None:
    """Write ``feeds`` as a feeds file that :func:`load_feeds_file` reads back equal (atomically:
    a reader never sees half a file). ``comment`` becomes ``#`` lines at the top."""
    body = yaml.safe_dump({"feeds": [f.model_dump(exclude_defaults=True) for f in feeds]}, sort_keys=False,
                          allow_unicode=True)
    head = "".join(f"# {line}".rstrip() + "\n" for line in comment.splitlines())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(head + body, encoding="utf-8")
    tmp.replace(path)


def load_watchlist(settings: Settings) -> Watchlist:
    path = settings.config_dir / "watchlist.yaml"
    data = _read_yaml(path)
    try:
        wl = Watchlist.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_validation_line(str(path), exc)) from None
    ids = [t.id for t in wl.topics]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ConfigError(f"{path}: topics: duplicate topic id {sorted(dup)[0]}")
    return wl


@dataclass
class Config:
    settings: Settings
    feeds: list[FeedConfig]
    watchlist: Watchlist


def load_config(env: dict[str, str] | None = None) -> Config:
    """Everything at once, validated: what an entry point calls before doing any work."""
    settings = load_settings(env)
    return Config(settings=settings, feeds=load_feeds(settings), watchlist=load_watchlist(settings))
