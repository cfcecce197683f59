"""Search that knows the spellings: the query is tagged like an article before it reaches the index.

:func:`search_documents` tags the query with the gazetteer tagger; every catalogue entity it
names (in any spelling: "Deir Ezzor", "Dayr az-Zawr", "دير الزور") becomes an
:class:`~pipeline.index.base.EntityTerm`, and the rest of the query stays free text. The
index then matches documents tagged with the entity (or that fired a watch topic the entity
is core of) as well as documents whose text has one of its spellings, tagged ones first
(see the ``SearchIndex.search`` contract). ``topic``/``entity`` filters are checked against
the watchlist and the catalogue: an unknown id is an :class:`~pipeline.errors.InputError`
that suggests the closest ids. The CLI ``search`` and the web page share this function.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .errors import InputError
from .index.base import EntityTerm, SearchHit, SearchIndex

if TYPE_CHECKING:
    from .enrich.tagger import Tagger

__all__ = ["search_documents", "check_filters", "query_terms", "suggest", "closest"]

_MAX_SPELLINGS = 60


def closest(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    """The ids of ``known`` closest to ``name`` (similar spelling, else containing it), best first."""
    ids = sorted(known)
    close = difflib.get_close_matches(name.lower(), ids, n=n, cutoff=0.5)
    return close or [k for k in ids if name.lower() in k][:n]


def suggest(name: str, known: Iterable[str], n: int = 3) -> str:
    """``"; did you mean a, b?"`` for the ids closest to ``name`` (empty when none is close)."""
    close = closest(name, known, n)
    return f"; did you mean {', '.join(close)}?" if close else ""


def _spellings(tagger: Tagger, entity_id: str) -> tuple[str, ...]:
    from .enrich.aliases import expand_alias, is_arabic

    out: dict[str, None] = {}
    for alias in tagger.catalogue.entities[entity_id].aliases:
        if alias.context is not None:
            continue  # an ambiguous word would match every text that has it
        for key in sorted(expand_alias(alias.text)[0]):
            if len(out) < _MAX_SPELLINGS and (len(key) > 3 or is_arabic(key)):
                out[key] = None
    return tuple(out)


def query_terms(tagger: Tagger, query: str) -> tuple[str, list[EntityTerm]]:
    """``(free text, entity terms)``: the catalogue entities ``query`` names, cut out of it."""
    result = tagger.tag(query)
    spans: list[tuple[int, int]] = []
    terms: list[EntityTerm] = []
    for hit in result.entities:
        mention = hit.mentions[0]
        spans += [(m.start, m.end) for m in hit.mentions]
        topics = tuple(t.id for t in tagger.watchlist.topics if hit.id in t.core)
        terms.append(EntityTerm(text=mention.text, ids=(hit.id,), topics=topics, spellings=_spellings(tagger, hit.id)))
    rest = list(query)
    for start, end in spans:
        rest[start:end] = [" "] * (end - start)
    return " ".join("".join(rest).split()), terms


def check_filters(tagger: Tagger, topic: str | None = None, entity: str | None = None) -> None:
    """Raise :class:`~pipeline.errors.InputError` naming an unknown watch topic or catalogue entity
    id, with the closest known ids ("unknown topic 'deir-ezzor'; did you mean deir-ez-zor?")."""
    topics = {t.id for t in tagger.watchlist.topics}
    if topic is not None and topic not in topics:
        raise InputError(f"search: unknown topic {topic!r}{suggest(topic, topics)}")
    if entity is not None and entity not in tagger.catalogue.entities:
        raise InputError(f"search: unknown entity {entity!r}{suggest(entity, tagger.catalogue.entities)}")


def search_documents(index: SearchIndex, query: str, *, tagger: Tagger, topic: str | None = None,
                     entity: str | None = None, source: str | None = None, since: str | None = None,
                     until: str | None = None, limit: int = 20, offset: int = 0,
                     highlight: tuple[str, str] = ("[", "]")) -> list[SearchHit]:
    """Ranked search of ``index`` for ``query`` (see the module docstring); the other arguments are
    ``SearchIndex.search``'s, after :func:`check_filters`."""
    check_filters(tagger, topic, entity)
    text, terms = query_terms(tagger, query) if query.strip() else ("", [])
    return index.search(text, topic=topic, entity=entity, source=source, since=since, until=until, limit=limit,
                        offset=offset, highlight=highlight, entity_terms=terms)
