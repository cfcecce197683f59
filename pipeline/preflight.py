"""Checks a command makes at start, before any fetch: one plain line naming the file or variable.

* :func:`prepare_data_dir` (commands that write: ``run``, ``demo``, ``worker``): the data
  directory exists or can be created, is a directory, and is writable.
* :func:`require_data_dir` (commands that read: ``search``, ``export``, ``status``,
  ``alerts``): it must already exist. A read command never creates an empty ``./var`` and
  then answers "no results": it says which directory it looked in and where that path came from.
* :func:`check_watchlist_entities` (``run``, ``demo``, ``worker enrich|alert``, ``tag``): every
  entity id the watchlist names is in the catalogue; the error names the watchlist file and
  key. It builds the tagger, which those commands build anyway (memoised per process).
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import Config, Settings, Watchlist
from .errors import ConfigError, InputError

__all__ = ["prepare_data_dir", "require_data_dir", "check_watchlist_entities", "check_start", "index_location"]


def _where(settings: Settings) -> str:
    origin = settings.origin("data_dir")
    return f"data directory {settings.data_dir} ({'from ' + origin if origin != 'default' else 'default ./var'})"


def prepare_data_dir(settings: Settings) -> Path:
    """Create the data directory if needed; ConfigError when it is a file, cannot be created or written."""
    path = settings.data_dir
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{_where(settings)}: is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{_where(settings)}: cannot create it: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{_where(settings)}: not writable")
    return path


def require_data_dir(settings: Settings) -> Path:
    """The existing data directory; InputError saying where we looked when there is none."""
    path = settings.data_dir
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{_where(settings)}: is a file, not a directory")
    if not path.is_dir():
        raise InputError(f"no data here: {_where(settings)} does not exist; run `demo` or `run --once` first, "
                         "or point PIPELINE_DATA_DIR at your data")
    return path


def check_watchlist_entities(watchlist: Watchlist, catalogue_path: Path | None = None) -> None:
    """Raise ConfigError (naming the watchlist file and key) if a topic names an unknown entity.

    Reads the catalogue (and the default overlay, as the tagger does) without building the matcher:
    a steady-state pass that finds nothing new never needs it."""
    from .enrich.catalogue import default_catalogue_path, load_catalogue
    from .enrich.overlay import default_overlay_path
    from .enrich.topics import check_watchlist

    catalogue = load_catalogue(catalogue_path or default_catalogue_path(), overlay=default_overlay_path(),
                               matching=False)
    check_watchlist(watchlist, catalogue)  # every core/scope/related id and geofence centre


def check_start(config: Config) -> None:
    """Everything a pipeline run checks before its first fetch: data directory and watchlist."""
    prepare_data_dir(config.settings)
    check_watchlist_entities(config.watchlist)


def index_location(settings: Settings) -> str:
    """Where the search index is, for "no results" lines (no credentials)."""
    if settings.index == "elasticsearch":
        return f"Elasticsearch index {settings.elasticsearch.index_prefix}-articles (ELASTICSEARCH_URL)"
    if settings.index == "opensearch":
        return f"OpenSearch index {settings.opensearch.index_prefix}-articles (OPENSEARCH_URL)"
    return f"index {settings.index_db}"
