"""The extract stage: golden pages, nothing-extractable outcomes, charsets, canonical URLs."""

from __future__ import annotations

import codecs
import concurrent.futures as cf
import gzip
import json
import multiprocessing
import pickle
from pathlib import Path

import pytest
import trafilatura
from lxml import etree
from lxml.html import HtmlElement

from pipeline.extract import bare_trafilatura_extract, decode_html, extract, load_html
from pipeline.newsroom import content, render

BASE = {"levant": "http://127.0.0.1:8301", "desertwire": "http://127.0.0.1:8302", "gulfledger": "http://127.0.0.1:8303"}
SITES = {s.key: s for s in content.SITES}
STORY = {s.path: s for s in content.STORIES}

AL_TANF_PAGE = "1ee91d1fce65e09be8b8d2d29eab771546d98ca2ba5c862941e660e9fec12432"
NATIONAL_REVIEW_PAGE_PREFIX = "f5c90a6d"


def page(path: str, *, canonical: str | None = None) -> tuple[bytes, str]:
    story = STORY[path]
    url = BASE[story.site] + path
    html = render.article_page(SITES[story.site], story, url, canonical or url, [("/other/", "Another story")])
    return html, url


def _para_html(words: int, extra_head: str = "") -> str:
    text = " ".join(f"word{i % 50}" for i in range(words))
    return (f"<html lang='en-GB'><head><title>T</title>{extra_head}</head><body>"
            f"<article><h1>Headline here</h1><p>{text}.</p><p>{text}.</p></article></body></html>")


def test_golden_newsroom_article() -> None:
    html, url = page("/2017/06/09/coalition-reinforces-at-tanf/")
    res = extract(html, url)
    assert res.ok and res.status == "extracted", res.reason
    assert res.title == "Coalition reinforces At Tanf garrison after desert standoff"
    assert res.authors == ["Nadia Haddad"]
    assert res.published == "2017-06-09"
    assert res.language == "en"
    assert res.site_name == "The Levant Observer"
    assert res.canonical_url == url
    story = STORY["/2017/06/09/coalition-reinforces-at-tanf/"]
    first, last = story.paragraphs()[0], story.paragraphs()[-1]
    assert first in res.text and last in res.text
    for boilerplate in ("All rights reserved", "We use cookies", "morning briefing", "Another story", "Subscribe"):
        assert boilerplate not in res.text
    assert len(res.text.split()) >= 300


def test_every_newsroom_story_extracts() -> None:
    for story in content.STORIES:
        html, url = page(story.path)
        res = extract(html, url)
        assert res.ok, (story.path, res.status, res.reason)
        assert res.title == story.title and res.authors == [story.author]
        assert res.published == story.published[:10]


def test_section_index_is_not_an_article() -> None:
    site_key, path, title = content.SECTION_INDEX
    entries = [(s.path, s.title, s.summary) for s in content.stories_of(site_key)]
    html = render.section_page(SITES[site_key], title, BASE[site_key] + path, entries)
    res = extract(html, BASE[site_key] + path)
    assert (res.ok, res.status) == (False, "not_article")
    assert "listing page" in res.reason and "og:type=website" in res.reason


def test_article_declaring_og_type_website_is_still_an_article() -> None:
    res = extract(_para_html(120, '<meta property="og:type" content="website">'), "http://example.org/a")
    assert res.ok, res.reason


@pytest.mark.parametrize(
    ("html", "status"),
    [
        (b"", "empty"),
        (b"   \n\t ", "empty"),
        ("", "empty"),
        (b"<html><head></head><body>   </body></html>", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "parse_error"),
        ("<html><body>" + "<div>" * 5000 + "<p>lost words</p>" + "</div>" * 5000 + "</body></html>", "parse_error"),
        (b"<html><body><div id=app></div><script>render('app')</script></body></html>", "not_article"),
        (b"<html><body><footer><p>Copyright 2017</p></footer></body></html>", "not_article"),
    ],
)
def test_nothing_extractable_is_a_recorded_outcome(html: bytes | str, status: str) -> None:
    res = extract(html, "http://example.org/x")
    assert res.ok is False and res.status == status and res.reason
    assert res.text == ""


