"""Analysts' feedback end to end: a false hit is marked, a blocker goes into the overlay, the same text no
longer fires, and eval-tags shows it; misses by URL; export; the overlay is validated."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.enrich import Tagger, evaluate
from pipeline.enrich.catalogue import load_catalogue
from pipeline.errors import CatalogueError, InputError
from pipeline.feedback import FeedbackStore, Judgement
from pipeline.feedback import store as store_module
from pipeline.ids import doc_id
from pipeline.index.sqlite import SQLiteIndex
from pipeline.models import Article
from pipeline.stages import enrich_article

FALSE_HIT = "Seoul: Kim Hajin's new single topped the charts on Monday, her label said."
MISSED = "Clashes were reported overnight in a village of the eastern countryside, residents said."


@pytest.fixture
def setup(env: dict[str, str], tmp_path: Path, project_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config_dir = tmp_path / "config"
    shutil.copytree(project_root / "config", config_dir)
    (config_dir / "catalogue-overlay.yaml").unlink(missing_ok=True)
    monkeypatch.setenv("PIPELINE_CONFIG_DIR", str(config_dir))
    monkeypatch.setattr(evaluate, "default_shared_dir", lambda: tmp_path / "no-shared")
    config = load_config()
    tagger = Tagger.load(watchlist=config.watchlist, overlay=config.settings.catalogue_overlay)
    index = SQLiteIndex(config.settings.index_db)
    docs = []
    for n, text in enumerate((FALSE_HIT, MISSED)):
        url = f"https://news.example.org/{n}"
        article = Article(id=doc_id(url), url=url, title=f"story {n}", text=text, fetched_at="2024-05-01T00:00:00Z")
        docs.append(enrich_article(article, tagger).to_document())
    index.index_documents(docs)
    index.close()
    assert docs[0]["topics"] == ["deir-ez-zor"] and docs[1]["topics"] == []
    return config_dir


def _eval(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = main(["eval-tags", "--no-throughput", "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_false_hit_blocker_and_eval(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hit_id = doc_id("https://news.example.org/0")
    assert main(["feedback", "false-hit", hit_id, "--note", "a singer, not the town"]) == 0
    assert "recorded false-hit for topic deir-ez-zor" in capsys.readouterr().out
    code, report = _eval(capsys)
    feedback = report["sets"]["feedback"]  # type: ignore[index]
    assert feedback["topics"]["deir-ez-zor"]["fp"] == 1 and code == 1
    # the analyst's fix, without a code change: a blocker in the overlay
    (setup / "catalogue-overlay.yaml").write_text(
        "blockers:\n  - {text: Kim Hajin, why: \"a K-pop singer's name\"}\n", encoding="utf-8")
    config = load_config()
    tagger = Tagger.load(watchlist=config.watchlist, overlay=config.settings.catalogue_overlay)
    assert tagger.tag(FALSE_HIT).topic_ids == []
    code, report = _eval(capsys)
    feedback = report["sets"]["feedback"]  # type: ignore[index]
    assert feedback["topics"]["deir-ez-zor"]["fp"] == 0 and feedback["passed"] and code == 0
    assert report["catalogue"]["overlay"] == str(setup / "catalogue-overlay.yaml")  # type: ignore[index]


def test_missed_by_url_export_and_errors(setup: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["feedback", "missed", "https://news.example.org/1?utm_source=x", "--topic", "deir-ez-zor"]) == 0
    code, report = _eval(capsys)
    assert report["sets"]["feedback"]["topics"]["deir-ez-zor"]["fn"] == 1  # type: ignore[index]
    out = tmp_path / "feedback.jsonl"
    assert main(["feedback", "export", "-o", str(out)]) == 0
    (row,) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert row["kind"] == "missed" and row["text"] == MISSED and row["topic"] == "deir-ez-zor"
    capsys.readouterr()
    assert main(["feedback", "missed", "nope", "--topic", "deir-ez-zor"]) == 2
    assert "no indexed document with id nope" in capsys.readouterr().err
    assert main(["feedback", "missed", doc_id("https://news.example.org/1"), "--topic", "deir-ezzor"]) == 2
    assert "did you mean deir-ez-zor" in capsys.readouterr().err
    assert main(["feedback", "false-hit", doc_id("https://news.example.org/1")]) == 2
    assert "fired no topic" in capsys.readouterr().err
    assert main(["feedback", "list"]) == 0
    assert "missed" in capsys.readouterr().out


def test_confirmed_is_a_labelled_positive_and_the_latest_judgement_counts(
        setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hit_id = doc_id("https://news.example.org/0")
    assert main(["feedback", "false-hit", hit_id]) == 0
    assert main(["feedback", "confirmed", hit_id, "--note", "the village after all"]) == 0
    assert "recorded confirmed for topic deir-ez-zor" in capsys.readouterr().out
    assert main(["feedback", "list"]) == 0
    (line,) = capsys.readouterr().out.splitlines()  # one judgement per document and topic: the latest
    assert "confirmed" in line and "(the village after all)" in line
    code, report = _eval(capsys)
    counts = report["sets"]["feedback"]["topics"]["deir-ez-zor"]  # type: ignore[index]
    assert (counts["tp"], counts["fp"], counts["fn"], code) == (1, 0, 0, 0)  # fired and should: a true positive
    assert "confirmed" in report["sets"]["feedback"]["gold"]  # type: ignore[index]
    # a blocker that would silence it now shows as a miss: confirmed alerts guard recall
    (setup / "catalogue-overlay.yaml").write_text("blockers:\n  - {text: Kim Hajin, why: a singer}\n",
                                                 encoding="utf-8")
    code, report = _eval(capsys)
    assert report["sets"]["feedback"]["topics"]["deir-ez-zor"]["fn"] == 1 and code == 1  # type: ignore[index]
    assert main(["feedback", "confirmed", doc_id("https://news.example.org/1")]) == 2
    assert "fired no topic" in capsys.readouterr().err


def test_store_keeps_one_judgement_per_document_and_topic(tmp_path: Path) -> None:
    """Repeating a judgement writes nothing; another kind replaces it; stores from before the rule are folded."""
    path = tmp_path / "feedback.sqlite3"
    with sqlite3.connect(path) as conn:  # a store written before the rule: two judgements of one pair
        conn.executescript(store_module._SCHEMA)
        for kind, when in (("false-hit", "2026-01-01T00:00:00+00:00"), ("missed", "2026-01-02T00:00:00+00:00")):
            conn.execute("INSERT INTO judgements (kind, doc_id, topic, created_at) VALUES (?, 'd1', 'al-tanf', ?)",
                         (kind, when))
    conn.close()
    store = FeedbackStore(path)
    try:
        assert [(j.kind, j.doc_id) for j in store.all()] == [("missed", "d1")]
        first = store.add(Judgement("confirmed", "d2", "al-tanf", note="n", created_at="2026-02-01T00:00:00+00:00"))
        again = store.add(Judgement("confirmed", "d2", "al-tanf", note="n"))
        assert again.created_at == first.created_at == "2026-02-01T00:00:00+00:00"  # nothing written
        store.add(Judgement("false-hit", "d2", "al-tanf", note="n"))
        assert [(j.kind, j.gold) for j in store.all() if j.doc_id == "d2"] == [("false-hit", False)]
        assert store.get("d2", "al-tanf").kind == "false-hit" and store.get("d2", "deir-ez-zor") is None  # type: ignore[union-attr]
        assert set(store.of_documents([("d1", "al-tanf"), ("d2", "al-tanf"), ("d3", "x")])) == {
            ("d1", "al-tanf"), ("d2", "al-tanf")}
        with pytest.raises(InputError, match="unknown kind 'maybe'"):
            store.add(Judgement("maybe", "d3", "al-tanf"))
    finally:
        store.close()


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        ("aliases:\n  - {entity: atlantis, text: Atlantis}\n", r"aliases\.0\.entity: unknown entity 'atlantis'"),
        ("blockers:\n  - {text: X}\n", r"blockers\.0\.why"),
        ("context_words:\n  nowhere: [x]\n", r"context_words\.nowhere: unknown region"),
        ("colour: blue\n", r"colour"),
        ("aliases:\n  - {entity: hajin, text: Hajin}\n", r"gives 'hajin', already an alias of hajin|aliases"),
    ],
)
def test_overlay_is_validated(tmp_path: Path, overlay: str, message: str) -> None:
    path = tmp_path / "catalogue-overlay.yaml"
    path.write_text(overlay, encoding="utf-8")
    if "already" in message:  # the same key for the same entity is harmless
        assert "hajin" in load_catalogue(overlay=path).entities
        return
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(overlay=path)


def test_overlay_aliases_and_context_words(tmp_path: Path) -> None:
    path = tmp_path / "catalogue-overlay.yaml"
    path.write_text("aliases:\n  - {entity: hajin, text: Hajjeen Town}\ncontext_words:\n  deir-ez-zor: [zorba]\n",
                    encoding="utf-8")
    tagger = Tagger.load(overlay=path)
    assert [e.id for e in tagger.tag("Shelling hit Hajjeen Town.").entities] == ["hajin"]
    assert "al-susah" not in {e.id for e in tagger.tag("Clashes in al-Susah.").entities}
    assert "al-susah" in {e.id for e in tagger.tag("Clashes in al-Susah, zorba said.").entities}
