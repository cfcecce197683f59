"""The tagger: catalogue + matcher + watch topics behind one ``tag(text, title)`` call.

Build it once per process with :meth:`Tagger.load` (about a second: it expands every
alias and builds two Aho-Corasick automata). ``tag()`` keeps no state between calls, so
one Tagger may be shared by threads. A Tagger pickles as its construction arguments and
is rebuilt on unpickling (for process pools).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Watchlist
from ..models import EntityHit, Mention, TagResult
from .catalogue import Catalogue, Variant, default_catalogue_path, load_catalogue
from .matcher import Matcher, RawMatch
from .normalize import Normalized, normalize, normalize_key
from .topics import check_watchlist, evaluate_topics, load_default_watchlist

__all__ = ["Tagger"]

log = logging.getLogger(__name__)

_CACHE: dict[tuple[str, tuple[int, int], str], Tagger] = {}
_CACHE_LOCK = threading.Lock()


@dataclass
class _Candidate:
    field: str
    norm: Normalized
    raw: RawMatch
    start: int  # original offsets
    end: int
    text: str


def _letters(s: str) -> str:
    return "".join(c for c in s if c.isalnum())


def _word_pattern(words_in: list[str]) -> re.Pattern[str] | None:
    words = sorted({normalize_key(w) for w in words_in if normalize_key(w)}, key=len, reverse=True)
    if not words:
        return None
    return re.compile("(?:^| )(?:" + "|".join(re.escape(w) for w in words) + ")(?= |$)")


class Tagger:
    """Finds catalogue entities and fires watch topics in one article."""

    def __init__(self, catalogue: Catalogue, watchlist: Watchlist) -> None:
        check_watchlist(watchlist, catalogue)
        self.catalogue = catalogue
        self.watchlist = watchlist
        self.matcher = Matcher(catalogue)
        self._near: dict[int, tuple[re.Pattern[str] | None, re.Pattern[str] | None]] = {}
        for v in catalogue.variants:
            rule = v.alias.context
            if rule is not None and id(rule) not in self._near:
                self._near[id(rule)] = (_word_pattern(rule.near), _word_pattern(rule.not_near))

    @classmethod
    def load(cls, catalogue_path: Path | None = None, watchlist: Watchlist | None = None) -> Tagger:
        """Load the catalogue (default ``seeds/catalogue.yaml``) and watchlist (default ``config/watchlist.yaml``).

        Memoised per process on (catalogue file, its size and mtime, watchlist): a Tagger is immutable and
        thread-safe, so every pass of a long-running ``run`` shares one instead of rebuilding it (~0.15 s).
        Editing the catalogue file (or passing another watchlist) builds a new one.
        """
        path = Path(catalogue_path or default_catalogue_path()).resolve()
        wl = watchlist if watchlist is not None else load_default_watchlist()
        try:
            st = path.stat()
            stamp = (st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = (-1, -1)  # load_catalogue reports the missing file
        key = (str(path), stamp, wl.model_dump_json())
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
        if cached is not None:
            return cached
        catalogue = load_catalogue(path)
        tagger = cls(catalogue, wl)
        log.info("tagger loaded catalogue=%s entities=%d keys=%d topics=%s", catalogue.path, len(catalogue),
                 len(catalogue.variants), [t.id for t in tagger.watchlist.topics])
        with _CACHE_LOCK:
            _CACHE.clear()  # keep only the newest: an edited catalogue must not pin old ones in memory
            _CACHE[key] = tagger
        return tagger

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.catalogue.path, self.watchlist.model_dump()))

    # -- tagging ---------------------------------------------------------------------------

    def tag(self, text: str, title: str = "") -> TagResult:
        """Entities (with mentions at offsets into the original ``title``/``text``) and fired topics."""
        cands: list[_Candidate] = []
        for field_name, value in (("title", title), ("text", text)):
            if not value:
                continue
            norm = normalize(value)
            for raw in self.matcher.find(norm.text):
                if raw.variant.entity_id is None:
                    continue  # a look-alike blocker
                start, end = norm.span(raw.start, raw.end)
                original = value[start:end]
                if not self._case_ok(raw.variant, original):
                    continue
                cands.append(_Candidate(field_name, norm, raw, start, end, original))
        sure = {c.raw.variant.entity_id for c in cands if c.raw.variant.alias.context is None}
        accepted = [c for c in cands if c.raw.variant.alias.context is None or self._context_ok(c, sure)]
        hits = self._entity_hits(accepted)
        return TagResult(entities=hits, topics=evaluate_topics(self.watchlist, hits))

    @staticmethod
    def _case_ok(variant: Variant, original: str) -> bool:
        case = variant.alias.case
        if case == "any":
            return True
        if case == "upper":
            return original.isupper()
        return _letters(original) == _letters(variant.alias.text)

    def _context_ok(self, cand: _Candidate, sure: set[str | None]) -> bool:
        """Apply the alias's ContextRule (see catalogue.ContextRule) to one candidate mention."""
        rule = cand.raw.variant.alias.context
        assert rule is not None
        near, not_near = self._near[id(rule)]
        norm = cand.norm.text
        before = norm[max(0, cand.raw.start - rule.within):cand.raw.start]
        after = norm[cand.raw.end:cand.raw.end + rule.within]
        if any(ref in sure for ref in rule.not_with):
            return False
        if not_near is not None and (not_near.search(before) or not_near.search(after)):
            return False
        if not rule.near and not rule.cooccur:
            return True  # only vetoes
        if any(ref in sure for ref in rule.cooccur):
            return True
        return near is not None and bool(near.search(before) or near.search(after))

    def _entity_hits(self, accepted: list[_Candidate]) -> list[EntityHit]:
        by_id: dict[str, EntityHit] = {}
        for c in accepted:  # title candidates first, then text, each in order
            eid = c.raw.variant.entity_id
            assert eid is not None
            hit = by_id.get(eid)
            if hit is None:
                e = self.catalogue.entities[eid]
                hit = EntityHit(id=e.id, type=e.type, kind=e.kind, name=e.name, lat=e.lat, lon=e.lon,
                                governorate=e.governorate)
                by_id[eid] = hit
            hit.mentions.append(Mention(entity_id=eid, start=c.start, end=c.end, text=c.text,
                                        variant=c.raw.variant.key, field=c.field, fuzzy=c.raw.fuzzy))
        return list(by_id.values())


def _rebuild(catalogue_path: Path | None, watchlist: dict[str, Any]) -> Tagger:
    return Tagger.load(catalogue_path, Watchlist.model_validate(watchlist))
