"""Typed configuration, loaded once at start.

Sources, later ones winning:
1. ``$PIPELINE_CONFIG_DIR/settings.yaml`` (default ``./config``);
2. environment variables (see ``ENV_VARS``);
and separately ``feeds.yaml`` (or ``$PIPELINE_FEEDS``) and ``watchlist.yaml``.

Where things are, wherever the command is run from: the config dir is
``$PIPELINE_CONFIG_DIR``, else ``./config`` when the current directory has one, else the
``config/`` of the project checkout this package lives in. Relative paths inside
``settings.yaml`` (``data_dir``, ``feeds_file``, ``alerts.alerts_file``) are relative to
that file's folder (the shipped ``data_dir: ../var`` is the project's ``var/``); relative
paths in environment variables are relative to the current directory. ``data_dir`` is
made absolute, so every message says exactly where the data is.

Any invalid file or value raises :class:`ConfigError` whose message is one line
naming the file (or variable), the key and the problem in plain words ("unknown key",
"must be at most 4"), never pydantic's own wording. Secrets (``SMTP_URL``,
``SLACK_WEBHOOK_URL``, credentials inside ``ELASTICSEARCH_URL`` or ``OPENSEARCH_URL``,
``OPENSEARCH_PASSWORD``) come only from the
environment (or Airflow connections) and are held as ``SecretStr``, so they never
show up in a repr or a log line.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

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
    "load_watchlist_file",
    "default_config_dir",
    "project_config_dir",
    "plain_message",
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
    dns_cache_seconds: float = Field(30.0, ge=0, le=3600, description="how long a host's vetted addresses are "
                                     "reused before it is resolved and vetted again (0 = every request)")

    @field_validator("allow_hosts")
    @classmethod
    def _hosts_or_networks(cls, v: list[str]) -> list[str]:
        for entry in v:
            if not _is_host_or_network(entry):
                raise ValueError(f"{entry!r} is not a host name, an IP address or a network (e.g. 10.0.0.0/8)")
        return v


class ExtractSettings(_Strict):
    workers: int = Field(0, ge=0, description="extraction processes; 0 = one per core")
    min_text_chars: int = Field(250, ge=0)
    batch_size: int = Field(20, ge=1)


_HOSTNAME = re.compile(r"^(?=.{1,253}\.?$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
                       r"(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$", re.IGNORECASE)


def _is_host_or_network(entry: str) -> bool:
    """What ``fetch.allow_hosts`` accepts: a host name, an IP address (``[v6]`` too) or a CIDR network."""
    entry = entry.strip()
    if entry.startswith("[") and entry.endswith("]"):
        entry = entry[1:-1]
    try:
        ipaddress.ip_network(entry, strict=False)
        return True
    except ValueError:
        return bool(_HOSTNAME.match(entry))


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


class FeedsSettings(_Strict):
    """The pace of polling. No feed is polled more often than ``min_interval_seconds`` (at least 10 s)."""

    min_interval_seconds: float = Field(60.0, ge=10, description="floor of every feed's poll interval")


class Settings(_Strict):
    data_dir: Path = Path("./var")
    config_dir: Path = Path("./config")
    feeds_file: Path | None = None
    bus: Literal["sqlite", "kafka"] = "sqlite"
    index: Literal["sqlite", "elasticsearch", "opensearch"] = "sqlite"
    poll_interval_seconds: float = Field(300.0, gt=0)
    retention_days: int = Field(365, ge=1)
    fetch_state_retention_days: int = Field(90, ge=1)
    feeds: FeedsSettings = Field(default_factory=FeedsSettings)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    extract: ExtractSettings = Field(default_factory=ExtractSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    elasticsearch: ElasticsearchSettings = Field(default_factory=ElasticsearchSettings)
    opensearch: OpenSearchSettings = Field(default_factory=OpenSearchSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    ops: OpsSettings = Field(default_factory=OpsSettings)
    _origins: dict[str, str] = PrivateAttr(default_factory=dict)

    def origin(self, key: str) -> str:
        """Where the value of dotted ``key`` came from, for messages: ``environment variable
        PIPELINE_DATA_DIR``, ``/path/settings.yaml: data_dir`` or ``default``."""
        return self._origins.get(key, "default")

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
    """One feed of feeds.yaml. ``interval_seconds`` polls it at exactly that pace (failures still back
    off); ``interval_minutes`` is the base of its adaptive interval instead of ``poll_interval_seconds``."""

    url: str
    name: str = ""
    interval_minutes: float | None = Field(None, gt=0)
    interval_seconds: float | None = Field(None, ge=10, le=86400)

    @model_validator(mode="after")
    def _one_interval(self) -> FeedConfig:
        if self.interval_minutes is not None and self.interval_seconds is not None:
            raise ValueError("interval_seconds and interval_minutes: give one of them, not both")
        return self

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
    _source: str = PrivateAttr(default="watchlist")

    @property
    def source(self) -> str:
        """The file this watchlist was read from (for messages), or ``watchlist``."""
        return self._source

    def with_source(self, source: str | Path) -> Watchlist:
        self._source = str(source)
        return self

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
    "PIPELINE_MIN_INTERVAL": "feeds.min_interval_seconds",
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


_SECRETISH = ("url", "password", "key", "secret", "token")


def _shown(value: Any, key: str) -> str:
    """`` (got X)`` for a short scalar input; nothing for anything that could be a secret."""
    if any(word in key.lower() for word in _SECRETISH) or not isinstance(value, (str, int, float, bool)):
        return ""
    text = repr(value)
    return f" (got {text})" if len(text) <= 60 else ""


def _known_keys(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at ``loc`` accepts (for "did you mean")."""
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        ann = field.annotation
        inner = getattr(ann, "__args__", None) or (ann,)
        model = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return list(model.model_fields) if model is not None else []


