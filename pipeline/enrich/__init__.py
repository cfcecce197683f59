"""Enrichment: the gazetteer of places and actors, alias matching, and watch topics.

``Tagger.load()`` builds the tagger once; ``tagger.tag(text, title)`` returns a
``pipeline.models.TagResult``. CLI: ``tag`` and ``eval-tags`` (see ``pipeline.enrich.cli``).
"""

from __future__ import annotations

from .catalogue import Catalogue, Entity, load_catalogue
from .normalize import normalize
from .tagger import Tagger

__all__ = ["Tagger", "Catalogue", "Entity", "load_catalogue", "normalize"]
