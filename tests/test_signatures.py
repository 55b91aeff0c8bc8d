"""The seed signature cache: unchanged files cost a stat, not a read, and never make the index wrong."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from qabot import signatures, store
from qabot.config import Settings
from tests.fakes import FakeEmbedder, fake_corpus, index


@pytest.fixture
def env(tmp_path: Path) -> tuple[Settings, FakeEmbedder]:
    return fake_corpus(tmp_path / "seeds"), FakeEmbedder()


@pytest.fixture
def no_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust files stamped any time before the scan: the fixture files are only just written,
    and would all be racy under the real 2 s margin."""
    monkeypatch.setattr(signatures, "RACY_NS", 0)


@pytest.fixture
def opened(env: tuple[Settings, FakeEmbedder], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the seed files opened since the test began (os.open is how read_seed reads)."""
    seeds = str(env[0].seeds)
    names: list[str] = []
    real = os.open

    def counting(path: str | bytes | os.PathLike[str], flags: int, *args: int, **kw: int) -> int:
        if str(path).startswith(seeds):
            names.append(os.path.relpath(path, seeds))  # type: ignore[arg-type]
        return real(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", counting)
    return names


def test_an_unchanged_file_is_not_opened_on_the_next_run(
    env: tuple[Settings, FakeEmbedder], opened: list[str], no_margin: None
) -> None:
    settings, fake = env
    assert index(settings, fake).added == 3 and sorted(opened) == ["0.txt", "1.txt", "2.txt"]
    opened.clear()
    report = index(settings, fake)
    assert not report.committed and report.unchanged == 3 and opened == []
    (settings.seeds / "new.txt").write_text(" date 2024-02-01 Penguins waddle in Antarctica.")
    report = index(settings, fake)
    assert report.added == 1 and report.unchanged == 3 and opened == ["new.txt"]
    opened.clear()
    # the commit's garbage collection left the cache: the run after it reads nothing either
    assert (settings.index / signatures.CACHE).is_file()
    assert not index(settings, fake).committed and opened == []


def test_an_edit_that_keeps_the_size_and_restores_the_mtime_is_seen(
    env: tuple[Settings, FakeEmbedder], opened: list[str], no_margin: None
) -> None:
    settings, fake = env
    index(settings, fake)
    path = settings.seeds / "0.txt"
    before = path.stat()
    text = path.read_text()
    path.write_text(text.replace("volcano", "VOLCANO"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # as `touch -r` or rsync -t would
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns,
                                                                 before.st_ino)
    opened.clear()
    report = index(settings, fake)
    assert report.updated == 1 and opened == ["0.txt"]  # ctime told it, which no one can set
    assert any("VOLCANO" in t for t in fake.embedded)


def test_a_racy_file_is_read_again_next_run(
    env: tuple[Settings, FakeEmbedder], opened: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Git's racy rule under the real 2 s margin, on a scan clock the test sets (the wall clock
    would make it depend on how fast the machine runs the steps)."""
    settings, fake = env
    changed = [max(p.stat().st_mtime_ns, p.stat().st_ctime_ns) for p in settings.seeds.iterdir()]
    clock = min(changed) + signatures.RACY_NS  # every file changed within 2 s before the scan
    monkeypatch.setattr(signatures, "time", SimpleNamespace(time_ns=lambda: clock))
    index(settings, fake)
    opened.clear()
    assert not index(settings, fake).committed and sorted(opened) == ["0.txt", "1.txt", "2.txt"]
    clock = max(changed) + signatures.RACY_NS + 1  # all of them changed more than 2 s before
    index(settings, fake)
    opened.clear()
    assert not index(settings, fake).committed and opened == []
    # stamped after the scan starts (a clock tick that has not ended yet, at coarse resolution)
    future = clock + 60 * 10**9
    os.utime(settings.seeds / "1.txt", ns=(future, future))
    index(settings, fake)
    opened.clear()
    assert not index(settings, fake).committed and opened == ["1.txt"]


def test_a_damaged_cache_is_ignored_and_rewritten(
    env: tuple[Settings, FakeEmbedder], opened: list[str], no_margin: None
) -> None:
    settings, fake = env
    index(settings, fake)
    cache = settings.index / signatures.CACHE
    cache.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    opened.clear()
    report = index(settings, fake)
    assert not report.committed and report.unchanged == 3 and len(opened) == 3
    assert set(signatures.load(settings.index, settings.seeds)) == {"0.txt", "1.txt", "2.txt"}
    opened.clear()
    assert not index(settings, fake).committed and opened == []


def test_an_entry_whose_hash_is_not_the_catalogs_is_not_trusted(
    env: tuple[Settings, FakeEmbedder], opened: list[str], no_margin: None
) -> None:
    settings, fake = env
    index(settings, fake)
    with sqlite3.connect(settings.index / signatures.CACHE) as db:
        db.execute("UPDATE files SET hash = ? WHERE doc_id = '1.txt'", ("0" * 64,))
    db.close()
    opened.clear()
    report = index(settings, fake)
    assert not report.committed and report.unchanged == 3 and opened == ["1.txt"]


def test_a_deleted_file_is_still_removed(
    env: tuple[Settings, FakeEmbedder], opened: list[str], no_margin: None
) -> None:
    settings, fake = env
    index(settings, fake)
    (settings.seeds / "2.txt").unlink()
    opened.clear()
    report = index(settings, fake)
    assert report.removed == 1 and report.unchanged == 2 and opened == []
    assert "2.txt" not in store.load_snapshot(settings.index).articles
    assert set(signatures.load(settings.index, settings.seeds)) == {"0.txt", "1.txt"}


def test_a_link_is_signed_by_its_target(
    env: tuple[Settings, FakeEmbedder], opened: list[str], no_margin: None
) -> None:
    settings, fake = env
    (settings.seeds / "link.txt").symlink_to(settings.seeds / "0.txt")
    index(settings, fake)
    opened.clear()
    assert not index(settings, fake).committed and opened == []
    (settings.seeds / "0.txt").write_text(" date 2024-01-01 Giraffes eat leaves from tall trees.")
    report = index(settings, fake)
    assert report.updated == 2 and sorted(opened) == ["0.txt", "0.txt"]  # the link's target, twice


def test_a_file_over_a_lowered_size_limit_is_refused_as_before(
    env: tuple[Settings, FakeEmbedder], no_margin: None
) -> None:
    settings, fake = env
    index(settings, fake)
    report = index(replace(settings, paths=replace(settings.paths, max_file_mb=0.0001)), fake)
    assert [b.doc_id for b in report.skipped] == ["0.txt", "1.txt", "2.txt"]
    assert all("over the 0.0001 MB limit" in b.reason for b in report.skipped)
    assert not report.committed  # kept: what was indexed stays, as for any unreadable file


def test_another_seeds_folders_cache_is_not_used(
    env: tuple[Settings, FakeEmbedder], opened: list[str], no_margin: None
) -> None:
    settings, fake = env
    index(settings, fake)
    assert signatures.load(settings.index, settings.seeds.parent) == {}
    assert len(signatures.load(settings.index, settings.seeds)) == 3


def test_verify_reads_a_file_whose_stat_kept_everything(
    env: tuple[Settings, FakeEmbedder], opened: list[str], no_margin: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file rewritten in place through a writable mmap can keep its size, times and inode, so
    its signature says "unchanged" for good (git's stat cache has the same gap). Here the stat is
    pinned to make that so; `run_index(verify=True)` (`qabot index --verify`) reads it anyway."""
    settings, fake = env
    index(settings, fake)
    pinned = {name: os.stat(settings.seeds / name) for name in ("0.txt", "1.txt", "2.txt")}
    real = signatures._stat
    monkeypatch.setattr(signatures, "_stat", lambda path: pinned.get(os.path.basename(path)) or real(path))
    target = settings.seeds / "1.txt"
    text = target.read_bytes()
    target.write_bytes(text.replace(b"e", b"a", 1))  # same size: an in-place edit
    opened.clear()
    assert not index(settings, fake).committed and opened == []  # the gap: nothing is read
    report = index(settings, fake, verify=True)
    assert report.committed and report.updated == 1 and sorted(opened) == ["0.txt", "1.txt", "2.txt"]
    snap = store.load_snapshot(settings.index)
    try:
        assert snap.catalog.hashes()["1.txt"] == hashlib.sha256(target.read_bytes()).hexdigest()
    finally:
        snap.catalog.close()
