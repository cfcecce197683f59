"""Text normalisation for gazetteer matching, with a map back to original offsets.

Contract: :func:`normalize` turns any text into a *normalised* string in which

* letters are lower-case and stripped of diacritics (``Ḥajīn`` -> ``hajin``);
* Arabic letter variants are folded (alef forms -> ``ا``, taa marbuta -> ``ه``,
  alef maqsura -> ``ي``, hamza carriers -> their base), tatweel and harakat removed;
* every character that is not a letter or digit is an ASCII space; runs of the separators
  that can sit inside a name (every kind of space, hyphen, dash and apostrophe) collapse
  to one space, while other punctuation (``,`` ``.`` ``(``) stays one space each, so a
  name never matches across it ("Abu, Kamal" is not Abu Kamal).

It returns a :class:`Normalized` whose :meth:`Normalized.to_original` maps an offset
in the normalised string back to the original string, so mentions can report offsets
into exactly what the caller passed in. The hot path is ``str.translate`` with a
precomputed table plus two C-level regex passes; no per-character Python loop runs
over the text (only over the runs of deleted characters, which are few).
:func:`normalize_key` is the same transformation for catalogue aliases.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate

__all__ = ["Normalized", "normalize", "normalize_key", "DELETE"]

#: Placeholder for characters that are dropped (combining marks, tatweel, zero-width).
DELETE = "\x00"
#: Placeholder for punctuation that cannot be inside a name; it ends up as a plain space.
BREAK = "\x01"
# separators that can occur inside a name ("al-Tanf", "Mar'a", "Deir ez - Zor")
_JOINERS = "'`\u00b4\u2018\u2019\u201b\u2032\u02bc\u2212\u2010\u2011\u2012\u2013\u2014\u2015\u2043\ufe58\ufe63\uff0d"

_ARABIC_FOLD = {
    "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ٲ": "ا", "ٳ": "ا",
    "ة": "ه", "ى": "ي", "ې": "ي", "ی": "ي", "ک": "ك", "ؤ": "و", "ئ": "ي",
}
# ayin/hamza modifier letters used in transliteration (ʿAyn, Daʿesh) disappear
_DELETED_LETTERS = "ʿʾʻ\u0640\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad"
# characters whose decomposition is not a plain base + marks
_SPECIAL = {"ı": "i", "ł": "l", "ø": "o", "đ": "d", "ð": "d", "ß": "s", "æ": "a", "œ": "o", "þ": "t", "ħ": "h"}


def _build_table(limit: int = 0x3000) -> dict[int, str]:
    table: dict[int, str] = {}
    for cp in range(limit):
        ch = chr(cp)
        out: str
        if ch in _DELETED_LETTERS:
            out = DELETE
        elif ch in _ARABIC_FOLD:
            out = _ARABIC_FOLD[ch]
        elif unicodedata.category(ch) == "Mn":  # combining marks, Arabic harakat
            out = DELETE
        elif ch.isdigit() and unicodedata.digit(ch, None) is not None:
            out = str(unicodedata.digit(ch))
        elif ch.isalpha():
            low = ch.lower()
            if low in _SPECIAL:
                out = _SPECIAL[low]
            else:
                base = "".join(c for c in unicodedata.normalize("NFKD", low) if unicodedata.category(c) != "Mn")
                out = base if len(base) == 1 and base.isalpha() else (low if len(low) == 1 else ch)
                out = _SPECIAL.get(out, out)
        elif ch.isalnum():
            out = ch
        elif ch.isspace() or ch in _JOINERS or unicodedata.category(ch) == "Pd":
            out = " "  # may sit inside a name: runs of these collapse to one space
        else:
            out = BREAK  # punctuation ends a name: becomes a space, but never collapses into a run
        if out != ch:
            table[cp] = out
    return table


_TABLE = _build_table()
_DELETE_RUNS = re.compile(DELETE + "+")
_SPACE_RUNS = re.compile(" {2,}")
_HIGH = re.compile("[^\x00-\u2fff]")


@dataclass(frozen=True)
class _OffsetMap:
    """Maps offsets of a string with runs deleted back to the string before deletion."""

    keys: tuple[int, ...] = ()  # normalised offset at which each deleted run sat
    shifts: tuple[int, ...] = ()  # total characters deleted up to and including that run

    def __call__(self, j: int) -> int:
        if not self.keys:
            return j
        i = bisect_right(self.keys, j)
        return j + (self.shifts[i - 1] if i else 0)


def _squeeze(s: str, pattern: re.Pattern[str], keep: str) -> tuple[str, _OffsetMap]:
    """Replace each run matched by ``pattern`` with ``keep``, recording the deletions."""
    spans = [m.span() for m in pattern.finditer(s)]
    if not spans:
        return s, _OffsetMap()
    k = len(keep)
    shifts = tuple(accumulate(end - start - k for start, end in spans))
    # a run deleted at original offset start+k sits at normalised offset start+k - (deleted before it)
    keys = tuple(start + k - (shift - (end - start - k)) for (start, end), shift in zip(spans, shifts, strict=True))
    return pattern.sub(keep, s), _OffsetMap(keys, shifts)


@dataclass(frozen=True)
class Normalized:
    """A normalised text and the way back to the original offsets."""

    original: str
    text: str
    _first: _OffsetMap
    _second: _OffsetMap

    def to_original(self, j: int) -> int:
        """Original offset of the character at normalised offset ``j``."""
        return self._first(self._second(j))

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original ``[start, end)`` of the normalised ``[start, end)`` (``end > start``)."""
        if not self._first.keys and not self._second.keys:
            return start, end
        return self.to_original(start), self.to_original(end - 1) + 1


def _fold_high(text: str) -> str:
    """Characters beyond the table (rare: CJK, emoji, math letters): letters kept, the rest a space."""
    return _HIGH.sub(lambda m: m.group() if m.group().isalnum() else " ", text)


def normalize(text: str) -> Normalized:
    """Normalise ``text`` for matching; see the module docstring for exactly what changes."""
    folded = text.translate(_TABLE)
    if _HIGH.search(folded):
        folded = _fold_high(folded)
    if DELETE in folded:
        step1, first = _squeeze(folded, _DELETE_RUNS, "")
    else:
        step1, first = folded, _OffsetMap()
    step2, second = _squeeze(step1, _SPACE_RUNS, " ")
    if BREAK in step2:
        step2 = step2.replace(BREAK, " ")
    return Normalized(text, step2, first, second)


def normalize_key(text: str) -> str:
    """Normalise a catalogue alias: same folding as :func:`normalize`, trimmed."""
    return normalize(text).text.strip()
