"""Reading seeds: dates, titles, doc ids, and every kind of bad file reported by name."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from qabot.corpus import read_corpus
from qabot.errors import SeedsNotFound


def write(root: Path, name: str, data: bytes | str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def test_reads_date_title_body_and_nested_doc_ids(tmp_path: Path) -> None:
    write(tmp_path, "a/b/one.txt", " date 2023-08-03 First sentence here. Second one.\nMore.")
    write(tmp_path, "nodate.txt", "No date line at all. Still an article.")
    write(tmp_path, "ignored.md", "not a txt")
    write(tmp_path, ".hidden/x.txt", "hidden folders are skipped.")
    articles, bad = read_corpus(tmp_path)
    assert bad == []
    by_id = {a.doc_id: a for a in articles}
    assert set(by_id) == {"a/b/one.txt", "nodate.txt"}
    one = by_id["a/b/one.txt"]
    assert one.date == dt.date(2023, 8, 3)
    assert one.title == "First sentence here."
    assert one.text[one.body_start:].startswith("First sentence")
    assert by_id["nodate.txt"].date is None
    assert by_id["nodate.txt"].body_start == 0


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe\x00bad", "binary"),
        (b"caf\xe9 au lait, latin-1 not utf-8", "not valid UTF-8"),
        (b"", "empty"),
        (b"   \n\t ", "empty"),
        (b" date 2023-13-45 The month is wrong.", "malformed date '2023-13-45'"),
        (b" date 03/08/2023 Wrong format.", "malformed date '03/08/2023'"),
        (b" date 2023-08-03   \n", "no article text"),
    ],
)
def test_bad_seeds_are_reported_with_a_reason(tmp_path: Path, data: bytes, reason: str) -> None:
    write(tmp_path, "good.txt", " date 2024-01-01 A good article.")
    write(tmp_path, "sub/bad.txt", data)
    articles, bad = read_corpus(tmp_path)
    assert [a.doc_id for a in articles] == ["good.txt"]
    assert len(bad) == 1 and bad[0].doc_id == "sub/bad.txt"
    assert reason in bad[0].reason


def test_content_hash_changes_with_content(tmp_path: Path) -> None:
    write(tmp_path, "a.txt", "One. Two.")
    h1 = read_corpus(tmp_path)[0][0].content_hash
    write(tmp_path, "a.txt", "One. Three.")
    assert read_corpus(tmp_path)[0][0].content_hash != h1


def test_missing_seeds_folder_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(SeedsNotFound, match="--seeds"):
        read_corpus(tmp_path / "nope")
