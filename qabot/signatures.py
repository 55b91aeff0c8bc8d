"""Tell unchanged seed files by a stat, not a read: git's index, for the seeds folder.

`<index>/seeds-cache.sqlite` maps each doc id to the signature of the file last read under it
(size, mtime, ctime, inode) and that file's content hash. It is advisory, outside the commit
protocol: the manifest does not name it, garbage collection leaves it, and a missing or damaged
one only means every file is read, as without it. It can't make the index wrong: an entry counts
only while its signature is the file's stat now and its hash is the committed catalog's for that
doc id. ctime is in the signature because no user can set it: an edit that restores the size and
the mtime (`touch -r`, `os.utime`) still shows.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .corpus import Article, BadSeed, printable_name, read_seed, scan_seeds

CACHE = "seeds-cache.sqlite"
# Bump when what a file's bytes become (corpus.parse_article's rules) changes: an entry says
# "read before, and was this article", which a new rule could make untrue for the same bytes.
VERSION = 1
# Git's racy rule: a file stamped this close to the scan's start may change again within the
# same timestamp tick (coarse clocks: 2 s on FAT) without its signature changing, so it is not
# trusted next run but read again.
RACY_NS = 2_000_000_000

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (
    doc_id TEXT PRIMARY KEY,
    signature TEXT NOT NULL,  -- "size mtime_ns ctime_ns inode" of the file read (a link's target)
    hash TEXT NOT NULL        -- sha256 of the bytes read: Article.content_hash
);
"""


class Entry(NamedTuple):
    """What the last run read under a doc id: the file's signature and its content hash. (A
    tuple: 100,000 are loaded on every run.)"""

    signature: str
    hash: str


@dataclass(frozen=True)
class Reading:
    """The seeds as this run sees them: files read (articles or bad seeds), files known unchanged
    by their signature (doc ids), and the entries the next run may trust."""

    articles: list[Article]
    bad: list[BadSeed]
    unchanged: list[str]
    entries: dict[str, Entry]


def signature(info: os.stat_result) -> str:
    """"size mtime_ns ctime_ns inode": text, as an inode may not fit SQLite's signed 64 bits."""
    return f"{info.st_size} {info.st_mtime_ns} {info.st_ctime_ns} {info.st_ino}"


def read_seeds(
    seeds: Path, max_bytes: int | None, known: Mapping[str, Entry], committed: Mapping[str, str]
) -> Reading:
    """Read the seed files whose signature doesn't match a `known` entry that agrees with the
    `committed` hashes (doc id -> content hash); the others are unchanged, unread."""
    started = time.time_ns()
    files, bad = scan_seeds(seeds)
    root = seeds.resolve()
    articles: list[Article] = []
    unchanged: list[str] = []
    entries: dict[str, Entry] = {}
    for seed in files:
        info = _stat(seed.location)
        old = known.get(seed.doc_id)
        if info is not None and old is not None and _still(old, info, committed.get(seed.doc_id),
                                                           max_bytes):
            unchanged.append(seed.doc_id)
            entries[seed.doc_id] = old
            continue
        result = read_seed(seed, max_bytes, root)
        if isinstance(result, BadSeed):
            bad.append(result)
            continue
        articles.append(result)
        # The stat comes before the read, so a write between them leaves a signature this entry
        # doesn't have. A write after the read within the same timestamp tick could leave the
        # same one: hence the racy rule, no entry for a file stamped near the scan's start.
        if info is not None and max(info.st_mtime_ns, info.st_ctime_ns) < started - RACY_NS:
            entries[seed.doc_id] = Entry(signature(info), result.content_hash)
    return Reading(articles, bad, unchanged, entries)


def _still(old: Entry, info: os.stat_result, committed: str | None, max_bytes: int | None) -> bool:
    """Whether the file is the one `old` describes, and that is what the catalog holds. A file
    over the size limit (which may have been lowered since) is read, so it is refused as today."""
    return (old.signature == signature(info) and old.hash == committed
            and (max_bytes is None or info.st_size <= max_bytes))


def _stat(path: str) -> os.stat_result | None:
    """The file's stat when it is a regular file (not followed if it became a link); else None,
    and read_seed says what is wrong with it."""
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return info if stat.S_ISREG(info.st_mode) else None


def load(index_dir: Path, seeds: Path) -> dict[str, Entry]:
    """The entries the last run left for this seeds folder; {} when there is no usable cache."""
    path = index_dir / CACHE
    if not path.is_file():
        return {}
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("version") != str(VERSION) or meta.get("seeds") != _folder(seeds):
                return {}
            rows = db.execute("SELECT doc_id, signature, hash FROM files").fetchall()
        finally:
            db.close()
    except (sqlite3.Error, ValueError):  # damaged, or not ours: read every file
        return {}
    # A value of another type (SQLite columns take any) equals no signature or hash: harmless.
    return {doc: Entry(sig, digest) for doc, sig, digest in rows}


def save(index_dir: Path, seeds: Path, entries: Mapping[str, Entry]) -> None:
    """Replace the cache with `entries`, atomically. Call it holding the index's write lock (the
    temp file's name is fixed). A cache that can't be written is no error: the next run reads
    every file, as it would without one."""
    path = index_dir / CACHE
    tmp = index_dir / (CACHE + ".tmp")
    try:
        tmp.unlink(missing_ok=True)
        db = sqlite3.connect(tmp)
        try:
            db.execute("PRAGMA journal_mode=OFF")  # a new file, renamed into place when whole
            db.executescript(_SCHEMA)
            db.executemany("INSERT INTO meta VALUES (?, ?)",
                           [("version", str(VERSION)), ("seeds", _folder(seeds))])
            db.executemany("INSERT INTO files VALUES (?, ?, ?)",
                           [(doc, e.signature, e.hash) for doc, e in entries.items()])
            db.commit()
        finally:
            db.close()
        os.replace(tmp, path)
    except (OSError, sqlite3.Error):
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _folder(seeds: Path) -> str:
    """The seeds folder the entries are about: another folder's files are other files."""
    return printable_name(str(seeds.resolve()))