def plain_message(err: Any, model: type[BaseModel] | None = None) -> str:
    """One pydantic error in plain words: "unknown key", "must be at most 4 (got 9)"."""
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    loc = tuple(err.get("loc") or ())
    got = _shown(err.get("input"), _fmt_loc(loc))
    if kind == "extra_forbidden":
        known = _known_keys(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]) if loc else "", known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else (f"; known keys: {', '.join(known)}" if known else "")
        return f"unknown key{hint}"
    if kind == "missing":
        return "required, but missing"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '?')}{got}"
    bounds = {"greater_than": ("greater than", "gt"), "greater_than_equal": ("at least", "ge"),
              "less_than": ("less than", "lt"), "less_than_equal": ("at most", "le")}
    if kind in bounds:
        words, name = bounds[kind]
        return f"must be {words} {ctx.get(name)}{got}"
    kinds = {"float_parsing": "must be a number", "float_type": "must be a number",
             "int_parsing": "must be a whole number", "int_type": "must be a whole number",
             "int_from_float": "must be a whole number", "bool_parsing": "must be true or false",
             "bool_type": "must be true or false", "string_type": "must be text", "list_type": "must be a list",
             "dict_type": "must be a mapping (key: value lines)", "model_type": "must be a mapping (key: value lines)",
             "model_attributes_type": "must be a mapping (key: value lines)",
             "path_type": "must be a path", "none_required": "must be empty"}
    if kind in kinds:
        return kinds[kind] + got
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}{got}"
    if kind == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else f"must be at least {ctx.get('min_length')} characters"
    msg = str(err.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg[:1].lower() + msg[1:] if msg[:2] != msg[:2].upper() else msg


def _validation_line(source: str, exc: ValidationError, env_keys: dict[str, str] | None = None,
                     model: type[BaseModel] | None = None) -> str:
    err = exc.errors()[0]
    key = _fmt_loc(err["loc"])
    if env_keys and key in env_keys:
        source = f"environment variable {env_keys[key]}"
    extra = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{source}: {key}: {plain_message(err, model)}{extra}"


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


def project_config_dir() -> Path | None:
    """``config/`` of the project checkout this package lives in (source or editable install), if any."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "config"
        if (candidate / "settings.yaml").is_file() or (candidate / "watchlist.yaml").is_file():
            return candidate
    return None


def default_config_dir() -> Path:
    """``./config`` when the current directory has one, else the project checkout's, else ``./config``."""
    local = Path("config")
    if local.is_dir():
        return local.absolute()
    return project_config_dir() or local.absolute()


# keys of settings.yaml holding paths: relative ones are relative to the file's folder
_PATH_KEYS = ("data_dir", "feeds_file", "alerts.alerts_file")


def _get_dotted(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for p in dotted.split("."):
        if not isinstance(node, dict) or p not in node:
            return None
        node = node[p]
    return node


def _file_origins(data: dict[str, Any], path: Path, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in data.items():
        dotted = f"{prefix}{k}"
        out[dotted] = f"{path}: {dotted}"
        if isinstance(v, dict):
            out.update(_file_origins(v, path, dotted + "."))
    return out


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Load ``settings.yaml`` from the config dir and apply environment overrides."""
    env = dict(os.environ if env is None else env)
    config_dir = Path(env["PIPELINE_CONFIG_DIR"]).absolute() if env.get("PIPELINE_CONFIG_DIR") \
        else default_config_dir()
    path = config_dir / "settings.yaml"
    data: Any = {}
    if path.exists():
        data = _read_yaml(path) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: (top level): expected a mapping, got {type(data).__name__}")
    origins = _file_origins(data, path)
    for dotted in _PATH_KEYS:
        in_file = _get_dotted(data, dotted)
        if isinstance(in_file, str) and in_file and not Path(in_file).is_absolute():
            _set_dotted(data, dotted, str(config_dir / in_file))
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
        origins[dotted] = f"environment variable {var}"
    data.setdefault("config_dir", str(config_dir))
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_validation_line(str(path), exc, env_keys, Settings)) from None
    settings.data_dir = Path(os.path.normpath(settings.data_dir.absolute()))
    settings._origins = origins
    floor = settings.feeds.min_interval_seconds
    if settings.poll_interval_seconds < floor:
        where = origins.get("poll_interval_seconds", f"{path}: poll_interval_seconds")
        if where.startswith("environment variable"):
            where += ": poll_interval_seconds"
        raise ConfigError(f"{where}: {settings.poll_interval_seconds:g} s is under feeds.min_interval_seconds "
                          f"({floor:g} s); poll less often, or lower that floor (at least 10 s)")
    return settings


def load_feeds(settings: Settings) -> list[FeedConfig]:
    """The feeds to poll: ``$PIPELINE_FEEDS`` or ``<config_dir>/feeds.yaml``; no feed's own interval
    may be under ``feeds.min_interval_seconds``."""
    path = settings.feeds_file or (settings.config_dir / "feeds.yaml")
    feeds = load_feeds_file(Path(path))
    floor = settings.feeds.min_interval_seconds
    for i, f in enumerate(feeds):
        key, seconds = (("interval_seconds", f.interval_seconds) if f.interval_seconds is not None else
                        ("interval_minutes", f.interval_minutes * 60.0 if f.interval_minutes is not None else None))
        if seconds is not None and seconds < floor:
            raise ConfigError(f"{path}: feeds.{i}.{key}: {seconds:g} s is under feeds.min_interval_seconds "
                              f"({floor:g} s, settings.yaml); poll this feed less often, or lower that floor "
                              f"(at least 10 s)")
    return feeds


def load_feeds_file(path: Path) -> list[FeedConfig]:
    data = _read_yaml(path)
    if data is None:
        data = {"feeds": []}
    try:
        feeds = FeedsFile.model_validate(data).feeds
    except ValidationError as exc:
        raise ConfigError(_validation_line(str(path), exc, model=FeedsFile)) from None
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
    return load_watchlist_file(path)


def load_watchlist_file(path: Path) -> Watchlist:
    """A watchlist file, validated (its ``source`` is the path, for later messages)."""
    data = _read_yaml(path)
    try:
        wl = Watchlist.model_validate(data).with_source(path)
    except ValidationError as exc:
        raise ConfigError(_validation_line(str(path), exc, model=Watchlist)) from None
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
