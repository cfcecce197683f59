"""The stages' failure paths: bad messages are permanent failures with a reason, never a crash."""

from __future__ import annotations

from pathlib import Path

from pipeline.bus import TOPIC_ENRICHED, TOPIC_RAW, Message
from pipeline.bus.sqlite import SQLiteBus
from pipeline.config import load_config
from pipeline.index.sqlite import SQLiteIndex
from pipeline.models import Article, EnrichedArticle, TagResult
from pipeline.stages import EnrichStage, IndexStage, build_stage


class _Tagger:
    def tag(self, text: str, title: str = "") -> TagResult:
        return TagResult()


def _article(i: int) -> Article:
    return Article(id=f"id{i}", url=f"https://example.org/{i}", title=f"t{i}", text="body",
                   fetched_at="2026-01-01T00:00:00+00:00")


def test_enrich_stage_rejects_bad_messages_and_publishes_good(env: dict[str, str], tmp_path: Path) -> None:
    bus = SQLiteBus(tmp_path / "bus.sqlite3")
    stage = EnrichStage(load_config(), bus, tagger=_Tagger())
    good = Message(TOPIC_RAW, 0, 0, "id1", _article(1).to_dict())
    future = Message(TOPIC_RAW, 0, 1, "id2", {**_article(2).to_dict(), "schema_version": 99})
    not_obj = Message(TOPIC_RAW, 0, 2, "id3", ["not", "a", "dict"])  # type: ignore[arg-type]
    wrong_key = Message(TOPIC_RAW, 0, 3, "other", _article(4).to_dict())
    failures = stage.handle([good, future, not_obj, wrong_key])
    assert [f.message.offset for f in failures] == [1, 2, 3]
    assert all(not f.transient for f in failures)
    assert "schema_version 99" in failures[0].error
    out = bus.consumer(TOPIC_ENRICHED, "t").poll(10, 0.1)
    assert [m.key for m in out] == ["id1"]
    bus.close()


def test_index_stage_is_idempotent(env: dict[str, str], tmp_path: Path) -> None:
    bus = SQLiteBus(tmp_path / "bus.sqlite3")
    index = SQLiteIndex(tmp_path / "index.sqlite3")
    stage = IndexStage(load_config(), bus, index=index)
    enriched = EnrichedArticle(_article(1), TagResult(), "2026-01-01T00:00:00+00:00").to_dict()
    msg = Message(TOPIC_ENRICHED, 0, 0, "id1", enriched)
    assert stage.handle([msg]) == []
    assert stage.handle([msg]) == []
    assert (stage.created, stage.existing) == (1, 1)
    assert index.count() == 1
    bad = Message(TOPIC_ENRICHED, 0, 1, "x", {"schema_version": 1})
    assert len(stage.handle([bad])) == 1
    index.close()
    bus.close()


def test_unknown_stage_is_input_error(env: dict[str, str], tmp_path: Path) -> None:
    import pytest

    from pipeline.errors import InputError

    with pytest.raises(InputError, match="unknown stage"):
        build_stage("nope", load_config(), SQLiteBus(tmp_path / "b.sqlite3"))
