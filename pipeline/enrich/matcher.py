"""Multi-pattern matching of catalogue aliases over normalised text.

Exact matching is one Aho-Corasick pass (pyahocorasick) over ``" " + text + " "`` with every
key stored as ``" " + key + " "``: because normalisation turns every non-alphanumeric
character into a space, the padding makes every hit a whole-word hit. Overlapping hits
are resolved *longest first*; look-alike blockers (``Deir Yassin``) take part in that
resolution and then produce nothing, so they shadow any shorter alias inside them.

Typo tolerance (Latin aliases of places and armed actors; never names under 6 letters):

* keys of at least 9 characters: edit distance ``k = min(2, len // 6)`` (1 for 9-11
  characters, 2 from 12). Candidates come from a second automaton over k+1 disjoint chunks
  of each key (pigeonhole: a string within k edits of the key contains one chunk exactly);
  each candidate is a run of whole words around the chunk, with articles folded to ``al``,
  verified with rapidfuzz's Levenshtein distance.
* one-word names of 6 to 8 letters (after an article): one edit, an adjacent transposition
  counting as one (OSA). Every such spelling is precomputed into a table, so the text costs
  one dictionary look-up per distinct word. These hits are marked ``needs_context``: the
  tagger keeps them only where the article supports the place (see ``Tagger``).

A fuzzy candidate must begin with the key's first letter, keep its digits and not overlap
an exact hit. Hits of aliases whose rule asks for regional support are marked
``needs_context`` too.
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_left, insort
from dataclasses import dataclass
from typing import NamedTuple

import ahocorasick
from rapidfuzz.distance import Levenshtein

from .aliases import ARTICLE_SET
from .catalogue import Catalogue, Variant

__all__ = ["RawMatch", "Matcher", "fuzzy_budget", "MIN_FUZZY_LEN", "SHORT_FUZZY_LEN"]

MIN_FUZZY_LEN = 9
SHORT_FUZZY_LEN = (6, 8)  # one-word names of these lengths get one edit (OSA) where context supports them
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
MIN_ANCHOR = 4  # shortest anchor chunk; 3-letter anchors ("tha", "was") hit too often to be cheap
_DIGITS = re.compile(r"\d+")


def fuzzy_budget(key: str, rare: int | None = None, rare_words: int = 2) -> int:
    """Edits tolerated for a key: none below 9 characters; else ``min(2, rare // 6, rare_words)``
    where ``rare`` is the number of letters in its distinctive words (not articles, not
    COMMON_WORDS), so that 'the border region' can never pass for 'tri border region', and
    two edits need two distinctive words."""
    if len(key) < MIN_FUZZY_LEN:
        return 0
    return min(2, (len(key) if rare is None else rare) // 6, rare_words)


def _rare(tokens: list[str]) -> list[str]:
    return [t for t in tokens if t not in ARTICLE_SET and t not in COMMON_WORDS]


def _canonical(tokens: list[str]) -> str:
    return " ".join("al" if t in ARTICLE_SET else t for t in tokens)


class RawMatch(NamedTuple):
    """A hit in *normalised* coordinates ``[start, end)``."""

    start: int
    end: int
    variant: Variant
    fuzzy: bool = False
    distance: int = 0
    needs_context: bool = False  # a short-name typo or a region-rule alias's typo: kept only with support


@dataclass(frozen=True)
class _FuzzyTarget:
    canonical: str
    ntokens: int
    budget: int
    variant: Variant


#: words too common in news to anchor a fuzzy candidate on (a typo search is anchored on the rare parts)
COMMON_WORDS = frozenset("""
syria syrian army arab forces force state states united islamic russian russia free new desert steppe republic
province governorate countryside city town of the and front department government regime international support group
national democratic people s units unit popular mobilization mobilisation coalition led us american iranian iran iraq
iraqi crossing border camp refugee oil gas field fields plant base airport military prison river valley sea east eastern
west western north northern south southern middle lions revolution revolutionary guard guards corps agency news
institute study war post highway road army brigade brigades office ministry president minister general region zone
area junction checkpoint crossroads pocket garrison deconfliction exclusion tri kingdom great federation sea coast
abu special aerospace commando commandos secretary colonel col gen human rights for
""".split())


def _chunks(key: str, parts: int) -> list[tuple[int, str]] | None:
    """``parts`` disjoint anchors of ``key``: substrings of its rare words (not articles or
    COMMON_WORDS), each >= MIN_ANCHOR characters, chosen to make the shortest anchor as long as possible."""
    words: list[tuple[int, str]] = []
    pos = 0
    for w in key.split(" "):
        if len(w) >= 3 and w not in ARTICLE_SET and w not in COMMON_WORDS:
            words.append((pos, w))
        pos += len(w) + 1
    best: list[tuple[int, str]] | None = None
    best_min = 0
    # how many anchors each word gives: try every distribution of `parts` over the words
    for counts in itertools.product(range(parts + 1), repeat=len(words)):
        if sum(counts) != parts:
            continue
        chunks: list[tuple[int, str]] = []
        for (offset, w), n in zip(words, counts, strict=True):
            if n == 0:
                continue
            size = len(w) // n
            if size < MIN_ANCHOR:
                break
            for i in range(n):
                end = len(w) if i == n - 1 else (i + 1) * size
                chunks.append((offset + i * size, w[i * size:end]))
        else:
            shortest = min(len(c) for _, c in chunks)
            if shortest > best_min:
                best, best_min = chunks, shortest
    return best


class _Spans:
    """Non-overlapping accepted spans, kept sorted for O(log n) overlap checks."""

    def __init__(self) -> None:
        self._spans: list[tuple[int, int]] = []

    def overlaps(self, start: int, end: int) -> bool:
        i = bisect_left(self._spans, (start, start))
        if i < len(self._spans) and self._spans[i][0] < end:
            return True
        return i > 0 and self._spans[i - 1][1] > start

    def add(self, start: int, end: int) -> None:
        insort(self._spans, (start, end))

    def extend(self, sorted_hits: list[tuple[int, int, int]]) -> None:
        """Add non-overlapping hits already sorted by start (only into an empty set)."""
        self._spans = [(h[0], h[1]) for h in sorted_hits]


class Matcher:
    """Finds catalogue aliases in normalised text. Read-only after construction (thread-safe)."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.variants = catalogue.variants
        self._exact = ahocorasick.Automaton()
        for idx, v in enumerate(self.variants):
            self._exact.add_word(f" {v.key} ", (idx, len(v.key) + 1))
        self._exact.make_automaton()
        self._targets: list[_FuzzyTarget] = []
        anchors: dict[str, list[tuple[int, int]]] = {}
        seen: set[str] = set()
        for v in catalogue.fuzzy_keys:
            tokens = v.key.split(" ")
            canon = _canonical(tokens)
            rare = _rare(tokens)
            budget = fuzzy_budget(canon, sum(len(t) for t in rare), len(rare))
            if budget == 0 or canon in seen:
                continue
            chunks = _chunks(canon, budget + 1)
            while chunks is None and budget > 1:
                budget -= 1
                chunks = _chunks(canon, budget + 1)
            if chunks is None:
                continue
            seen.add(canon)
            ti = len(self._targets)
            self._targets.append(_FuzzyTarget(canon, len(tokens), budget, v))
            for offset, chunk in chunks:
                anchors.setdefault(chunk, []).append((ti, offset))
        self._anchors = ahocorasick.Automaton()
        for chunk, refs in anchors.items():
            self._anchors.add_word(chunk, (len(chunk), tuple(refs)))
        if anchors:
            self._anchors.make_automaton()
        self._has_anchors = bool(anchors)
        self._short = _short_typo_table(catalogue)

    def _short_typos(self, norm: str, taken: _Spans) -> list[RawMatch]:
        """One-edit spellings of 6-8 letter place names: one look-up per distinct word of the text."""
        out: list[RawMatch] = []
        table = self._short
        lo, hi = SHORT_FUZZY_LEN
        for word in {w for w in norm.split(" ") if lo <= len(w) <= hi + 1 and w in table}:
            variant = table[word]
            for m in re.finditer(rf"(?:^|(?<= )){word}(?= |$)", norm):
                if not taken.overlaps(m.start(), m.end()):
                    taken.add(m.start(), m.end())
                    out.append(RawMatch(m.start(), m.end(), variant, fuzzy=True, distance=1, needs_context=True))
        return out

    def find(self, norm: str, fuzzy: bool = True) -> list[RawMatch]:
        """Every accepted hit (exact, then fuzzy), longest first, non-overlapping, in text order.

        Look-alike blockers are returned too (``variant.entity_id is None``); callers drop them.
        """
        hay = f" {norm} "
        # key " k " ends at hay index e; hay = " " + norm + " ", so k is norm[e - len(k) - 1 : e - 1]
        hits = [(e - span, e - 1, idx) for e, (idx, span) in self._exact.iter(hay)]
        taken = _Spans()
        variants = self.variants
        hits.sort()
        if all(hits[i][1] <= hits[i + 1][0] for i in range(len(hits) - 1)):  # the usual case: no overlap
            out = [RawMatch(start, end, variants[idx]) for start, end, idx in hits]
            taken.extend(hits)
        else:  # longest first, then leftmost
            out = []
            for start, end, idx in sorted(hits, key=lambda h: (h[0] - h[1], h[0])):
                if taken.overlaps(start, end):
                    continue
                taken.add(start, end)
                out.append(RawMatch(start, end, variants[idx]))
        if fuzzy and self._has_anchors:
            out.extend(self._fuzzy(norm, taken))
        if fuzzy and self._short:
            out.extend(self._short_typos(norm, taken))
        out.sort(key=lambda m: m.start)
        return out

    def _fuzzy(self, norm: str, taken: _Spans) -> list[RawMatch]:
        cands: dict[tuple[int, int], tuple[int, int]] = {}  # (start, end) -> (distance, target index)
        tried: set[tuple[int, int]] = set()
        for end_idx, (clen, refs) in self._anchors.iter(norm):
            pos = end_idx - clen + 1
            if taken.overlaps(pos, end_idx + 1):
                continue  # already read exactly: a typo candidate cannot overlap an exact hit
            for ti, offset in refs:
                target = self._targets[ti]
                lo = max(0, pos - offset - target.budget - 1)
                hi = min(len(norm) - 1, pos - offset + target.budget + 1)
                first = target.canonical[0]
                for s in range(lo, hi + 1):
                    if norm[s] != first or (s > 0 and norm[s - 1] != " ") or (s, ti) in tried:
                        continue
                    tried.add((s, ti))
                    found = self._verify(norm, s, target)
                    if found is not None:
                        end, dist = found
                        prev = cands.get((s, end))
                        if prev is None or dist < prev[0]:
                            cands[(s, end)] = (dist, ti)
        out: list[RawMatch] = []
        for (s, e), (dist, ti) in sorted(cands.items(), key=lambda c: (c[1][0], c[0][0] - c[0][1], c[0][0])):
            if taken.overlaps(s, e):
                continue
            taken.add(s, e)
            t = self._targets[ti]
            out.append(RawMatch(s, e, t.variant, fuzzy=True, distance=dist,
                                needs_context=t.variant.alias.context is not None))
        return out

    def _verify(self, norm: str, s: int, target: _FuzzyTarget) -> tuple[int, int] | None:
        canon = target.canonical
        window_end = s + len(canon) + 8
        words = norm[s:window_end].split(" ")
        complete = len(words) if window_end >= len(norm) else len(words) - 1
        if "" in words:  # a double space is punctuation: a name never continues across it
            complete = min(complete, words.index(""))
        best: tuple[int, int] | None = None
        for count in (target.ntokens - 1, target.ntokens, target.ntokens + 1):
            if count < 1 or count > complete:
                continue
            raw = " ".join(words[:count])
            cand = _canonical(words[:count])
            if _DIGITS.findall(cand) != _DIGITS.findall(canon):
                continue
            dist = Levenshtein.distance(cand, canon, score_cutoff=target.budget)
            if dist <= target.budget and (best is None or dist < best[1]):
                best = (s + len(raw), dist)
        return best


#: given names and words one edit from a short place name: never read as its typo ("Hassan" is not al-Hussan)
NOT_TYPOS = frozenset("""
hassan hasan hussein husain hossam ahmad ahmed mohammed muhammad mahmoud khaled khalid hamid hamed salim salem
karim rami sami samir nasser nasir jamal walid waleed majid saleh salih hadi hamad hamza hazem hisham ibrahim
ismail jalal kamel mazen mounir nabil rashid saeed said talal tariq yasser youssef yousef ziad
""".split())


def _one_edit(word: str) -> set[str]:
    """Every spelling one OSA edit from ``word`` that keeps its first letter."""
    head, tail = word[0], word[1:]
    out: set[str] = set()
    for i in range(len(tail) + 1):
        left, right = tail[:i], tail[i:]
        out.update(head + left + c + right for c in _LETTERS)  # insertion
        if right:
            out.add(head + left + right[1:])  # deletion
            out.update(head + left + c + right[1:] for c in _LETTERS)  # substitution
        if len(right) > 1:
            out.add(head + left + right[1] + right[0] + right[2:])  # adjacent transposition
    out.discard(word)
    return out


def _short_typo_table(catalogue: Catalogue) -> dict[str, Variant]:
    """misspelling -> variant, for one-word place names of 6-8 letters (after an article) whose
    governorate is known (the tagger needs it to check the article supports them)."""
    exact = {v.key for v in catalogue.variants}
    lo, hi = SHORT_FUZZY_LEN
    table: dict[str, Variant] = {}
    for v in catalogue.short_fuzzy_keys:
        entity = catalogue.entities[v.entity_id or ""]
        words = [t for t in v.key.split(" ") if t not in ARTICLE_SET]
        if entity.kind != "place" or entity.governorate is None or len(words) != 1:
            continue
        word = words[0]
        if not (lo <= len(word) <= hi and word.isalpha() and word.isascii()) or word in COMMON_WORDS:
            continue
        for spelling in _one_edit(word):
            if len(spelling) >= lo and spelling not in exact and spelling not in COMMON_WORDS \
                    and spelling not in NOT_TYPOS:
                table.setdefault(spelling, v)
    return table
