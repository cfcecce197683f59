"""pipeline.authors.extract_author gives trafilatura's answer, from one pass."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest
from lxml import html as lxml_html
from trafilatura.metadata import extract_author as trafilatura_extract_author

from pipeline.authors import extract_author
from pipeline.extract import decode_html, load_html


def _tree(body: str) -> lxml_html.HtmlElement:
    tree = load_html(f"<html><head><title>t</title></head><body>{body}</body></html>")
    assert tree is not None
    return tree


CASES = [
    # (body, what trafilatura finds)
    ('<p>Text.</p><span class="author">Jane Roe</span>', "Jane Roe"),
    ('<div class="byline">By <a href="/j">John Doe</a> <time>May 1</time>, Reuters</div>', "John Doe; Reuters"),
    # a byline inside a comment section is pruned; the article's own byline further down wins
    ('<div id="comments"><span class="author">Troll McTroll</span></div><p class="byline">Ann Lee</p>', "Ann Lee"),
    # expression order beats document order: a rel=author link (first expression) after a writer div (third)
    ('<div class="writer-box">Sam Writer</div><a rel="author" href="/x">Kim Park</a>', "Kim Park"),
    ('<author>Lee Chan</author>', "Lee Chan"),
    ('<span itemprop="author"><span itemprop="name">Omar Hassan</span></span>', "Omar Hassan"),
    ('<div data-component="Byline">Reported by Maria Silva</div>', "Maria Silva"),
    ('<h4 class="BBL">Tom Jones</h4>', "Tom Jones"),
    # a class that is also a discard pattern ("print") removes the element itself
    ('<span class="author print">Hidden Name</span><span class="author-name">Shown Name</span>', "Shown Name"),
    # figures and times inside the byline are cut, and their tails kept
    ('<div class="byline"><figure><img src="a.jpg"><figcaption>Photo</figcaption></figure>Alex Kim'
     '<time>today</time> and Bo Li</div>', "Alex Kim; Bo Li"),
    # too long to be a byline: skipped, the next candidate is used
    ('<div class="author">' + "word " * 40 + '</div><p class="username">Short Name</p>', "Short Name"),
    ('<p>No byline here.</p>', None),
    ('<div class="author"><a href="mailto:x@y.org">x@y.org</a></div>', None),
]


@pytest.mark.parametrize(("body", "expected"), CASES)
def test_constructed_bylines(body: str, expected: str | None) -> None:
    tree = _tree(body)
    assert trafilatura_extract_author(_tree(body)) == expected  # the case says what trafilatura does
    assert extract_author(tree) == expected


def test_the_tree_is_not_modified() -> None:
    tree = _tree(CASES[1][0])
    before = lxml_html.tostring(tree)
    extract_author(tree)
    assert lxml_html.tostring(tree) == before


_TAGS = ["div", "span", "p", "a", "section", "h3", "h4", "strong", "address", "time", "figure", "author", "li", "em"]
_CLASSES = ["author", "byline", "Byline", "author-name", "authorName", "comments", "commentlist", "sidebar", "date",
            "title", "print", "quote", "meta-date", "writer", "screenname", "username", "byl", "BBL", "posted-by",
            "is-hidden", "x", "story", "article-share", "category", "channel-name"]
_IDS = ["author", "comments", "comment-list", "ProductReviews", "main", "Author-box", "zuozhe", "x"]
_WORDS = ["Jane", "Roe", "By", "and", "Staff", "Reuters", "Omar", "Hassan", "comment", "2017", "photo", "x"]


def _random_body(rng: random.Random, depth: int = 0) -> str:
    parts = []
    for _ in range(rng.randint(1, 4)):
        tag = rng.choice(_TAGS)
        attrs = []
        if rng.random() < 0.5:
            attrs.append(f'class="{" ".join(rng.sample(_CLASSES, rng.randint(1, 2)))}"')
        if rng.random() < 0.25:
            attrs.append(f'id="{rng.choice(_IDS)}"')
        if rng.random() < 0.1:
            attrs.append('itemprop="author"')
        if rng.random() < 0.05:
            attrs.append('rel="author"')
        if rng.random() < 0.05:
            attrs.append(f'data-component="{rng.choice(["Byline", "Figure", "Other"])}"')
        inner = " ".join(rng.sample(_WORDS, rng.randint(0, 3)))
        if depth < 3 and rng.random() < 0.6:
            inner += _random_body(rng, depth + 1)
        tail = " ".join(rng.sample(_WORDS, rng.randint(0, 2)))
        parts.append(f"<{tag} {' '.join(attrs)}>{inner}</{tag}>{tail}")
    return "".join(parts)


def test_random_trees_agree_with_trafilatura() -> None:
    rng = random.Random(20261122)
    found = 0
    for _ in range(400):
        body = _random_body(rng)
        expected = trafilatura_extract_author(_tree(body))
        assert extract_author(_tree(body)) == expected, body
        found += expected is not None
    assert found > 100  # the generator does produce bylines


@pytest.mark.shared
def test_benchmark_pages_agree_with_trafilatura(shared_dir: Path) -> None:
    pages = sorted((shared_dir / "data" / "article-extraction-benchmark" / "html").glob("*.html.gz"))
    if not pages:
        pytest.skip(f"no benchmark pages under {shared_dir / 'data' / 'article-extraction-benchmark'}")
    found = 0
    for path in pages:
        tree = load_html(decode_html(gzip.decompress(path.read_bytes())))
        if tree is None:
            continue
        expected = trafilatura_extract_author(tree)
        assert extract_author(tree) == expected, path.name
        found += expected is not None
    assert found > len(pages) // 2

