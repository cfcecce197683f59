"""Render the sample newsroom's pages and feeds (HTML, RSS 2.0, Atom 1.0) as bytes."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime
from html import escape
from xml.sax.saxutils import escape as xml_escape

from .content import Site, Story

__all__ = ["article_page", "section_page", "rss_feed", "atom_feed", "robots_txt", "FeedItem"]

_STYLE = "body{font-family:Georgia,serif;max-width:46rem;margin:auto}nav a{margin-right:1rem}"


def _dt(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _chrome_top(site: Site, title: str, head_extra: str, lang: str = "en") -> str:
    nav = "".join(f'<a href="/sections/{escape(s.lower().replace(" ", "-"))}/">{escape(s)}</a>' for s in site.sections)
    charset = site.encoding
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="{charset}">\n'
        f"<title>{escape(title)} | {escape(site.name)}</title>\n"
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n{head_extra}'
        f"<style>{_STYLE}</style>\n</head>\n<body>\n"
        f'<header class="masthead"><a class="logo" href="/">{escape(site.name)}</a>'
        f'<p class="tagline">{escape(site.tagline)}</p></header>\n'
        f'<nav class="sections"><a href="/">Home</a>{nav}<a href="/subscribe">Subscribe</a></nav>\n'
        '<div class="cookie-banner">We use cookies to understand how our journalism is read. '
        '<button type="button">Accept</button></div>\n'
    )


def _chrome_bottom(site: Site, year: int) -> str:
    return (
        '<footer class="site-footer"><p>'
        f"&copy; {year} {escape(site.name)}. All rights reserved.</p>"
        '<p><a href="/about">About us</a> <a href="/contact">Contact</a> <a href="/privacy">Privacy</a> '
        '<a href="/terms">Terms of use</a></p></footer>\n</body>\n</html>\n'
    )


def article_page(site: Site, story: Story, url: str, canonical: str, related: list[tuple[str, str]]) -> bytes:
    """The HTML page of ``story`` served at ``url``; ``canonical`` goes in ``<link rel=canonical>``."""
    published = _dt(story.published)
    head = (
        f'<link rel="canonical" href="{escape(canonical)}">\n'
        f'<meta name="description" content="{escape(story.summary)}">\n'
        f'<meta name="author" content="{escape(story.author)}">\n'
        f'<meta property="og:type" content="article">\n'
        f'<meta property="og:title" content="{escape(story.title)}">\n'
        f'<meta property="og:site_name" content="{escape(site.name)}">\n'
        f'<meta property="og:url" content="{escape(canonical)}">\n'
        f'<meta property="og:description" content="{escape(story.summary)}">\n'
        f'<meta property="article:published_time" content="{story.published}">\n'
        f'<meta property="article:section" content="{escape(story.section)}">\n'
    )
    paragraphs = "\n".join(f"<p>{escape(p)}</p>" for p in story.paragraphs())
    related_html = "".join(f'<li><a href="{escape(u)}">{escape(t)}</a></li>' for u, t in related)
    syndication = ""
    if story.canonical_of:
        syndication = '<p class="syndication">This story first appeared in The Levant Observer.</p>\n'
    html = (
        _chrome_top(site, story.title, head)
        + '<main>\n<article class="story">\n'
        + f'<p class="kicker">{escape(story.section)}</p>\n<h1>{escape(story.title)}</h1>\n'
        + f'<p class="standfirst">{escape(story.summary)}</p>\n'
        + f'<p class="byline">By <span class="author">{escape(story.author)}</span> | '
        + f'<time datetime="{story.published}">{published.strftime("%d %B %Y, %H:%M")} UTC</time></p>\n'
        + '<div class="story-body">\n'
        + paragraphs
        + "\n</div>\n"
        + syndication
        + '<p class="share">Share this story: <a href="/share?via=mail">Email</a> <a href="/share?via=x">X</a></p>\n'
        + "</article>\n"
        + f'<aside class="related"><h2>Related</h2><ul>{related_html}</ul></aside>\n'
        + '<aside class="newsletter"><p>Get the morning briefing in your inbox.</p>'
        + '<form action="/subscribe"><input name="email"><button>Sign up</button></form></aside>\n'
        + "</main>\n"
        + _chrome_bottom(site, published.year)
    )
    return html.encode(site.encoding, errors="xmlcharrefreplace")


def section_page(site: Site, title: str, url: str, entries: list[tuple[str, str, str]]) -> bytes:
    """A section index (listing) page: ``og:type=website`` and little but links."""
    head = (
        f'<link rel="canonical" href="{escape(url)}">\n'
        '<meta property="og:type" content="website">\n'
        f'<meta property="og:title" content="{escape(title)}">\n'
        f'<meta property="og:site_name" content="{escape(site.name)}">\n'
    )
    items = "\n".join(
        f'<li class="teaser"><h3><a href="{escape(u)}">{escape(t)}</a></h3>'
        f'<p><a href="{escape(u)}">{escape(summary)}</a></p></li>'
        for u, t, summary in entries
    )
    more = "\n".join(f'<li><a href="/archive/2017/{m:02d}/">Archive: 2017-{m:02d}</a></li>' for m in range(1, 13))
    html = (
        _chrome_top(site, title, head)
        + f"<main>\n<h1>{escape(title)}</h1>\n<ul class=\"teasers\">\n{items}\n</ul>\n"
        + f'<h2>Archive</h2>\n<ul class="archive">\n{more}\n</ul>\n'
        + '<p class="pager"><a href="?page=2">Older stories</a></p>\n</main>\n'
        + _chrome_bottom(site, 2017)
    )
    return html.encode(site.encoding, errors="xmlcharrefreplace")


FeedItem = tuple[str, str, str, str, str]  # (url, guid, title, summary, published ISO)


def rss_feed(site: Site, home: str, feed_url: str, items: list[FeedItem]) -> bytes:
    """An RSS 2.0 feed; items carry ``guid`` (not a permalink) and an RFC 822 ``pubDate``."""
    newest = max((_dt(i[4]) for i in items), default=None)
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">',
        "<channel>",
        f"<title>{xml_escape(site.name)}</title>",
        f"<link>{xml_escape(home)}</link>",
        f"<description>{xml_escape(site.tagline)}</description>",
        "<language>en</language>",
        f'<atom:link href="{xml_escape(feed_url)}" rel="self" type="application/rss+xml"/>',
    ]
    if newest:
        out.append(f"<lastBuildDate>{format_datetime(newest)}</lastBuildDate>")
    for url, guid, title, summary, published in items:
        out += [
            "<item>",
            f"<title>{xml_escape(title)}</title>",
            f"<link>{xml_escape(url)}</link>",
            f'<guid isPermaLink="false">{xml_escape(guid)}</guid>',
            f"<pubDate>{format_datetime(_dt(published))}</pubDate>",
            f"<description>{xml_escape(summary)}</description>",
            "</item>",
        ]
    out += ["</channel>", "</rss>", ""]
    return "\n".join(out).encode("utf-8")


def atom_feed(site: Site, home: str, feed_url: str, items: list[FeedItem]) -> bytes:
    """An Atom 1.0 feed; entries carry ``id`` (a tag: URI) and ``updated``."""
    newest = max((i[4] for i in items), default="2017-01-01T00:00:00+00:00")
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">',
        f"<title>{xml_escape(site.name)}</title>",
        f"<subtitle>{xml_escape(site.tagline)}</subtitle>",
        f'<link rel="alternate" href="{xml_escape(home)}"/>',
        f'<link rel="self" href="{xml_escape(feed_url)}"/>',
        f"<id>tag:{site.key}.example,2017:feed</id>",
        f"<updated>{newest}</updated>",
    ]
    for url, guid, title, summary, published in items:
        out += [
            "<entry>",
            f"<title>{xml_escape(title)}</title>",
            f'<link rel="alternate" type="text/html" href="{xml_escape(url)}"/>',
            f"<id>{xml_escape(guid)}</id>",
            f"<published>{published}</published>",
            f"<updated>{published}</updated>",
            f"<summary>{xml_escape(summary)}</summary>",
            "</entry>",
        ]
    out += ["</feed>", ""]
    return "\n".join(out).encode("utf-8")


def robots_txt() -> bytes:
    return b"User-agent: *\nDisallow: /private/\nDisallow: /share\nAllow: /\n"
