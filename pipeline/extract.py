"""The extract stage: one HTML page in, one :class:`~pipeline.models.ExtractResult` out.

``extract(html, url)`` is a plain, picklable module-level function: it knows nothing of
feeds, the bus or the CLI, and it runs in worker processes (``ProcessPoolExecutor``).
It never returns ``None``: when there is nothing to extract the result has
``ok=False`` and a ``status``:

``empty``
    no body, or a body without any text.
``parse_error``
    the bytes are not text (NUL bytes without a UTF-16/32 BOM), lxml builds no tree or a
    tree that lost the page's text (e.g. nesting deeper than libxml2 allows), or
    trafilatura/lxml raise on the tree.
``not_article``
    trafilatura found no main content, or the page is a listing/index page: it declares
    an ``og:type`` that is not an article type (not ``article*``/``news*``/``blog*``, e.g.
    ``website``) *and* more than ``LISTING_LINK_DENSITY`` of the visible text of its body
    (nav/header/footer/aside excluded) sits inside links. Neither signal alone is enough:
    6 of the 181 benchmark articles declare ``og:type=website``/``video.other``, 15 declare
    none, and 10 have a link density above 0.5 (mega-menus outside ``<nav>``); the
    combined rule rejects none of them.
``too_short``
    the main text is shorter than ``min_text_chars`` characters.

Decoding: a byte-order mark wins, then the ``<meta charset>`` / ``http-equiv`` charset in
the first 4 KiB, then UTF-8; an unknown declared charset falls back to UTF-8, and
UTF-8 that does not decode is read as cp1252 (what browsers do for undeclared pages).

The canonical URL (``<link rel=canonical>``, else ``og:url``) is kept only when it is on
the same host as ``url`` (host names equal after dropping a leading ``www.``, and the
same explicit port, if any): a cross-host canonical (syndication) is not trusted,
because a page could otherwise claim any other site's document id.
"""

from __future__ import annotations

import codecs
import logging
import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import trafilatura
from htmldate import find_date
from lxml import etree
from lxml.html import HtmlComment, HtmlElement, HtmlEntity, HTMLParser, HtmlProcessingInstruction, fromstring
from trafilatura import metadata as tmeta
from trafilatura.settings import Document
from trafilatura.utils import DOCTYPE_TAG, FAULTY_HTML, is_dubious_html, repair_faulty_html

from .authors import extract_author
from .models import ExtractResult

__all__ = ["extract", "decode_html", "load_html", "bare_trafilatura_extract", "FAST", "LISTING_LINK_DENSITY"]

logger = logging.getLogger(__name__)

#: Run trafilatura without its fallback extractors (readability, jusText). Chosen by
#: measurement on the 181-page article-extraction benchmark: see docs/decisions.md.
FAST = True

#: Share of the body's visible text inside ``<a>`` above which a non-article og:type
#: page counts as a listing.
LISTING_LINK_DENSITY = 0.5

_ARTICLE_OG_TYPES = ("article", "news", "blog")
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.IGNORECASE)
_BOILERPLATE_TAGS = ("nav", "header", "footer", "aside", "script", "style", "noscript", "form")
# XPath's normalize-space() whitespace, and its translate(@rel, "CANONICAL", "canonical"), for <link rel>
_XML_SPACE = re.compile(r"[ \t\r\n]+")
_UPPER_CANONICAL = str.maketrans("CANONICAL", "canonical")


class _UndecodableError(ValueError):
    pass


def decode_html(data: bytes) -> str:
    """Decode an HTML body: BOM, then meta charset, then UTF-8, then cp1252.

    Raises ``ValueError`` when the bytes are not text (NUL bytes without a UTF-16/32 BOM).
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(encoding, errors="replace")
    if b"\x00" in data[:4096]:
        raise _UndecodableError("binary content (NUL bytes) without a byte-order mark")
    match = _META_CHARSET.search(data[:4096])
    if match:
        declared = match.group(1).decode("ascii", errors="ignore").lower()
        try:
            codec = codecs.lookup(declared).name
        except LookupError:
            codec = ""
        if codec and codec not in ("utf-8", "utf-16-le", "utf-16-be", "utf-16", "utf-32"):
            return data.decode(codec, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def bare_trafilatura_extract(html: bytes | str) -> str | None:
    """Plain ``trafilatura.extract(html)`` with its defaults: the benchmark's baseline."""
    return trafilatura.extract(html)


def _parser() -> HTMLParser:
    """trafilatura's parser settings, with lxml's C-level element class lookup.

    ``lxml.html``'s own lookup is a Python method, called for every element object lxml creates (some
    400,000 times over the 181 benchmark pages, as trafilatura walks the tree): this makes every element
    a plain ``HtmlElement`` without that call, 4% of an extraction. What is lost is only the form-specific
    subclasses (``FormElement``, ``InputElement``...), which neither trafilatura nor htmldate use; the
    extraction results are identical on all 181 pages.
    """
    parser = HTMLParser(collect_ids=False, default_doctype=False, encoding="utf-8", remove_comments=True,
                        remove_pis=True)
    parser.set_element_class_lookup(etree.ElementDefaultClassLookup(
        element=HtmlElement, comment=HtmlComment, pi=HtmlProcessingInstruction, entity=HtmlEntity))
    return parser


