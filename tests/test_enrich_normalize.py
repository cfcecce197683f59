"""Normalisation: folding rules and the offset map back to the original text."""

from __future__ import annotations

import pytest

from pipeline.enrich.normalize import normalize, normalize_key


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Deir ez-Zor", "deir ez zor"),
        ("al\u2011Tanf", "al tanf"),  # non-breaking hyphen
        ("al\u2013Tanf al\u2014Tanf al\u2212Tanf", "al tanf al tanf al tanf"),  # en/em dash, minus
        ("at\u00a0Tanf", "at tanf"),  # no-break space
        ("Mar\u2019a Mar'a", "mar a mar a"),  # apostrophes
        ("Ḥajīn Deïr Mayādīn", "hajin deir mayadin"),  # diacritics
        ("\u02bfAyn \u02beIsa", "ayn isa"),  # ayin/hamza modifier letters vanish
        ("DEIR EZ-ZOR", "deir ez zor"),
        ("دير الزّور", "دير الزور"),  # shadda (haraka) removed
        ("التنـــف", "التنف"),  # tatweel removed
        ("أبو كمال إدلب آمنة", "ابو كمال ادلب امنه"),  # alef forms, taa marbuta
        ("  many   spaces\n\nhere ", " many spaces here "),
        ("٥٥ كم", "55 كم"),  # Arabic-Indic digits
        ("al - Tanf", "al tanf"),  # spaced hyphen collapses
        ("Abu, Kamal", "abu  kamal"),  # punctuation stays a separate space: no name across it
    ],
)
def test_folding(raw: str, expected: str) -> None:
    assert normalize(raw).text == expected


@pytest.mark.parametrize(
    "raw",
    ["plain text", "x  \u0301y  z", "دير الزّور والتنـــف", "a\u200bb  c", "Deïr\u00a0ez\u2011Zor,  al\u2011Tanf",
     "e\u0301e\u0301 \u0640\u0640 z"],
)
def test_offset_map_points_at_the_same_characters(raw: str) -> None:
    norm = normalize(raw)
    for j, ch in enumerate(norm.text):
        i = norm.to_original(j)
        assert 0 <= i < len(raw)
        if ch != " ":
            assert normalize_key(raw[i]) == ch


def test_span_round_trip() -> None:
    raw = "In  Deir\u00a0ez\u2011Zor\u0301, troops"
    norm = normalize(raw)
    start = norm.text.index("deir ez zor")
    s, e = norm.span(start, start + len("deir ez zor"))
    assert raw[s:e] == "Deir\u00a0ez\u2011Zor"