def test_too_short_honours_min_text_chars() -> None:
    html = _para_html(20)
    res = extract(html, "http://example.org/short")
    assert (res.ok, res.status) == (False, "too_short")
    assert "fewer than 250" in res.reason
    assert extract(html, "http://example.org/short", min_text_chars=50).ok


def test_declared_windows_1252_is_decoded() -> None:
    html, url = page("/politics/2017/07/25/aid-stalls-at-rukban")
    assert b"\x93Bread is a luxury now,\x94" in html  # really cp1252 on the wire
    res = extract(html, url)
    assert res.ok and "\u201cBread is a luxury now,\u201d" in res.text
    assert "no man\u2019s land" in res.text


def test_decode_html_rules() -> None:
    text = "<html><body><p>caf\u00e9 \u2014 na\u00efve</p></body></html>"
    assert decode_html(codecs.BOM_UTF8 + text.encode("utf-8")) == text
    assert decode_html(codecs.BOM_UTF16_LE + text.encode("utf-16-le")) == text
    assert decode_html(text.encode("utf-8")) == text  # undeclared: utf-8
    assert decode_html(text.encode("cp1252")) == text  # undeclared and not utf-8: cp1252
    latin = '<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1"><p>caf\u00e9</p>'
    assert decode_html(latin.encode("latin-1")).endswith("caf\u00e9</p>")
    unknown = '<meta charset="x-no-such-charset"><p>caf\u00e9</p>'
    assert decode_html(unknown.encode("utf-8")).endswith("caf\u00e9</p>")
    # a page that lies (declares utf-16 but is 8-bit) is read as utf-8, as browsers do
    assert decode_html('<meta charset="utf-16"><p>caf\u00e9</p>'.encode()).endswith("caf\u00e9</p>")
    with pytest.raises(ValueError):
        decode_html(b"\x00\x01\x02binary")


def test_canonical_url_rules() -> None:
    path = "/2017/06/09/coalition-reinforces-at-tanf/"
    url = BASE["levant"] + path
    cases = {
        url: url,  # self
        path: url,  # relative: made absolute
        "http://127.0.0.1:8301/other?id=1": "http://127.0.0.1:8301/other?id=1",  # same host, other path
        "https://127.0.0.1:8301/x": "https://127.0.0.1:8301/x",  # same host and port, https
        BASE["gulfledger"] + "/wire/x": None,  # same IP, other port: another origin
        "http://evil.example/x": None,  # another host
        "javascript:alert(1)": None,
    }
    for declared, expected in cases.items():
        html, _ = page(path, canonical=declared)
        assert extract(html, url).canonical_url == expected, declared
    www = ('<html><head><link rel="canonical" href="https://www.example.org/story">'
           '</head><body><article><p>' + "text " * 100 + "</p></article></body></html>")
    assert extract(www, "https://example.org/story?utm_source=x").canonical_url == "https://www.example.org/story"
    og_only = www.replace('<link rel="canonical" href="https://www.example.org/story">',
                          '<meta property="og:url" content="https://example.org/from-og">')
    assert extract(og_only, "https://example.org/s").canonical_url == "https://example.org/from-og"
    none = www.replace('<link rel="canonical" href="https://www.example.org/story">', "")
    assert extract(none, "https://example.org/s").canonical_url is None


def test_syndicated_copy_keeps_its_own_url() -> None:
    copy = next(s for s in content.STORIES if s.canonical_of)
    orig_site, orig_path = copy.canonical_of.split(":", 1)
    html, url = page(copy.path, canonical=BASE[orig_site] + orig_path)
    res = extract(html, url)
    assert res.ok and res.canonical_url is None  # cross-host canonical is not trusted
    orig = extract(*page(orig_path))
    assert orig.text.split("\n")[-1] == res.text.split("\n")[-1]


def test_extract_runs_in_a_worker_process() -> None:
    assert pickle.loads(pickle.dumps(extract)) is extract
    html, url = page("/2017/09/06/siege-of-deir-ez-zor-broken/")
    ctx = multiprocessing.get_context("forkserver")
    with cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        remote = pool.submit(extract, html, url).result(timeout=60)
    assert remote == extract(html, url) and remote.ok


def _gold(shared_dir: Path) -> dict[str, dict[str, str]]:
    data = json.loads((shared_dir / "data" / "article-extraction-benchmark" / "ground-truth.json").read_text())
    return dict(data)


