"""trafilatura's byline heuristic, ``trafilatura.metadata.extract_author``, in one pass over the tree.

trafilatura finds an author in the page body by deep-copying the whole tree, pruning comment
sections, dates and figures from the copy, then running three XPath expressions in turn and
taking the first match whose text is a plausible name. Each of those four whole-document
expressions calls back into Python's ``re`` for every element (EXSLT ``re:test``): about 7 ms
per page, a third of an extraction, on the pages that need it (half of the benchmark pages
have no author meta tag).

:func:`extract_author` gives the same answer (checked against trafilatura on every benchmark
page and on constructed cases, see ``tests/test_authors.py``) from one walk over the original
tree in Python: it evaluates the same predicates on each element's attributes, keeps the
candidates that would survive the pruning, and only copies and prunes the small subtree of a
candidate whose text is read. About 1 ms per page. The predicates mirror trafilatura 2.3's
``AUTHOR_XPATHS`` and ``AUTHOR_DISCARD_XPATHS``; trafilatura is pinned, and the equivalence
test fails when an upgrade changes them.
"""

from __future__ import annotations

import re
from copy import deepcopy
from typing import Any

from lxml import etree
from lxml.html import HtmlElement
from trafilatura.htmlprocessing import delete_element
from trafilatura.metadata import normalize_authors
from trafilatura.utils import trim

__all__ = ["extract_author"]

_LEN_LIMIT = 120

# AUTHOR_DISCARD_XPATHS[0]: a/div/section/span with one of these
_DISCARD_TAGS = frozenset(("a", "div", "section", "span"))
_DISCARD_EXACT_ID = frozenset(("comments",))
_DISCARD_EXACT_CLASS = frozenset(("comments", "title", "date"))
_DISCARD_ID = re.compile(r"^comments|comment-?list|ProductReviews")
_DISCARD_CLASS = re.compile(r"^[Cc]omments|commentlist|comments-list|sidebar|is-hidden|quote|embedly-instagram|"
                            r"article-(?:share|support)|print|category|meta-date|meta-reviewer")
# AUTHOR_DISCARD_XPATHS[1]: //time|//figure
_DISCARD_ALWAYS = frozenset(("time", "figure"))

# AUTHOR_XPATHS[0]
_TAGS_0 = frozenset(("a", "address", "div", "link", "p", "span", "strong"))
_CLASS_0 = re.compile(r"author-?name|AuthorName|authorName")
_TESTID_0 = frozenset(("AuthorCard", "AuthorURL"))
# AUTHOR_XPATHS[1]
_TAGS_1 = frozenset(("a", "div", "h3", "h4", "p", "span"))
_EXACT_CLASS_1 = frozenset(("byline", "username", "byl", "BBL"))
_ID_1 = re.compile(r"author|zuozhe|bianji|xiaobian")
_CLASS_1 = re.compile(r"author|channel-name|zuozhe|bianji|xiaobian|submitted-by|posted-by|journalist-name")
# AUTHOR_XPATHS[2]
_ID_2 = re.compile(r"[Aa]uthor")
_CLASS_2 = re.compile(r"[Aa]uthor|screenname|writer|[Bb]yline")

# A cheap first test that every element the predicates above can select passes: one search for
# the union of the class patterns (resp. id patterns) and a lookup for the exact values, instead of
# four (three) searches per element.
_ANY_CLASS = re.compile("|".join(p.pattern for p in (_DISCARD_CLASS, _CLASS_0, _CLASS_1, _CLASS_2)))
_ANY_EXACT_CLASS = _DISCARD_EXACT_CLASS | _EXACT_CLASS_1 | {"author"}
_ANY_ID = re.compile("|".join(p.pattern for p in (_DISCARD_ID, _ID_1, _ID_2)))
_ANY_EXACT_ID = _DISCARD_EXACT_ID | {"author"}
_NAMED_TAGS = frozenset(("author", "time", "figure", "rel"))
_REL_ME = etree.XPath("//*[rel='me']")


