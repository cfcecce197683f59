from __future__ import annotations

import pytest

from pipeline.ids import alert_id, canonical_url, doc_id


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("HTTP://Example.COM:80/a/b?x=1&y=2#frag", "http://example.com/a/b?x=1&y=2"),
        ("https://example.com:443", "https://example.com/"),
        ("https://example.com/a?utm_source=rss&id=7&fbclid=z", "https://example.com/a?id=7"),
        ("https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
        ("https://example.com/%7Euser/a%20b", "https://example.com/~user/a%20b"),
        ("http://127.0.0.1:8631/x", "http://127.0.0.1:8631/x"),
    ],
)
def test_canonical_url(a: str, b: str) -> None:
    assert canonical_url(a) == b


def test_doc_id_is_stable_and_canonical() -> None:
    assert doc_id("https://Example.com/a?utm_medium=x") == doc_id("https://example.com/a")
    assert doc_id("https://example.com/a") != doc_id("https://example.com/b")
    assert len(doc_id("https://example.com/a")) == 32


def test_alert_id_depends_on_topic_and_story() -> None:
    assert alert_id("al-tanf", "s1") == alert_id("al-tanf", "s1")
    assert alert_id("al-tanf", "s1") != alert_id("deir-ez-zor", "s1")
    assert alert_id("al-tanf", "s1") != alert_id("al-tanf", "s2")