def _token_f1(pred: str, gold: str) -> float:
    from collections import Counter

    p, g = pred.split(), gold.split()
    overlap = sum((Counter(p) & Counter(g)).values())
    return 0.0 if not overlap else 2 * overlap / (len(p) + len(g))


@pytest.mark.shared
def test_real_pages_from_the_benchmark(shared_dir: Path) -> None:
    bench = shared_dir / "data" / "article-extraction-benchmark"
    gold = _gold(shared_dir)
    nr = next(p for p in (bench / "html").glob(NATIONAL_REVIEW_PAGE_PREFIX + "*.html.gz"))
    for key in (AL_TANF_PAGE, nr.name.removesuffix(".html.gz")):
        html = gzip.decompress((bench / "html" / f"{key}.html.gz").read_bytes())
        url = gold[key]["url"]
        res = extract(html, url)
        assert res.ok, (key, res.status, res.reason)
        assert res.title and res.language == "en"
        assert _token_f1(res.text, gold[key]["articleBody"]) > 0.85, key
        assert bare_trafilatura_extract(html)
    tanf = extract(gzip.decompress((bench / "html" / f"{AL_TANF_PAGE}.html.gz").read_bytes()), gold[AL_TANF_PAGE]["url"])
    assert tanf.text.count("al-Tanf") >= 5 and "Rukban" in tanf.text
    assert tanf.canonical_url is None or tanf.canonical_url.startswith("https://www.polygraph.info/")


def _same_tree_as_trafilatura(text: str) -> None:
    ours, theirs = load_html(text), trafilatura.utils.load_html(text)
    if theirs is None:
        assert ours is None
    else:
        assert ours is not None and etree.tostring(ours) == etree.tostring(theirs)
        # trafilatura accepts only lxml.html trees: every element must be an HtmlElement
        assert all(isinstance(el, HtmlElement) for el in ours.iter() if isinstance(el.tag, str))


@pytest.mark.parametrize("text", [
    '<html><head><meta charset="windows-1252"><title>Caf\u00e9</title></head><body><p>na\u00efve \u201cq\u201d</p>',
    '<?xml version="1.0" encoding="ISO-8859-1"?><html><body><p>\u00e9t\u00e9</p></body></html>',
    "<!DOCTYPE html>\n<html/>\n<body><p>self-closing html</p></body>",
    "<p>a fragment without html</p><p>two blocks</p>",
    "<p>one block</p>",
    "just text, no markup at all",
    "<html><body><p>control \\x0b\\x0c characters</p></body></html>",
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">'
    "\n<html><body><p>a doctype with slashes, removed</p></body></html>",
    "<!DOCTYPE html><html><body><p>one line, no newline at all</p></body></html>",
    "<html>\n<body><p>non-characters \ufffe and \uffff and a \x1f control</p></body></html>",
    "<html><body><form action='/s'><label>Q <input name='q'></label><select><option>a</option></select>"
    "<textarea>t</textarea></form><p>forms parse to plain HtmlElements</p></body></html>",
])
def test_load_html_builds_trafilaturas_tree(text: str) -> None:
    _same_tree_as_trafilatura(text)


def test_load_html_keeps_a_declared_charset_from_redecoding() -> None:
    text = decode_html('<html><head><meta charset="windows-1252"><title>Caf\u00e9 \u2014 x</title></head></html>'
                       .encode("cp1252"))
    tree = load_html(text)
    assert tree is not None and tree.findtext(".//title") == "Caf\u00e9 \u2014 x"


def test_load_html_keeps_the_text_after_a_lone_surrogate() -> None:
    # the one difference: lxml parsing a Python string stops at a lone surrogate, losing the rest
    tree = load_html("<html><body><p>before \\ud800 after</p></body></html>")
    assert tree is not None and "after" in tree.findtext(".//p")


@pytest.mark.shared
def test_load_html_on_the_benchmark_pages(shared_dir: Path) -> None:
    for path in sorted((shared_dir / "data" / "article-extraction-benchmark" / "html").glob("*.html.gz")):
        _same_tree_as_trafilatura(decode_html(gzip.decompress(path.read_bytes())))
