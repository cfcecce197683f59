"""The tagger: catalogue + matcher + watch topics behind one ``tag(text, title)`` call.

Build it once per process with :meth:`Tagger.load` (about a second: it expands every
alias and builds two Aho-Corasick automata). ``tag()`` keeps no state between calls, so
one Tagger may be shared by threads. A Tagger pickles as its construction arguments and
is rebuilt on unpickling (for process pools).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from ..config import Watchlist
from ..models import EntityHit, Mention, TagResult
from .catalogue import Catalogue, Variant, default_catalogue_path, load_catalogue
from .context import Candidate as _Candidate
from .context import RuleIndex, resolve_context
from .matcher import Matcher
from .normalize import Normalized, normalize
from .overlay import default_overlay_path
from .topics import check_watchlist, evaluate_topics, load_default_watchlist

__all__ = ["Tagger"]

log = logging.getLogger(__name__)

_CACHE: dict[tuple[str, tuple[int, int], str, tuple[int, int], str], Tagger] = {}
_CACHE_LOCK = threading.Lock()


def _letters(s: str) -> str:
    return "".join(c for c in s if c.isalnum())


class Tagger:
    """Finds catalogue entities and fires watch topics in one article."""

    def __init__(self, catalogue: Catalogue, watchlist: Watchlist) -> None:
        check_watchlist(watchlist, catalogue)
        self.catalogue = catalogue
        self.watchlist = watchlist
        self.matcher = Matcher(catalogue)
        self.rules = RuleIndex(catalogue)

    @classmethod
    def load(cls, catalogue_path: Path | None = None, watchlist: Watchlist | None = None,
             overlay: Path | None = None) -> Tagger:
        """Load the catalogue (default ``seeds/catalogue.yaml``), the user overlay (default
        ``config/catalogue-overlay.yaml``, see :mod:`.overlay`; absent = none) and the watchlist
        (default ``config/watchlist.yaml``).

        Memoised per process on (catalogue file, overlay file, their sizes and mtimes, watchlist): a
        Tagger is immutable and thread-safe, so every pass of a long-running ``run`` shares one instead
        of rebuilding it. Editing either file (or passing another watchlist) builds a new one.
        """
        path = Path(catalogue_path or default_catalogue_path()).resolve()
        overlay_path = Path(overlay or default_overlay_path()).resolve()
        wl = watchlist if watchlist is not None else load_default_watchlist()
        key = (str(path), _stamp(path), str(overlay_path), _stamp(overlay_path), wl.model_dump_json())
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
        if cached is not None:
            return cached
        catalogue = load_catalogue(path, overlay=overlay_path)
        tagger = cls(catalogue, wl)
        log.info("tagger loaded catalogue=%s overlay=%s entities=%d keys=%d topics=%s", catalogue.path,
                 catalogue.overlay, len(catalogue), len(catalogue.variants), [t.id for t in tagger.watchlist.topics])
        with _CACHE_LOCK:
            _CACHE.clear()  # keep only the newest: an edited catalogue must not pin old ones in memory
            _CACHE[key] = tagger
        return tagger

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.catalogue.path, self.watchlist.model_dump(), self.catalogue.overlay))

    # -- tagging ---------------------------------------------------------------------------

    def tag(self, text: str, title: str = "") -> TagResult:
        """Entities (with mentions at offsets into the original ``title``/``text``) and fired topics."""
        cands: list[_Candidate] = []
        norms: list[Normalized] = []
        for field_name, value in (("title", title), ("text", text)):
            if not value:
                continue
            norm = normalize(value)
            norms.append(norm)
            for raw in self.matcher.find(norm.text):
                if raw.variant.entity_id is None:
                    continue  # a look-alike blocker
                start, end = norm.span(raw.start, raw.end)
                original = value[start:end]
                if not self._case_ok(raw.variant, original):
                    continue
                cands.append(_Candidate(field_name, norm, raw, start, end, original))
        accepted = resolve_context(self.rules, cands, norms)
        hits = self._entity_hits(accepted)
        return TagResult(entities=hits, topics=evaluate_topics(self.watchlist, hits, self.catalogue))

    @staticmethod
    def _case_ok(variant: Variant, original: str) -> bool:
        case = variant.alias.case
        if case == "any":
            return True
        if case == "upper":
            return original.isupper()
        return _letters(original) == _letters(variant.alias.text)

    def _entity_hits(self, accepted: list[tuple[_Candidate, str]]) -> list[EntityHit]:
        by_id: dict[str, EntityHit] = {}
        for c, eid in accepted:  # title candidates first, then text, each in order
            hit = by_id.get(eid)
            if hit is None:
                e = self.catalogue.entities[eid]
                hit = EntityHit(id=e.id, type=e.type, kind=e.kind, name=e.name, lat=e.lat, lon=e.lon,
                                governorate=e.governorate)
                by_id[eid] = hit
            hit.mentions.append(Mention(entity_id=eid, start=c.start, end=c.end, text=c.text,
                                        variant=c.raw.variant.key, field=c.field, fuzzy=c.raw.fuzzy))
        return list(by_id.values())


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (-1, -1)  # load_catalogue reports a missing catalogue; a missing overlay is no overlay
    return (st.st_size, st.st_mtime_ns)


def _rebuild(catalogue_path: Path | None, watchlist: dict[str, Any], overlay: Path | None = None) -> Tagger:
    return Tagger.load(catalogue_path, Watchlist.model_validate(watchlist), overlay)
