"""What the web app reads: the same index, alert store, tagger, feedback store, feeds file and run state as the CLI."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..alerts.service import AlertService
from ..config import Config, FeedConfig, Settings, Watchlist, load_feeds
from ..enrich.catalogue import Catalogue
from ..enrich.tagger import Tagger
from ..feedback.store import FeedbackStore
from ..index import SearchIndex, open_index
from .security import WebSecurity

__all__ = ["WebContext", "open_context"]

log = logging.getLogger(__name__)


@dataclass
class WebContext:
    """Opened once when the server starts, shared by every request (all parts are thread-safe).

    ``tagger`` reads search queries as the CLI's ``search`` does (every spelling of a place);
    ``feedback`` is the analysts' judgements store (``feedback`` command, scored by ``eval-tags``).
    Feed health is read from the run state (``state.sqlite3``) on each request, like ``feeds`` does.
    """

    settings: Settings
    watchlist: Watchlist
    index: SearchIndex
    alerts: AlertService
    tagger: Tagger
    feedback: FeedbackStore
    security: WebSecurity

    @property
    def catalogue(self) -> Catalogue:
        return self.tagger.catalogue

    def topic_name(self, topic_id: str) -> str:
        return self.alerts.topic_name(topic_id)

    def entity_name(self, entity_id: str) -> str:
        entity = self.catalogue.entities.get(entity_id)
        return entity.name if entity else entity_id

    @property
    def feeds_file(self) -> Path:
        """The feeds file the Feeds page reads: ``$PIPELINE_FEEDS`` or ``<config_dir>/feeds.yaml``."""
        return Path(self.settings.feeds_file or self.settings.config_dir / "feeds.yaml")

    def feeds(self) -> list[FeedConfig]:
        """The configured feeds, read on every call (a small file), so the Feeds page follows an edit of
        the feeds file without a restart; a file that became invalid is a :class:`ConfigError`."""
        return load_feeds(self.settings)

    def close(self) -> None:
        self.index.close()
        self.alerts.close()
        self.feedback.close()


def open_context(config: Config, security: WebSecurity | None = None, *, index: SearchIndex | None = None,
                 tagger: Tagger | None = None) -> WebContext:
    """Open the configured index, alert store and feedback store, and load the tagger (the catalogue
    with the user overlay). No notifier is built: the web page sends nothing."""
    tagger = tagger if tagger is not None else Tagger.load(watchlist=config.watchlist,
                                                           overlay=config.settings.catalogue_overlay)
    index = index if index is not None else open_index(config.settings)
    alerts = AlertService(config.settings, config.watchlist, notifiers=[])
    feedback = FeedbackStore(config.settings.feedback_db)
    log.info("web: index %s, alerts %s, feedback %s, %d catalogue entities", config.settings.index,
             config.settings.alerts_db, config.settings.feedback_db, len(tagger.catalogue))
    return WebContext(config.settings, config.watchlist, index, alerts, tagger, feedback, security or WebSecurity())
