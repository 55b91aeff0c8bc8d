"""Reading seeds: dates, titles, doc ids, and every kind of bad file reported by name."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest

from qabot.corpus import BadSeed, read_corpus, read_seed, scan_seeds
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
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "binary"),
        (" date 2024-01-01 Saved by Notepad.".encode("utf-16"), "is UTF-16, not UTF-8"),
        (" date 2024-01-01 Big-endian.".encode("utf-16-be").join([b"\xfe\xff", b""]), "is UTF-16"),
        ("Thirty-two bits.".encode("utf-32"), "is UTF-32, not UTF-8"),
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


def test_symbolic_links_are_not_followed_out_of_the_seeds_folder(tmp_path: Path) -> None:
    seeds, outside = tmp_path / "seeds", tmp_path / "outside"
    write(outside, "secret.txt", "Root password hash lives here.")
    write(outside, "folder/a.txt", "An article outside the seeds folder.")
    write(seeds, "real.txt", " date 2024-01-01 A real article.")
    write(seeds, "sub/inner.txt", "Inside, reached through a link.")
    (seeds / "shadow.txt").symlink_to(outside / "secret.txt")
    (seeds / "relative.txt").symlink_to(Path("..") / "outside" / "secret.txt")
    (seeds / "elsewhere").symlink_to(outside / "folder", target_is_directory=True)
    (seeds / "alias.txt").symlink_to(seeds / "sub" / "inner.txt")
    (seeds / "again").symlink_to(seeds / "sub", target_is_directory=True)
    (seeds / "dangling.txt").symlink_to(seeds / "missing.txt")
    (seeds / "loop.txt").symlink_to(seeds / "loop.txt")
    articles, bad = read_corpus(seeds)
    # a link that stays inside is followed and indexed under its own name
    assert {a.doc_id: a.title for a in articles} == {
        "alias.txt": "Inside, reached through a link.", "real.txt": "A real article.",
        "sub/inner.txt": "Inside, reached through a link."}
    reasons = {b.doc_id: b.reason for b in bad}
    assert reasons["shadow.txt"] == "is a symbolic link to a file outside the seeds folder"
    assert reasons["relative.txt"] == "is a symbolic link to a file outside the seeds folder"
    assert reasons["elsewhere"] == "is a symbolic link to a folder outside the seeds folder"
    assert "symbolic link to a folder inside" in reasons["again"]
    assert "target is missing" in reasons["dangling.txt"]
    assert "cannot be followed" in reasons["loop.txt"]
    assert not any(b.keep for b in bad)  # what was indexed through them must go


def test_a_file_name_that_is_not_utf8_is_reported_printably_and_the_rest_indexed(tmp_path: Path) -> None:
    write(tmp_path, "good.txt", "A good article.")
    root = os.fsencode(tmp_path)
    try:
        (Path(os.fsdecode(root + b"/caf\xe9.txt"))).write_bytes(b"Named in Latin-1.")
        os.mkdir(root + b"/d\xe9j\xe0")
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    articles, bad = read_corpus(tmp_path)
    assert [a.doc_id for a in articles] == ["good.txt"]
    assert sorted((b.doc_id, b.reason) for b in bad) == [
        ("caf\\xe9.txt", "has a name that is not valid UTF-8; rename it"),
        ("d\\xe9j\\xe0", "has a name that is not valid UTF-8; rename it")]
    for b in bad:
        b.doc_id.encode("utf-8")  # storable: no lone surrogates


def test_an_unreadable_folder_or_file_is_reported_and_keeps_its_articles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """chmod 000 does not stop root, so the refusals are simulated in-process."""
    write(tmp_path, "good.txt", "A good article.")
    write(tmp_path, "locked/a.txt", "Behind a locked door.")
    write(tmp_path, "unreadable.txt", "Cannot be opened.")
    real_scandir, real_open = os.scandir, os.open

    def scandir(path: Any) -> Any:
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    def open_(path: Any, flags: int, *args: Any) -> int:
        if Path(path).name == "unreadable.txt":
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "open", open_)
    articles, bad = read_corpus(tmp_path)
    assert [a.doc_id for a in articles] == ["good.txt"]
    assert [(b.doc_id, b.folder, b.keep) for b in bad] == [
        ("locked", True, True), ("unreadable.txt", False, True)]
    assert "folder that cannot be read (Permission denied)" in bad[0].reason
    assert bad[1].reason == "cannot be read (Permission denied)"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads through chmod 000")
def test_chmod_000_folder_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "good.txt", "A good article.")
    write(tmp_path, "locked/a.txt", "Behind a locked door.")
    (tmp_path / "locked").chmod(0)
    try:
        articles, bad = read_corpus(tmp_path)
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert [a.doc_id for a in articles] == ["good.txt"]
    assert [(b.doc_id, b.folder) for b in bad] == [("locked", True)]


def test_files_over_the_size_limit_are_skipped_unread(tmp_path: Path) -> None:
    write(tmp_path, "small.txt", "A small article.")
    write(tmp_path, "big.txt", "word " * 300_000)  # 1.5 MB
    articles, bad = read_corpus(tmp_path, max_bytes=1_000_000)
    assert [a.doc_id for a in articles] == ["small.txt"]
    assert [(b.doc_id, b.reason) for b in bad] == [
        ("big.txt", "is 1.5 MB, over the 1 MB limit ([paths] max_file_mb)")]
    assert len(read_corpus(tmp_path)[0]) == 2  # no limit given: read


def test_a_fifo_named_txt_is_reported_not_waited_on(tmp_path: Path) -> None:
    write(tmp_path, "good.txt", "A good article.")
    os.mkfifo(tmp_path / "pipe.txt")
    articles, bad = read_corpus(tmp_path)
    assert [a.doc_id for a in articles] == ["good.txt"]
    assert [(b.doc_id, b.reason) for b in bad] == [("pipe.txt", "is not a regular file")]


def test_a_bom_is_kept_so_offsets_are_those_of_the_decoded_file(tmp_path: Path) -> None:
    data = "\ufeff date 2024-02-03 Café opens in town. More text follows here.".encode()
    write(tmp_path, "bom.txt", data)
    [article], bad = read_corpus(tmp_path)
    assert bad == [] and article.date == dt.date(2024, 2, 3)
    assert article.text == data.decode("utf-8")  # what an editor or Python shows as the file
    assert article.text[article.body_start:].startswith("Café opens in town.")
    assert article.title == "Café opens in town."  # headline.py skips a two-word opener


def test_a_folder_swapped_for_a_link_after_the_scan_is_not_read_through(tmp_path: Path) -> None:
    seeds, outside = tmp_path / "seeds", tmp_path / "outside"
    write(outside, "news/secret.txt", "Outside the seeds folder.")
    write(seeds, "news/secret.txt", "An article.")
    [seed], _ = scan_seeds(seeds)
    (seeds / "news" / "secret.txt").unlink()
    (seeds / "news").rmdir()
    (seeds / "news").symlink_to(outside / "news", target_is_directory=True)  # the race, won
    result = read_seed(seed, root=seeds.resolve())
    assert isinstance(result, BadSeed) and "link out of the seeds folder" in result.reason


def test_a_skipped_files_size_is_never_shown_as_zero(tmp_path: Path) -> None:
    """A tiny limit (1 kB) must not report files as "0.0 MB": sizes take the unit that shows them."""
    write(tmp_path, "a.txt", "word " * 500)  # 2.5 kB
    _, bad = read_corpus(tmp_path, max_bytes=1000)
    assert [b.reason for b in bad] == ["is 2.5 kB, over the 0.001 MB limit ([paths] max_file_mb)"]
    from qabot.corpus import size

    assert [size(n) for n in (0, 999, 1000, 1550, 2_500_000, 10**9)] == [
        "0 bytes", "999 bytes", "1 kB", "1.6 kB", "2.5 MB", "1,000 MB"]
