"""Context rules: which candidate mentions of ambiguous names count, and as which entity.

A candidate is a raw alias hit in one field. It counts as its entity when

* its alias has no rule and it is not a typo that needs support (``RawMatch.needs_context``);
* or its rule holds (see :class:`~.catalogue.ContextRule`): no veto applies (``not_near``,
  ``not_next``, ``not_with``) and, for a positive rule, a ``near`` word is close, a
  ``cooccur`` entity is found, or its ``region`` supports it.

A region supports a mention when the article also mentions, surely (by an alias without a
rule, or one whose own rule held), another place inside the region's governorate, the
governorate itself or one of the region's entities, or when one of the region's words is
anywhere in the title or text. Typos of short names (and typos of region-rule names) need
the same support from the region of the place's governorate, or, where no region is
defined, another place of the same governorate; a short-name typo must also be written
with a capital letter, as names are.

A candidate whose rule rejects it names the alias's ``otherwise`` entity when it has one
(bare "al-Mayadeen" next to "correspondent" is the TV channel, not the city), else nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .catalogue import Catalogue, ContextRule, Region
from .matcher import RawMatch
from .normalize import Normalized, normalize_key

__all__ = ["Candidate", "RuleIndex", "resolve_context"]


@dataclass
class Candidate:
    field: str
    norm: Normalized
    raw: RawMatch
    start: int  # original offsets
    end: int
    text: str


def _word_pattern(words_in: list[str], anchor: str = "") -> re.Pattern[str] | None:
    """Whole normalised words; ``anchor`` "next" = right after a mention, "prev" = right before it."""
    words = sorted({normalize_key(w) for w in words_in if normalize_key(w)}, key=len, reverse=True)
    if not words:
        return None
    alternatives = "|".join(re.escape(w) for w in words)
    if anchor == "next":
        return re.compile(f"^ ?(?:{alternatives})(?= |$)")
    if anchor == "prev":
        return re.compile(f"(?:^| )(?:{alternatives}) ?$")
    return re.compile(f"(?:^| )(?:{alternatives})(?= |$)")


@dataclass
class _RulePatterns:
    near: re.Pattern[str] | None
    not_near: re.Pattern[str] | None
    not_prev: re.Pattern[str] | None
    not_next: re.Pattern[str] | None


class RuleIndex:
    """The compiled parts of every context rule and region of a catalogue (read-only)."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self._rules: dict[int, _RulePatterns] = {}
        for v in catalogue.variants:
            rule = v.alias.context
            if rule is not None and id(rule) not in self._rules:
                self._rules[id(rule)] = _RulePatterns(_word_pattern(rule.near), _word_pattern(rule.not_near),
                                                      _word_pattern(rule.not_prev, "prev"),
                                                      _word_pattern(rule.not_next, "next"))
        self.region_words = {r.id: _word_pattern(r.words) for r in catalogue.regions.values()}
        self.region_entities = {r.id: frozenset(r.entities) for r in catalogue.regions.values()}
        self.governorate_of = {e.id: e.governorate for e in catalogue.entities.values()}
        self.region_by_governorate = {r.governorate: r for r in catalogue.regions.values()}

    def patterns(self, rule: ContextRule) -> _RulePatterns:
        return self._rules[id(rule)]


@dataclass
class _Article:
    """What one tag() call knows while it resolves context."""

    index: RuleIndex
    norms: list[Normalized]
    support: set[str]
    _words: dict[str, bool] = field(default_factory=dict)

    def has_region_words(self, region: Region) -> bool:
        found = self._words.get(region.id)
        if found is None:
            pattern = self.index.region_words.get(region.id)
            found = pattern is not None and any(pattern.search(n.text) for n in self.norms)
            self._words[region.id] = found
        return found

    def governorate_supported(self, governorate: str, exclude: str) -> bool:
        """Another sure mention inside ``governorate`` (or of it), its region's entities or words."""
        region = self.index.region_by_governorate.get(governorate)
        extra = self.index.region_entities.get(region.id, frozenset()) if region else frozenset()
        for eid in self.support:
            if eid != exclude and (eid == governorate or self.index.governorate_of.get(eid) == governorate
                                   or eid in extra):
                return True
        return region is not None and self.has_region_words(region)


def _vetoed(c: Candidate, rule: ContextRule, pats: _RulePatterns, support: set[str]) -> bool:
    if any(ref in support for ref in rule.not_with):
        return True
    norm = c.norm.text
    before = norm[max(0, c.raw.start - rule.within):c.raw.start]
    after = norm[c.raw.end:c.raw.end + rule.within]
    if pats.not_near is not None and (pats.not_near.search(before) or pats.not_near.search(after)):
        return True
    if pats.not_prev is not None and pats.not_prev.search(before):
        return True
    return pats.not_next is not None and bool(pats.not_next.search(after))


def _supported(c: Candidate, rule: ContextRule, pats: _RulePatterns, art: _Article, eid: str) -> bool:
    if any(ref in art.support for ref in rule.cooccur):
        return True
    if pats.near is not None:
        norm = c.norm.text
        if pats.near.search(norm[max(0, c.raw.start - rule.within):c.raw.start]) or \
                pats.near.search(norm[c.raw.end:c.raw.end + rule.within]):
            return True
    if rule.region is not None:
        return art.governorate_supported(art.index.catalogue.regions[rule.region].governorate, eid)
    return False


def _decide(c: Candidate, art: _Article) -> str | None:
    """The entity ``c`` names in this article, or None."""
    alias = c.raw.variant.alias
    eid = c.raw.variant.entity_id
    assert eid is not None
    rule = alias.context
    if rule is not None:
        pats = art.index.patterns(rule)
        if _vetoed(c, rule, pats, art.support) or (rule.positive and not _supported(c, rule, pats, art, eid)):
            return alias.otherwise
    if c.raw.needs_context:
        governorate = art.index.governorate_of.get(eid)
        if governorate is None or not art.governorate_supported(governorate, eid):
            return None
        if c.raw.distance and not c.text[:1].isupper():
            return None
    return eid


def _needs_support(c: Candidate) -> bool:
    rule = c.raw.variant.alias.context
    return c.raw.needs_context or (rule is not None and rule.region is not None)


def resolve_context(index: RuleIndex, cands: list[Candidate], norms: list[Normalized]) -> list[tuple[Candidate, str]]:
    """``(candidate, entity id)`` for every candidate that counts, in the candidates' order.

    Three passes: mentions without a rule are sure; then rules that look only at words and at
    the sure entities; then regional support, which may lean on what the second pass accepted.
    """
    sure = {c.raw.variant.entity_id for c in cands
            if c.raw.variant.alias.context is None and not c.raw.needs_context}
    art = _Article(index, norms, {e for e in sure if e is not None})
    decided: dict[int, str | None] = {}
    for i, c in enumerate(cands):
        if c.raw.variant.alias.context is None and not c.raw.needs_context:
            decided[i] = c.raw.variant.entity_id
    for i, c in enumerate(cands):
        if i not in decided and not _needs_support(c):
            decided[i] = _decide(c, art)
    art.support |= {e for e in decided.values() if e is not None}
    for i, c in enumerate(cands):
        if i not in decided:
            decided[i] = _decide(c, art)
    return [(c, eid) for i, c in enumerate(cands) if (eid := decided[i]) is not None]
