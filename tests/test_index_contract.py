"""One contract suite for SearchIndex: SQLiteIndex, OpenSearchIndex on the session's real OpenSearch node,
and ElasticsearchIndex when ELASTICSEARCH_URL is set (Elasticsearch itself cannot be had on this machine)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from pipeline.index.base import HIGHLIGHT_MARKS, SearchIndex

ES_URL = os.environ.get("ELASTICSEARCH_URL")


@pytest.fixture(params=["sqlite", pytest.param("opensearch", marks=pytest.mark.opensearch), "elasticsearch"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchIndex]:
    if request.param == "sqlite":
        from pipeline.index.sqlite import SQLiteIndex

        idx = SQLiteIndex(tmp_path / "index.sqlite3")
        yield idx
        idx.close()
        return
    prefix = f"newswatch-test-{uuid.uuid4().hex[:8]}"
    rest: Any
    if request.param == "opensearch":
        from pipeline.config import OpenSearchSettings
        from pipeline.index.opensearch import OpenSearchIndex

        node = request.getfixturevalue("real_opensearch")
        rest = OpenSearchIndex(OpenSearchSettings(url=SecretStr(node.url), index_prefix=prefix))
    else:
        if not ES_URL:
            pytest.skip("ELASTICSEARCH_URL not set: no Elasticsearch cluster to run the index contract against")
        from pipeline.config import ElasticsearchSettings
        from pipeline.index.elasticsearch import ElasticsearchIndex

        rest = ElasticsearchIndex(ElasticsearchSettings(url=SecretStr(ES_URL), index_prefix=prefix,
                                                        api_key=SecretStr(os.environ["ELASTICSEARCH_API_KEY"])
                                                        if os.environ.get("ELASTICSEARCH_API_KEY") else None))
    yield rest
    rest.drop_everything()
    rest.close()


def doc(doc_id: str, title: str, text: str, *, published: str | None, topics: list[str] = (),  # type: ignore[assignment]
        entities: list[str] = (), fetched_at: str = "2026-11-20T10:00:00+00:00") -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "id": doc_id, "url": f"https://example.org/{doc_id}", "title": title, "text": text, "source": "example.org",
        "feed_url": "https://example.org/feed", "authors": [], "published": published, "fetched_at": fetched_at,
        "language": "en",
        "entities": [{"id": e, "type": "base", "kind": "place", "name": e, "count": 1, "lat": 33.5, "lon": 38.6,
                      "governorate": None} for e in entities],
        "topics": list(topics), "topic_reasons": [], "enriched_at": f"2026-11-20T10:00:0{doc_id[-1]}+00:00",
    }


CORPUS = [
    doc("d1", "Garrison at al-Tanf expanded", "Coalition advisers trained partner forces near the border crossing.",
        published="2017-05-12T08:00:00+00:00", topics=["al-tanf"], entities=["al-tanf"]),
    doc("d2", "Convoy struck", "Aircraft struck a convoy approaching the garrison in the desert.",
        published="2017-06-02T09:00:00+00:00", topics=["al-tanf"], entities=["al-tanf", "badia"]),
    doc("d3", "Deir ez-Zor siege", "Supplies were dropped over the besieged city on the Euphrates.",
        published="2017-09-05T10:00:00+00:00", topics=["deir-ez-zor"], entities=["deir-ez-zor"]),
    doc("d4", "Undated bulletin", "A garrison statement without any date.", published=None,
        fetched_at="2026-11-20T10:00:00+00:00"),
]


def test_create_if_absent_and_counts(index: SearchIndex) -> None:
    first = index.index_documents(CORPUS)
    assert (first.created, first.existing, first.failed) == (4, 0, [])
    again = index.index_documents(CORPUS[:2])
    assert (again.created, again.existing) == (0, 2)
    assert index.count() == 4
    assert index.get("d3") == CORPUS[2]
    assert index.get("nope") is None
    assert sorted(d["id"] for d in index.export()) == ["d1", "d2", "d3", "d4"]


def test_a_document_without_id_or_url_is_reported_failed(index: SearchIndex) -> None:
    report = index.index_documents([{"id": "", "url": "", "title": "x"}, CORPUS[0]])
    assert report.created == 1
    assert [r[0] for r in report.failed] == [""]


def test_search_ranks_title_matches_first_and_filters(index: SearchIndex) -> None:
    index.index_documents(CORPUS)
    hits = index.search("garrison")
    assert [h.id for h in hits][0] == "d1"  # title match outranks text-only matches
    assert {h.id for h in hits} == {"d1", "d2", "d4"}
    assert hits[0].url == "https://example.org/d1" and hits[0].topics == ["al-tanf"]
    assert any("garrison" in h.snippet.lower() for h in hits)
    assert {h.id for h in index.search("garrison", topic="al-tanf")} == {"d1", "d2"}
    assert {h.id for h in index.search("garrison", entity="badia")} == {"d2"}
    assert {h.id for h in index.search("garrison", since="2017-06-01", until="2018-01-01")} == {"d2"}
    assert {h.id for h in index.search("garrison", since="2026-01-01")} == {"d4"}  # fetched_at when undated
    assert index.search("zanzibar") == []


def test_empty_query_lists_newest_first(index: SearchIndex) -> None:
    index.index_documents(CORPUS)
    assert [h.id for h in index.search("", topic="al-tanf")] == ["d2", "d1"]
    assert [h.id for h in index.search("", limit=2)] == ["d4", "d3"]


def test_alerts_are_create_if_absent(index: SearchIndex) -> None:
    alert = {"id": "a1", "topic": "al-tanf", "story_id": "s1", "doc_id": "d1", "url": "https://example.org/d1",
             "title": "t", "source": "example.org", "published": None, "created_at": "2026-11-20T10:00:00+00:00",
             "reasons": [], "snippet": "", "other_sources": []}
    assert index.index_alerts([alert]).created == 1
    assert index.index_alerts([alert]).existing == 1


def test_delete_older_than(index: SearchIndex) -> None:
    index.index_documents(CORPUS)
    assert index.delete_older_than("2017-06-01") == 1
    assert sorted(d["id"] for d in index.export()) == ["d2", "d3", "d4"]


def test_entity_terms_match_tagged_documents_and_spellings_tagged_first(index: SearchIndex) -> None:
    from pipeline.index.base import EntityTerm

    index.index_documents([
        *CORPUS,
        doc("d5", "Strikes near Dayr az Zawr", "Aircraft hit positions near Dayr az Zawr.",
            published="2017-09-06T10:00:00+00:00"),  # untagged (indexed before the catalogue knew it)
        doc("d6", "Families flee al-Mayadin", "The offensive moved down the river.",
            published="2017-10-01T10:00:00+00:00", topics=["deir-ez-zor"], entities=["al-mayadin"]),
    ])
    term = EntityTerm(text="Deir Ezzor", ids=("deir-ez-zor",), topics=("deir-ez-zor",),
                      spellings=("deir ez zor", "dayr az zawr", "deir ezzor"))
    hits = index.search("", entity_terms=[term])
    assert {h.id for h in hits} == {"d3", "d5", "d6"}
    assert {h.id for h in hits[:2]} == {"d3", "d6"}  # tagged (entity or topic) before text-only
    assert [h.id for h in index.search("supplies", entity_terms=[term])] == ["d3"]  # free text still required
    assert index.search("", entity_terms=[term], topic="al-tanf") == []
    tanf = EntityTerm(text="al-Tanf", ids=("al-tanf",), spellings=("al tanf",))
    assert [h.id for h in index.search("convoy", entity_terms=[tanf])] == ["d2"]
def test_source_filter_offset_and_highlight_marks(index: SearchIndex) -> None:
    other = doc("d5", "Garrison relieved", "The garrison was relieved at dawn.", published="2017-07-01T08:00:00+00:00")
    other["source"] = "other.example"
    index.index_documents([*CORPUS, other])
    assert [h.id for h in index.search("garrison", source="other.example")] == ["d5"]
    assert {h.id for h in index.search("", source="example.org")} == {"d1", "d2", "d3", "d4"}
    everything = [h.id for h in index.search("", limit=10)]
    assert [h.id for h in index.search("", limit=2, offset=1)] == everything[1:3]
    assert index.search("", offset=10) == []
    marked = index.search("convoy", highlight=HIGHLIGHT_MARKS)
    assert [h.id for h in marked] == ["d2"]
    assert f"{HIGHLIGHT_MARKS[0]}convoy{HIGHLIGHT_MARKS[1]}" in marked[0].snippet.lower()
    assert "[convoy]" in index.search("convoy")[0].snippet.lower()
    assert {e["id"] for e in marked[0].entities} == {"al-tanf", "badia"}
    assert marked[0].entities[0].keys() == {"id", "name", "kind", "type"}


def test_counts_by_entity_topic_source_and_day(index: SearchIndex) -> None:
    index.index_documents(CORPUS)
    assert index.counts("entity") == [("al-tanf", 2), ("badia", 1), ("deir-ez-zor", 1)]
    assert index.counts("entity", limit=1) == [("al-tanf", 2)]
    assert index.counts("entity", topic="al-tanf", since="2017-06-01") == [("al-tanf", 1), ("badia", 1)]
    assert index.counts("topic") == [("al-tanf", 2), ("deir-ez-zor", 1)]
    assert index.counts("source") == [("example.org", 4)]
    assert index.counts("day") == [("2017-05-12", 1), ("2017-06-02", 1), ("2017-09-05", 1), ("2026-11-20", 1)]
    assert index.counts("day", topic="al-tanf", limit=1) == [("2017-06-02", 1)]
    assert index.counts("entity", entity="zanzibar") == []
