"""Story fingerprints: exact and syndicated copies collapse, different stories on the same topic do not."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_alert_servers import story_text

from pipeline.alerts.stories import SAME_STORY_THRESHOLD, similarity, sketch


def test_exact_copy_scores_one() -> None:
    assert similarity(sketch(story_text(1)), sketch(story_text(1))) == 1.0


def test_syndicated_copy_with_new_lead_and_footer_is_the_same_story() -> None:
    original = story_text(2)
    copy = "DAMASCUS (Wire) - " + original.replace("officials said", "officials told reporters") + \
        " Reporting by A. Writer; editing by B. Editor. Copyright 2017."
    assert similarity(sketch(original), sketch(copy)) >= SAME_STORY_THRESHOLD


def test_case_and_punctuation_do_not_matter() -> None:
    assert similarity(sketch("The Garrison, at AL-TANF; was hit!"), sketch("the garrison at al tanf was hit")) == 1.0


def test_different_stories_on_the_same_topic_are_different() -> None:
    sketches = [sketch(story_text(n)) for n in range(8)]
    for i in range(8):
        for j in range(i + 1, 8):
            assert similarity(sketches[i], sketches[j]) < SAME_STORY_THRESHOLD


def test_empty_text_matches_nothing() -> None:
    assert similarity(sketch(""), sketch("")) == 0.0


@pytest.mark.shared
def test_seed_reports_are_five_different_stories(shared_dir: Path) -> None:
    texts = [p.read_text(encoding="utf-8") for p in sorted((shared_dir / "seeds").glob("*.txt"))]
    assert len(texts) >= 2
    sketches = [sketch(t) for t in texts]
    for i in range(len(texts)):
        assert similarity(sketches[i], sketch(texts[i][: len(texts[i]) * 9 // 10])) >= SAME_STORY_THRESHOLD
        for j in range(i + 1, len(texts)):
            assert similarity(sketches[i], sketches[j]) < 0.2


def test_story_index_finds_the_copy_and_respects_the_window() -> None:
    from pipeline.alerts.stories import StoryIndex

    index = StoryIndex()
    for n in range(6):
        index.add(f"s{n}", sketch(story_text(n)), created_at=100.0 + n)
    copy = sketch("UPDATE: " + story_text(3))
    assert index.best_match(copy, since=0.0)[0] == "s3"
    assert index.best_match(copy, since=104.0)[1] < SAME_STORY_THRESHOLD  # s3 is older than the window
    assert index.best_match(sketch("nothing like the others at all, truly"), since=0.0) == ("", 0.0)