HTML_PARSER = _parser()


def load_html(text: str) -> HtmlElement | None:
    """``trafilatura.utils.load_html(text)``, the same tree, about 2 ms per page faster.

    trafilatura hands lxml the Python string and falls back to UTF-8 bytes when that fails; lxml parses
    UTF-8 bytes about twice as fast as a string, and its parser is pinned to UTF-8, so a ``<meta
    charset>`` left in the decoded text cannot re-decode it. The same repairs (:func:`_repair`) and the
    same rejection of input that is not HTML (checked identical on the 181 benchmark pages,
    tests/test_extract.py). One difference: where a lone surrogate in the text makes lxml's string parser
    stop (losing the rest of the page), the bytes carry a replacement character and the text goes on;
    ``decode_html`` never yields one.
    """
    beginning = text[:50].lower()
    tree = fromstring(_repair(text, beginning), parser=HTML_PARSER)
    if tree is not None and is_dubious_html(beginning) and len(tree) < 2:
        return None
    return tree


# bytes that trafilatura's INVALID_XML_CHARS removes (C0 controls but tab, LF, CR) -> 0, the rest -> 1
_INVALID_BYTE_MAP = bytes(0 if c < 0x20 and c not in (9, 10, 13) else 1 for c in range(256))


def _repair(text: str, beginning: str) -> bytes:
    """``repair_faulty_html(text, beginning)`` as UTF-8, without its whole-text regex when it has nothing to do.

    That regex (C0 controls, U+FFFE, U+FFFF) scans every character in Python's ``re``: 1 ms a page, and
    real pages almost never contain one. A C-level byte map and two substring tests tell in 0.2 ms;
    the other two repairs look at the first line and the first 4 KiB only, done here as trafilatura
    does them. A page that needs the regex, or has no newline (where trafilatura appends one), goes
    through ``repair_faulty_html`` itself.
    """
    data = text.encode("utf-8", "surrogatepass")
    if b"\x00" in data.translate(_INVALID_BYTE_MAP) or "\ufffe" in text or "\uffff" in text or "\n" not in text:
        return repair_faulty_html(text, beginning).encode("utf-8", "surrogatepass")
    fixed = text
    if "doctype" in beginning:
        firstline, _, rest = fixed.partition("\n")
        fixed = DOCTYPE_TAG.sub("", firstline, count=1) + "\n" + rest
    for line in fixed[:4096].splitlines()[:4]:
        if "<html" in line and line.endswith("/>"):
            fixed = FAULTY_HTML.sub(r"\1>", fixed, count=1)
            break
    return data if fixed == text else fixed.encode("utf-8", "surrogatepass")


def _fail(status: str, reason: str, url: str) -> ExtractResult:
    logger.debug("extract %s: %s: %s", url, status, reason)
    return ExtractResult(ok=False, status=status, reason=reason)


def _meta(tree: HtmlElement, prop: str) -> str:
    """The content of the first ``<meta property=prop>`` or ``<meta name=prop>`` that has one."""
    for el in tree.iter("meta"):  # a C-level walk that stops only at <meta>: ~20x cheaper than the XPath
        if prop in (el.get("property"), el.get("name")):
            content = el.get("content")
            if content is not None:
                return content.strip()
    return ""



def _language(tree: HtmlElement, fallback: str | None) -> str | None:
    raw = str(tree.get("lang") or tree.get("xml:lang") or "") or _meta(tree, "og:locale") or (fallback or "")
    primary = re.split(r"[-_]", raw.strip().lower(), maxsplit=1)[0]
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None


def _port(parts: Any) -> int | None:
    try:
        return int(parts.port) if parts.port is not None else None
    except ValueError:
        return -1


