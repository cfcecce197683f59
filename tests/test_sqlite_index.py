from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.index.sqlite import SQLiteIndex, fts_query


def _doc(i: int, title: str, text: str, *, topics: list[str] | None = None, published: str | None = None,
         entities: list[str] | None = None) -> dict:
    return {
        "id": f"d{i}", "url": f"https://example.org/{i}", "title": title, "text": text, "source": "ex",
        "published": published, "fetched_at": "2026-01-01T00:00:00+00:00", "topics": topics or [],
        "entities": [{"id": e, "type": "base", "kind": "place", "name": e} for e in entities or []],
    }


@pytest.fixture
def index(tmp_path: Path):
    idx = SQLiteIndex(tmp_path / "index.sqlite3")
    yield idx
    idx.close()


@pytest.mark.parametrize("q", ['"unbalanced', "a AND OR NOT", "NEAR(x y)", "col:value", "*", "^", '-"x"', "(((", "'"])
def test_fts_query_never_breaks_fts5(index: SQLiteIndex, q: str) -> None:
    index.index_documents([_doc(1, "Garrison", "the garrison at al-Tanf")])
    index.search(q)  # must not raise
    assert isinstance(fts_query(q), str)


def test_create_if_absent_and_ranking(index: SQLiteIndex) -> None:
    r1 = index.index_documents([
        _doc(1, "Al-Tanf garrison reinforced", "US forces at al-Tanf garrison", topics=["al-tanf"],
             published="2017-06-01", entities=["al-tanf"]),
        _doc(2, "Oil prices", "Markets mention a garrison once", published="2017-05-01"),
        _doc(3, "Deir ez-Zor siege", "The siege of Deir ez-Zor", topics=["deir-ez-zor"], published="2016-01-02"),
    ])
    assert (r1.created, r1.existing) == (3, 0)
    changed = _doc(1, "CHANGED", "changed")
    r2 = index.index_documents([changed])
    assert (r2.created, r2.existing) == (0, 1)
    assert index.get("d1")["title"] == "Al-Tanf garrison reinforced"
    assert index.count() == 3
    hits = index.search("garrison")
    assert [h.id for h in hits][:2] == ["d1", "d2"]
    assert "[garrison]" in hits[0].snippet.lower()
    assert [h.id for h in index.search("garrison", topic="al-tanf")] == ["d1"]
    assert [h.id for h in index.search("", entity="al-tanf")] == ["d1"]
    assert [h.id for h in index.search("", since="2017-01-01")] == ["d1", "d2"]
    assert [h.id for h in index.search("", until="2017-01-01")] == ["d3"]
    assert [h.id for h in index.search('"siege of deir"')] == ["d3"]
    assert [h.id for h in index.search("garrison -oil")] == ["d1"]
    assert {h.id for h in index.search("siege OR markets")} == {"d2", "d3"}
    assert [d["id"] for d in index.export()] == ["d1", "d2", "d3"]
    assert index.delete_older_than("2017-01-01") == 1
    assert index.count() == 2 and index.search("siege") == []


def test_alerts_are_create_if_absent(index: SQLiteIndex) -> None:
    a = {"id": "a1", "topic": "al-tanf", "created_at": "2026-01-01T00:00:00+00:00"}
    assert index.index_alerts([a]).created == 1
    assert index.index_alerts([a]).existing == 1
    assert [x["id"] for x in index.alerts()] == ["a1"]
