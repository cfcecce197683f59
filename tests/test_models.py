"""The bus records: to_dict is dataclasses.asdict without its deep copy, and from_dict inverts it."""

from __future__ import annotations

import dataclasses
import json

from pipeline.models import (
    AlertRecord,
    Article,
    EnrichedArticle,
    EntityHit,
    ExtractResult,
    FeedEntry,
    Mention,
    Outcome,
    TagResult,
    TopicHit,
    TopicReason,
)

REASON = TopicReason("tanf", "al-Tanf", "core", "at tanf", "At Tanf", 3, 10, "title")
MENTION = Mention("tanf", 3, 10, "At Tanf", "at tanf", "title", fuzzy=True)
HIT = EntityHit("tanf", "base", "place", "al-Tanf", [MENTION, MENTION], 33.5, 38.6, "homs")
ARTICLE = Article("d1", "https://x.example/a", "T", "text", "2017-06-01T00:00:00+00:00", authors=["A B", "C D"],
                  published="2017-06-01", language="en")
RECORDS = [
    FeedEntry("https://x.example/feed", "https://x.example/a", guid="g", title="T"),
    Outcome("fetch", "https://x.example/a", "http_404", "not found", ok=False),
    ExtractResult(True, title="T", text="x", authors=["A B"], canonical_url="https://x.example/a"),
    ARTICLE,
    MENTION,
    HIT,
    REASON,
    TopicHit("al-tanf", "al-Tanf", [REASON]),
    AlertRecord("a1", "al-tanf", "s1", "d1", "https://x.example/a", "T", "x.example", None, "now", [REASON],
                "snippet", ["y.example"]),
]


def test_to_dict_equals_asdict_and_shares_no_lists() -> None:
    for record in RECORDS:
        as_dict = record.to_dict()
        assert as_dict == dataclasses.asdict(record), type(record).__name__
        json.dumps(as_dict)  # plain JSON types only
        for name, value in as_dict.items():
            if isinstance(value, list):
                assert value is not getattr(record, name)  # a copy: mutating it leaves the record alone


def test_round_trips() -> None:
    enriched = EnrichedArticle(ARTICLE, TagResult([HIT], [TopicHit("al-tanf", "al-Tanf", [REASON])]), "now")
    back = EnrichedArticle.from_dict(json.loads(json.dumps(enriched.to_dict())))
    assert back == enriched
    assert Article.from_dict(ARTICLE.to_dict()) == ARTICLE
    alert = RECORDS[-1]
    assert AlertRecord.from_dict(json.loads(json.dumps(alert.to_dict()))) == alert