def _same_host(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    ha = (pa.hostname or "").lower().removeprefix("www.")
    hb = (pb.hostname or "").lower().removeprefix("www.")
    return bool(ha) and ha == hb and _port(pa) == _port(pb) and pb.scheme in ("http", "https")


def canonical_of(tree: HtmlElement, url: str) -> str | None:
    """The page's declared canonical URL, absolute, if it is on the same host as ``url``."""
    for el in tree.iter("link"):  # rel is a space-separated token list, matched case-insensitively
        rel, href = el.get("rel"), el.get("href")
        if rel is not None and href is not None and "canonical" in _XML_SPACE.split(rel.translate(_UPPER_CANONICAL)):
            candidate = href.strip()
            break
    else:
        candidate = _meta(tree, "og:url")
    if not candidate:
        return None
    absolute = urljoin(url, candidate)
    return absolute if _same_host(url, absolute) else None


def link_density(tree: HtmlElement) -> float:
    """Share of the body's visible text (nav/header/footer/aside excluded) that sits inside links."""
    body = tree.find("body")
    if body is None:
        return 0.0
    total = linked = 0
    stack: list[tuple[Any, bool]] = [(body, False)]
    while stack:
        node, parent_linked = stack.pop()
        if not isinstance(node.tag, str) or node.tag in _BOILERPLATE_TAGS:
            continue
        in_link = parent_linked or node.tag == "a"
        if node.text and node.text.strip():
            n = len(node.text.strip())
            total += n
            linked += n if in_link else 0
        for child in node:
            stack.append((child, in_link))
            if child.tail and child.tail.strip():  # a tail belongs to this node's level
                n = len(child.tail.strip())
                total += n
                linked += n if in_link else 0
    return linked / total if total else 0.0


def page_metadata(tree: HtmlElement, url: str) -> Document:
    """Title, author, date and site name: trafilatura's metadata steps minus the costly ones.

    ``trafilatura.extract_metadata`` also collects categories, tags and the licence and runs
    htmldate's extensive (dateparser) search; we need neither, and skipping them makes
    extraction about a third faster (measured, see docs/decisions.md). Date: htmldate,
    original (publication) date, no extensive search.
    """
    doc = tmeta.examine_meta(tree)
    if doc.author and " " not in doc.author:
        doc.author = None
    try:
        doc = tmeta.extract_meta_json(tree, doc)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # trafilatura's JSON-LD walker on odd data
        logger.debug("extract %s: JSON-LD metadata skipped: %s", url, exc)
    doc.title = doc.title or tmeta.extract_title(tree)
    doc.author = doc.author or extract_author(tree)  # trafilatura's byline heuristic, one pass
    doc.date = find_date(tree, url=url, extensive_search=False, original_date=True)
    doc.sitename = doc.sitename or tmeta.extract_sitename(tree)
    if doc.sitename:
        doc.sitename = doc.sitename.lstrip("@")
    doc.clean_and_trim()
    return doc


def _is_listing_type(og_type: str) -> bool:
    """An explicitly declared og:type that is not an article; a missing og:type says nothing."""
    return bool(og_type) and not og_type.startswith(_ARTICLE_OG_TYPES)


def extract(html: bytes | str, url: str, *, min_text_chars: int = 250, fast: bool = FAST) -> ExtractResult:
    """Extract the article in ``html`` (fetched from ``url``); never raises on bad input.

    See the module docstring for the statuses of a failed extraction. Errors raised by
    trafilatura/lxml on a pathological page become ``parse_error``; a metadata failure on a
    page whose body was extracted leaves the metadata empty and is logged.
    """
    if isinstance(html, bytes):
        if not html.strip():
            return _fail("empty", "empty body", url)
        try:
            text = decode_html(html)
        except ValueError as exc:
            return _fail("parse_error", str(exc), url)
    else:
        text = html
    if not text.strip():
        return _fail("empty", "empty body", url)
    try:
        tree = load_html(text)
    except (ValueError, etree.ParserError) as exc:
        return _fail("parse_error", f"unparseable HTML: {exc}", url)
    if tree is None:
        return _fail("parse_error", "unparseable HTML (no tree)", url)
    og_type = _meta(tree, "og:type").lower()
    canonical = canonical_of(tree, url)
    html_lang = _language(tree, None)
    try:
        content = trafilatura.bare_extraction(tree, url=url, fast=fast, include_comments=False, include_tables=True)
    except (ValueError, TypeError, etree.LxmlError, RecursionError) as exc:  # trafilatura on a pathological tree
        return _fail("parse_error", f"trafilatura failed: {type(exc).__name__}: {exc}", url)
    body = (content.text or "").strip() if isinstance(content, Document) else ""
    if not body:
        # why was there nothing? (checked only here: walking the whole tree costs ~4% of an extraction)
        if not "".join(tree.itertext()).strip():
            if re.sub(r"<[^>]*>", "", text).strip():  # the source has text the tree lost (e.g. nesting too deep)
                return _fail("parse_error", "the parsed tree lost the page's text (malformed or too deeply nested)",
                             url)
            return _fail("empty", "the page has no text", url)
        return _fail("not_article", "trafilatura found no main content", url)
    if _is_listing_type(og_type):
        density = link_density(tree)
        if density > LISTING_LINK_DENSITY:
            return _fail("not_article", f"listing page: og:type={og_type} and link density {density:.2f}", url)
    if len(body) < min_text_chars:
        return _fail("too_short", f"main text has {len(body)} characters, fewer than {min_text_chars}", url)
    try:
        doc = page_metadata(tree, url)
    except (ValueError, TypeError, etree.LxmlError, RecursionError) as exc:  # the body is good: keep it
        logger.warning("extract %s: metadata failed: %s: %s", url, type(exc).__name__, exc)
        doc = Document()
    authors = [a.strip() for a in re.split(r";", doc.author or "") if a.strip()]
    result = ExtractResult(
        ok=True,
        title=(doc.title or "").strip(),
        text=body,
        authors=authors,
        published=doc.date or None,
        language=html_lang or _language(tree, doc.language),
        site_name=(doc.sitename or "").strip() or None,
        canonical_url=canonical,
    )
    logger.debug("extract %s: %d chars, title %r", url, len(body), result.title[:60])
    return result
