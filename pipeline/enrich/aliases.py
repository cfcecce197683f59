"""Alias expansion: the normalised keys one catalogue alias stands for.

* ``{a|b}`` alternation: ``"{Deir|Dayr} al-{Zor|Zawr}"`` is four spellings.
* Latin transliterations of the Arabic article (``al``, ``el``, ``ez`` ...) become every
  separate form the next word allows (``at Tanf``, ``ez Zor``, ``ash Sham``), the joined
  forms (``attanf``, ``ezzor``) and the form glued to the previous word (``deirezzor``).
* Arabic-script aliases get the attached prefixes و ب ف ك (``والتنف``, ``بدير الزور``,
  ``للتنف``), the article spaced off (``ال ميادين``) and multi-word names run together as
  they are often typed online (``ديرالزور``, ``ابوكمال``).
* A number next to letters is written both ways: ``T-2`` / ``T2``, ``Deir ez-Zor 24`` /
  ``DeirEzzor24``, ``الـ55`` / ``الـ 55``.
"""

from __future__ import annotations

import itertools
import re

from .normalize import normalize_key

__all__ = ["ARTICLES", "ARTICLE_SET", "ARABIC", "expand_alias", "is_arabic"]

#: separate forms of the Arabic definite article in transliteration
ARTICLES = ("al", "el", "ad", "adh", "az", "as", "ash", "at", "ath", "ar", "an", "ed", "ez", "es", "esh", "et",
            "er", "en", "ul")
ARTICLE_SET = frozenset(ARTICLES)
ARABIC = re.compile("[\u0600-\u06ff]")
_SUN_LETTERS = frozenset("tdrzsnl")
_ARABIC_PREFIXES = ("و", "ب", "ف", "ك", "وب", "وف")
_ALT = re.compile(r"\{([^{}]*)\}")
_LETTER_DIGIT = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")
_LETTER_SPACE_DIGIT = re.compile(r"(?<=[^\W\d_]) (?=\d)")
_DIGIT_SPACE_LETTER = re.compile(r"(?<=\d) (?=[^\W\d_])")
_MAX_JOIN_WORDS = 4  # run-together forms for names of up to this many words (2**3 spellings)


def is_arabic(key: str) -> bool:
    return bool(ARABIC.search(key))


def _alternatives(text: str) -> list[str]:
    parts = _ALT.split(text)
    # split gives [lit, alts, lit, alts, lit...]
    choices = [[p] if i % 2 == 0 else p.split("|") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def _article_spellings(written: str, nxt: str) -> set[str]:
    """Separate spellings of an article before ``nxt``: al/el/ul always, plus the assimilated forms
    the next word's sun letter allows (at-Tanf, ez-Zor, ash-Sham), plus the one written in the alias.
    Mismatched forms ("as Zawr", "Ar Zawr") are left to typo tolerance, which folds every article
    to ``al``; generating them would turn English "as"/"at"/"an" before a name into hits."""
    forms = {"al", "el", "ul", written}
    for digraph in ("sh", "th", "dh"):
        if nxt.startswith(digraph):
            forms |= {"a" + digraph, "e" + digraph}
            return forms
    if nxt[0] in _SUN_LETTERS:
        forms |= {"a" + nxt[0], "e" + nxt[0]}
    return forms


def _article_forms(tokens: list[str]) -> set[str]:
    """Every spelling of the article(s) in a normalised, tokenised Latin alias."""
    slots: list[list[list[str]]] = []  # per position: list of token-sequences it may become
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in ARTICLE_SET and i + 1 < len(tokens):
            nxt = tokens[i + 1]
            separate = _article_spellings(tok, nxt)
            forms: list[list[str]] = [[a, nxt] for a in sorted(separate)]
            joined = {"al" + nxt, "el" + nxt}
            if nxt[0] in _SUN_LETTERS:
                joined |= {"a" + nxt[0] + nxt, "e" + nxt[0] + nxt}
            forms += [[j] for j in sorted(joined)]
            forms += [["\x01" + j] for j in sorted(joined)]  # \x01 = glue to the previous token
            slots.append(forms)
            i += 2
        else:
            slots.append([[tok]])
            i += 1
    out: set[str] = set()
    for combo in itertools.islice(itertools.product(*slots), 5000):
        words: list[str] = []
        for seq in combo:
            for w in seq:
                if w.startswith("\x01"):
                    if words:
                        words[-1] += w[1:]
                    else:
                        words.append(w[1:])
                else:
                    words.append(w)
        out.add(" ".join(words))
    return out


def _arabic_forms(key: str) -> set[str]:
    """Arabic spellings of one normalised key: spaced article, words run together, attached prefixes."""
    words = key.split(" ")
    spellings = {key}
    if 1 < len(words) <= _MAX_JOIN_WORDS:  # every way of running adjacent words together
        for glue in itertools.product((" ", ""), repeat=len(words) - 1):
            spellings.add(words[0] + "".join(g + w for g, w in zip(glue, words[1:], strict=True)))
    for s in list(spellings):  # the article typed apart from its noun: "ال ميادين"
        spaced = re.sub(r"(?:^|(?<= ))ال(?=\w{3})", "ال ", s)
        if spaced != s:
            spellings.add(spaced)
    out = set(spellings)
    for s in spellings:
        for prefix in _ARABIC_PREFIXES:
            out.add(prefix + s)
        if s.startswith("ال") and not s.startswith("ال "):
            out.add("لل" + s[2:])
            out.add("ولل" + s[2:])
        elif not s.startswith("ل"):
            out.add("ل" + s)  # "to": لدير الزور (before the article it is لل, above)
            out.add("ول" + s)
    return out


def _digit_forms(keys: set[str]) -> set[str]:
    """Each key with letters and digits both run together and spaced apart ("t 2" / "t2")."""
    out = set(keys)
    for k in keys:
        if any(c.isdigit() for c in k):
            out.add(_LETTER_DIGIT.sub(" ", k))
            out.add(_LETTER_SPACE_DIGIT.sub("", k))  # "t2 station", "ديرالزور24"
            out.add(_DIGIT_SPACE_LETTER.sub("", k))  # "55km zone"
    return out


def expand_alias(text: str) -> tuple[set[str], set[str]]:
    """``(base_keys, all_keys)``: the normalised keys an alias stands for."""
    base: set[str] = set()
    out: set[str] = set()
    for alt in _alternatives(text):
        key = normalize_key(alt)
        if not key:
            continue
        base.add(key)
        out.add(key)
        out |= _arabic_forms(key) if is_arabic(key) else _article_forms(key.split(" "))
    return base, _digit_forms(out)
