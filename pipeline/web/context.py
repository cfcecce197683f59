"""What the web app reads: the same index, alert store, watchlist and catalogue as the CLI."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..alerts.service import AlertService
from ..config import Config, Settings, Watchlist
from ..enrich.catalogue import Catalogue, load_catalogue
from ..index import SearchIndex, open_index
from .security import WebSecurity

__all__ = ["WebContext", "open_context"]

log = logging.getLogger(__name__)


@dataclass
class WebContext:
    """Opened once when the server starts, shared by every request (all parts are thread-safe)."""

    settings: Settings
    watchlist: Watchlist
    index: SearchIndex
    alerts: AlertService
    catalogue: Catalogue
    security: WebSecurity

    def topic_name(self, topic_id: str) -> str:
        return self.alerts.topic_name(topic_id)

    def entity_name(self, entity_id: str) -> str:
        entity = self.catalogue.entities.get(entity_id)
        return entity.name if entity else entity_id

    def close(self) -> None:
        self.index.close()
        self.alerts.close()


def open_context(config: Config, security: WebSecurity | None = None, *, index: SearchIndex | None = None,
                 catalogue: Catalogue | None = None) -> WebContext:
    """Open the configured index and alert store read-side (no notifier is built: the web page sends nothing)."""
    catalogue = catalogue if catalogue is not None else load_catalogue()
    index = index if index is not None else open_index(config.settings)
    alerts = AlertService(config.settings, config.watchlist, notifiers=[])
    log.info("web: index %s, alerts %s, %d catalogue entities", config.settings.index, config.settings.alerts_db,
             len(catalogue))
    return WebContext(config.settings, config.watchlist, index, alerts, catalogue, security or WebSecurity())
