"""Story fingerprints: recognising syndicated copies of one story.

A *story* is one piece of reporting; syndicated copies (the same wire text on other
URLs, lightly edited) belong to the story of the first copy seen. We compare texts by
the Jaccard similarity of their word 4-shingles, estimated with a bottom-k MinHash
sketch (the ``SKETCH_SIZE`` smallest 64-bit shingle hashes): for texts shorter than
``SKETCH_SIZE`` shingles the sketch is the whole set and the estimate is exact.

Two texts are the same story when the estimated Jaccard similarity is at least
``SAME_STORY_THRESHOLD`` (0.5). Exact copies score 1.0; a copy with a different lead
paragraph or an appended footer typically scores 0.6-0.9; two different reports on the
same topic share names but few 4-word sequences and score well under 0.2.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence

__all__ = ["SAME_STORY_THRESHOLD", "SHINGLE_WORDS", "SKETCH_SIZE", "StoryIndex", "sketch", "similarity", "tokens"]

SAME_STORY_THRESHOLD = 0.5
SHINGLE_WORDS = 4
SKETCH_SIZE = 128

_WORD = re.compile(r"\w+", re.UNICODE)


def tokens(text: str) -> list[str]:
    """Lower-cased, accent-folded words of ``text`` (punctuation and spacing ignored)."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return _WORD.findall(folded)


def _hash64(s: str) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "big")


def _shingles(words: Sequence[str]) -> Iterable[str]:
    if len(words) < SHINGLE_WORDS:
        if words:
            yield " ".join(words)
        return
    for i in range(len(words) - SHINGLE_WORDS + 1):
        yield " ".join(words[i : i + SHINGLE_WORDS])


def sketch(text: str) -> list[int]:
    """The bottom-k MinHash sketch of ``text``: sorted, at most ``SKETCH_SIZE`` values.

    An empty text has an empty sketch, which is similar to nothing.
    """
    hashes = {_hash64(s) for s in _shingles(tokens(text))}
    return sorted(hashes)[:SKETCH_SIZE]


def similarity(a: Sequence[int], b: Sequence[int]) -> float:
    """Estimated Jaccard similarity of the texts behind two sketches (0.0 to 1.0).

    Bottom-k estimator: of the k smallest hashes of the union, the fraction present in
    both sketches. Exact when both texts have fewer than k shingles.
    """
    if not a or not b:
        return 0.0
    sa, sb = set(a), set(b)
    k = min(SKETCH_SIZE, len(sa | sb))
    union_bottom = sorted(sa | sb)[:k]
    both = sum(1 for h in union_bottom if h in sa and h in sb)
    return both / k


class StoryIndex:
    """In-memory lookup of recent story sketches: hash value -> stories whose sketch holds it.

    Candidates are the stories sharing at least ``MIN_SHARED`` sketch values with the query
    (or one, for very short texts); only those are scored with :func:`similarity`, so a
    lookup costs one dict probe per sketch value instead of a scan of every story.
    """

    MIN_SHARED = 4

    def __init__(self) -> None:
        self._by_hash: dict[int, list[str]] = {}
        self._stories: dict[str, tuple[float, list[int]]] = {}

    def __len__(self) -> int:
        return len(self._stories)

    def add(self, story_id: str, sk: Sequence[int], created_at: float) -> None:
        if story_id in self._stories:
            return
        self._stories[story_id] = (created_at, list(sk))
        for h in sk:
            self._by_hash.setdefault(h, []).append(story_id)

    def best_match(self, sk: Sequence[int], since: float) -> tuple[str, float]:
        """(story id, similarity) of the most similar story created at or after ``since``; ("", 0.0) if none."""
        shared: dict[str, int] = {}
        for h in sk:
            for story_id in self._by_hash.get(h, ()):
                shared[story_id] = shared.get(story_id, 0) + 1
        need = min(self.MIN_SHARED, max(1, len(sk) // 2))
        best_id, best = "", 0.0
        for story_id, n in shared.items():
            created_at, other = self._stories[story_id]
            if n < need or created_at < since:
                continue
            sim = similarity(sk, other)
            if sim > best or (sim == best and best_id and story_id < best_id):
                best_id, best = story_id, sim
        return best_id, best