def _discarded(el: Any, tag: str) -> bool:
    """Would AUTHOR_DISCARD_XPATHS remove ``el`` itself?"""
    if tag in _DISCARD_ALWAYS:
        return True
    if tag not in _DISCARD_TAGS:
        return False
    ident = el.get("id") or ""
    cls = el.get("class") or ""
    return (ident in _DISCARD_EXACT_ID or cls in _DISCARD_EXACT_CLASS
            or (bool(ident) and _DISCARD_ID.search(ident) is not None)
            or (bool(cls) and _DISCARD_CLASS.search(cls) is not None)
            or "Figure" in (el.get("data-component") or ""))


def _expression(el: Any, tag: str, rel_me: set[Any]) -> int:
    """The first of the three AUTHOR_XPATHS that selects ``el`` (0, 1, 2), or -1."""
    cls = el.get("class")
    ident = el.get("id")
    itemprop = el.get("itemprop") or ""
    if tag == "author":
        return 0
    if tag in _TAGS_0 and (
        el.get("rel") == "author" or ident == "author" or cls == "author" or itemprop == "author name"
        or el.get("data-testid") in _TESTID_0
        or (cls is not None and _CLASS_0.search(cls) is not None)
        or el in rel_me
    ):
        return 0
    author_prop = "author" in itemprop
    if tag in _TAGS_1 and (
        cls in _EXACT_CLASS_1 or author_prop
        or (ident is not None and _ID_1.search(ident) is not None)
        or (cls is not None and _CLASS_1.search(cls) is not None)
    ):
        return 1
    if (author_prop or "Byline" in (el.get("data-component") or "")
            or (ident is not None and _ID_2.search(ident) is not None)
            or (cls is not None and _CLASS_2.search(cls) is not None)):
        return 2
    return -1


def _pruned_text(el: HtmlElement) -> str:
    """``el``'s text as trafilatura reads it from its pruned copy of the tree."""
    sub = deepcopy(el)
    sub.tail = None
    # the same deletions in the same order as prune_unwanted_nodes: first expression, then //time|//figure
    for node in [n for n in sub.iterdescendants() if isinstance(n.tag, str) and n.tag not in _DISCARD_ALWAYS
                 and _discarded(n, n.tag)]:
        delete_element(node)
    for node in list(sub.iterdescendants("time", "figure")):
        delete_element(node)
    return trim(" ".join(sub.itertext()))


def _may_match(el: Any, tag: str) -> bool:
    """False only for elements that neither AUTHOR_XPATHS nor AUTHOR_DISCARD_XPATHS can select."""
    if tag in _NAMED_TAGS:
        return True
    cls = el.get("class")
    if cls is not None and (cls in _ANY_EXACT_CLASS or _ANY_CLASS.search(cls) is not None):
        return True
    ident = el.get("id")
    if ident is not None and (ident in _ANY_EXACT_ID or _ANY_ID.search(ident) is not None):
        return True
    return ("author" in (el.get("itemprop") or "") or el.get("rel") == "author"
            or el.get("data-testid") in _TESTID_0 or el.get("data-component") is not None)


def _scan(tree: HtmlElement, rel_me: set[Any]) -> tuple[tuple[list[Any], list[Any], list[Any]], set[Any], bool]:
    """Candidates of each author expression, the roots of discarded sections, and whether a <rel> was seen."""
    candidates: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
    discarded: set[Any] = set()
    saw_rel = False
    for el in tree.iter():
        tag = el.tag
        if not isinstance(tag, str) or not (_may_match(el, tag) or el in rel_me):
            continue
        saw_rel = saw_rel or tag == "rel"
        if _discarded(el, tag):
            if el is not tree:  # the root is never removed
                discarded.add(el)
            continue
        which = _expression(el, tag, rel_me)
        if which >= 0:
            candidates[which].append(el)
    return candidates, discarded, saw_rel


def extract_author(tree: HtmlElement) -> str | None:
    """The document's author(s) from bylines in the body: ``trafilatura.metadata.extract_author``'s result."""
    candidates, discarded, saw_rel = _scan(tree, set())
    if saw_rel:  # trafilatura's `rel='me'` (no @: a child element <rel> reading "me"); never seen in practice
        candidates, discarded, _ = _scan(tree, set(_REL_ME(tree)))
    for found in candidates:
        for el in found:
            if discarded and any(a in discarded for a in el.iterancestors()):
                continue  # inside a pruned section
            content = _pruned_text(el)
            if content and 2 < len(content) < _LEN_LIMIT:
                return normalize_authors(None, content)
    return None
