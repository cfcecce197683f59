"""Search index: the interface, and a factory choosing the backend from settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import EntityTerm, IndexReport, SearchHit, SearchIndex

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["EntityTerm", "IndexReport", "SearchHit", "SearchIndex", "open_index"]


def open_index(settings: Settings) -> SearchIndex:
    """The index named by ``settings.index``: ``sqlite`` (embedded), ``elasticsearch`` or ``opensearch``."""
    if settings.index == "opensearch":
        from .opensearch import OpenSearchIndex

        return OpenSearchIndex(settings.opensearch)
    if settings.index == "elasticsearch":
        from ..logs import quiet_library_tracebacks
        from .elasticsearch import ElasticsearchIndex

        quiet_library_tracebacks()  # the client logs a traceback per refused retry; we report one line

        return ElasticsearchIndex(settings.elasticsearch)
    from .sqlite import SQLiteIndex

    return SQLiteIndex(settings.index_db)
