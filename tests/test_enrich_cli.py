"""The ``tag`` command: single text, --json, --jsonl with bad lines."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from pipeline.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        stdin: str | None = None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_tag_json_from_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    text = "US-backed rebels at the At Tanf garrison; clashes in Dayr Az Zawr."
    code, out, _ = run(["tag", "--json"], capsys, monkeypatch, stdin=text)
    assert code == 0
    doc = json.loads(out)
    ids = {e["id"] for e in doc["entities"]}
    assert {"al-tanf", "deir-ez-zor"} <= ids
    topics = {t["id"]: t for t in doc["topics"]}
    assert set(topics) == {"al-tanf", "deir-ez-zor"}
    reason = topics["al-tanf"]["reasons"][0]
    assert reason["entity"] == "al-tanf" and reason["relation"] == "core"
    assert text[reason["start"]:reason["end"]] == reason["text"] == "At Tanf garrison"
    assert reason["variant"] == "at tanf garrison"
    mention = next(e for e in doc["entities"] if e["id"] == "deir-ez-zor")["mentions"][0]
    assert text[mention["start"]:mention["end"]] == "Dayr Az Zawr"


def test_tag_summary_from_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.txt"
    path.write_text("Jets struck al-Mayadin.", encoding="utf-8")
    code, out, _ = run(["tag", str(path)], capsys, monkeypatch)
    assert code == 0
    assert "al-mayadin" in out and "topic deir-ez-zor: fired by scope al-mayadin" in out


def test_tag_missing_file_is_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(["tag", "/nonexistent/file.txt"], capsys, monkeypatch)
    assert code == 2
    assert err.strip().count("\n") == 0 and "no such file" in err


def test_tag_jsonl_keeps_ids_and_reports_bad_lines(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [
        json.dumps({"id": "a", "title": "al-Tanf", "text": "Quiet day."}),
        "{not json",
        json.dumps({"id": "b", "text": "Deir Ezzor"}),
        json.dumps({"id": "c"}),
        "",
        json.dumps({"id": 4, "text": "Stanford"}),
    ]
    code, out, err = run(["tag", "--jsonl"], capsys, monkeypatch, stdin="\n".join(lines) + "\n")
    assert code == 2, "a bad line is bad input: exit 2"
    docs = [json.loads(x) for x in out.splitlines()]
    assert [d["id"] for d in docs] == ["a", "b", 4]
    assert [[t["id"] for t in d["topics"]] for d in docs] == [["al-tanf"], ["deir-ez-zor"], []]
    assert docs[0]["topics"][0]["reasons"][0]["field"] == "title"
    errors = err.strip().splitlines()
    assert len(errors) == 2
    assert "line 2" in errors[0] and "line 4" in errors[1]


def test_tag_jsonl_many_texts_one_process(capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    payload = "".join(json.dumps({"id": i, "text": f"Strike {i} near Abu Kamal"}) + "\n" for i in range(2000))
    code, out, _ = run(["tag", "--jsonl", "-"], capsys, monkeypatch, stdin=payload)
    assert code == 0
    docs = out.splitlines()
    assert len(docs) == 2000
    assert json.loads(docs[-1])["id"] == 1999


def test_tag_jsonl_file_with_a_badly_encoded_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"id": 1, "text": "al-Tanf"}\n{"id": 2, "text": "\xff\xfe"}\n{"id": 3, "text": "Hajin"}\n')
    code, out, err = run(["tag", "--jsonl", str(path)], capsys, monkeypatch)
    assert code == 2
    assert [json.loads(x)["id"] for x in out.splitlines()] == [1, 3]
    assert "line 2: not UTF-8" in err
